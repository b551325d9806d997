"""IAM in the sandbox's moto (infra/sandbox/cfn/iam_auth.py): VelaOps's documented policy enforced, with AWS's
AccessDenied shapes, and the evaluation the DSQL endpoint and the Lambda's login rely on."""

from __future__ import annotations

import io
import json
import time
import zipfile
from dataclasses import replace

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from infra.sandbox import iam_principals
from infra.sandbox.config import SandboxConfig
from tests.fixtures.iam import admin_client, enforced_moto  # noqa: F401  (fixture)

ACCOUNT = "123456789012"
VELAOPS = f"arn:aws:iam::{ACCOUNT}:user/velaops"


def config_for(moto_url: str) -> SandboxConfig:
    host, port = moto_url.removeprefix("http://").split(":")
    return replace(SandboxConfig(), host=host, moto_port=int(port))


def velaops(moto_url: str, service: str):
    # The fallback key the Makefile exports for VelaOps's processes: registered as the velaops user's.
    return boto3.client(
        service,
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
    )


@pytest.fixture
def seeded(enforced_moto):  # noqa: F811
    iam_principals.seed_velaops(config_for(enforced_moto), lambda service: admin_client(enforced_moto, service))
    return enforced_moto


def test_velaops_may_call_what_its_policy_allows(seeded):
    assert velaops(seeded, "dsql").list_clusters()["clusters"] == []
    assert velaops(seeded, "cloudformation").describe_stacks()["Stacks"] == []


def test_an_action_missing_from_the_policy_is_denied_as_a_json_service_denies_it(seeded):
    with pytest.raises(ClientError) as denied:
        velaops(seeded, "dynamodb").list_tables()
    error = denied.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["Error"]["Message"] == (
        f"User: {VELAOPS} is not authorized to perform: dynamodb:ListTables "
        "because no identity-based policy allows the dynamodb:ListTables action"
    )


def test_a_query_service_denies_with_access_denied_sender(seeded):
    with pytest.raises(ClientError) as denied:
        velaops(seeded, "cloudformation").delete_stack(StackName="DatabaseStack")
    error = denied.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error["Error"]["Code"] == "AccessDenied" and error["Error"]["Type"] == "Sender"
    assert "is not authorized to perform: cloudformation:DeleteStack" in error["Error"]["Message"]


def test_a_rest_read_is_signed_and_checked(seeded):
    # moto re-signed a bodiless GET over its headers: every REST read failed SignatureDoesNotMatch.
    with pytest.raises(ClientError, match="AccessDeniedException"):
        velaops(seeded, "lambda").list_functions()
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        velaops(seeded, "lambda").get_function_configuration(FunctionName="vela-api")


def test_unknown_keys_and_bad_secrets_are_refused(seeded):
    stranger = boto3.client(
        "cloudformation", endpoint_url=seeded, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y"
    )
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        stranger.describe_stacks()
    forged = boto3.client(
        "cloudformation",
        endpoint_url=seeded,
        region_name="us-east-1",
        aws_access_key_id="sandbox",
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        forged.describe_stacks()


def test_the_admin_key_may_do_anything_even_after_a_reset(seeded):
    requests.post(f"{seeded}/moto-api/reset", timeout=10).raise_for_status()
    assert admin_client(seeded, "iam").list_users()["Users"] == []
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        velaops(seeded, "dsql").list_clusters()  # the reset forgot the velaops user


def authorize(moto_url: str, key: str, action: str, resource: str) -> dict:
    response = requests.post(
        f"{moto_url}/moto-api/sandbox/iam/authorize",
        json={"access_key_id": key, "action": action, "resource": resource},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def test_authorize_evaluates_resource_arns_wildcards_and_explicit_denies(seeded):
    cluster = f"arn:aws:dsql:us-east-1:{ACCOUNT}:cluster/abc"
    assert authorize(seeded, "sandbox", "dsql:DbConnectAdmin", cluster) == {"allowed": True, "principal": VELAOPS}
    # The policy grants DbConnectAdmin on this region's clusters only, and no resource policy changes at all.
    assert not authorize(seeded, "sandbox", "dsql:DbConnectAdmin", cluster.replace("us-east-1", "us-east-2"))["allowed"]
    assert not authorize(seeded, "sandbox", "dsql:PutClusterPolicy", cluster)["allowed"]

    iam = admin_client(seeded, "iam")
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dsql:*", "Resource": cluster}]}
    arn = iam.create_policy(PolicyName="no-abc", PolicyDocument=json.dumps(deny))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="velaops", PolicyArn=arn)  # attached policies count, and Deny wins
    assert not authorize(seeded, "sandbox", "dsql:DbConnectAdmin", cluster)["allowed"]
    assert authorize(seeded, "sandbox", "dsql:DbConnectAdmin", cluster.replace("abc", "abd"))["allowed"]


def lambda_with_role(moto_url: str, trust: dict, policy: dict | None = None) -> str:
    iam = admin_client(moto_url, "iam")
    role = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    if policy:
        iam.put_role_policy(RoleName="fn-role", PolicyName="inline", PolicyDocument=json.dumps(policy))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.js", "exports.handler = async () => ({})")
    admin_client(moto_url, "lambda").create_function(
        FunctionName="fn", Runtime="nodejs20.x", Role=role, Handler="index.handler", Code={"ZipFile": code.getvalue()}
    )
    return role


LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def test_the_lambda_service_assumes_a_role_that_trusts_it(seeded):
    from infra.sandbox import lambda_identity

    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dsql:DbConnect*", "Resource": "*"}]}
    role = lambda_with_role(seeded, LAMBDA_TRUST, grant)
    config = config_for(seeded)
    first = lambda_identity.function_credentials(config, "fn")
    assert first["RoleArn"] == role
    assert lambda_identity.function_credentials(config, "fn")["AccessKeyId"] == first["AccessKeyId"]  # reused
    cluster = f"arn:aws:dsql:us-east-1:{ACCOUNT}:cluster/x"
    answer = authorize(seeded, first["AccessKeyId"], "dsql:DbConnectAdmin", cluster)
    assert answer == {"allowed": True, "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/fn-role/fn"}
    # The session signs real requests as the role (moto's own check, under the role's policy).
    session = boto3.Session(
        aws_access_key_id=first["AccessKeyId"],
        aws_secret_access_key=first["SecretAccessKey"],
        aws_session_token=first["SessionToken"],
        region_name="us-east-1",
    )
    with pytest.raises(ClientError, match="AccessDeniedException"):
        session.client("dynamodb", endpoint_url=seeded).list_tables()


def test_a_fresh_handler_gets_the_functions_configuration_and_its_roles_session_in_one_answer(seeded):
    from infra.sandbox import lambda_identity

    role = lambda_with_role(seeded, LAMBDA_TRUST)
    admin_client(seeded, "lambda").update_function_configuration(
        FunctionName="fn", Environment={"Variables": {"DSQL_ENDPOINT": "abc.dsql.us-east-1.on.aws"}}
    )
    config = config_for(seeded)
    context = lambda_identity.function_context(config, "fn")
    assert context.configuration["Environment"]["Variables"] == {"DSQL_ENDPOINT": "abc.dsql.us-east-1.on.aws"}
    assert context.configuration["Role"] == role and context.credentials_error == ""
    # The same session the Lambda service hands out while it is valid.
    assert context.credentials["AccessKeyId"] == lambda_identity.function_credentials(config, "fn")["AccessKeyId"]
    # A change shows in the next answer: nothing is kept between them.
    admin_client(seeded, "lambda").update_function_configuration(FunctionName="fn", Environment={"Variables": {}})
    assert (lambda_identity.function_context(config, "fn").configuration.get("Environment") or {}).get("Variables") in (
        None,
        {},
    )
    with pytest.raises(lambda_identity.FunctionNotFound):
        lambda_identity.function_context(config, "no-such-function")


def test_a_fresh_handler_of_a_function_whose_role_does_not_trust_lambda_gets_no_session(seeded):
    from infra.sandbox import lambda_identity

    ec2_trust = json.loads(json.dumps(LAMBDA_TRUST).replace("lambda.amazonaws.com", "ec2.amazonaws.com"))
    lambda_with_role(seeded, ec2_trust)
    context = lambda_identity.function_context(config_for(seeded), "fn")
    assert context.credentials is None and "not trusted to assume" in context.credentials_error


def test_a_role_that_does_not_trust_lambda_gives_no_credentials(seeded):
    from infra.sandbox import lambda_identity

    ec2_trust = json.loads(json.dumps(LAMBDA_TRUST).replace("lambda.amazonaws.com", "ec2.amazonaws.com"))
    lambda_with_role(seeded, ec2_trust)
    with pytest.raises(lambda_identity.LambdaCredentialsError, match="not trusted to assume"):
        lambda_identity.function_credentials(config_for(seeded), "fn")


def test_the_policy_seeded_is_the_documented_one(seeded):
    iam = admin_client(seeded, "iam")
    assert iam.list_user_policies(UserName="velaops")["PolicyNames"] == ["velaops"]
    document = iam.get_user_policy(UserName="velaops", PolicyName="velaops")["PolicyDocument"]
    assert document == iam_principals.policy_document(config_for(seeded))
    assert "REGION" not in json.dumps(document) and "ACCOUNT" not in json.dumps(document)


def active_clusters(moto_url: str, count: int) -> list[str]:
    dsql = admin_client(moto_url, "dsql")
    identifiers = [dsql.create_cluster(deletionProtectionEnabled=False)["identifier"] for _ in range(count)]
    for identifier in identifiers:
        while dsql.get_cluster(identifier=identifier)["status"] != "ACTIVE":
            time.sleep(0.1)
    return identifiers


def test_a_dsql_token_from_an_assumed_role_is_checked_against_the_roles_policy(seeded):
    from infra.sandbox.dsql_login import MotoLogins

    good, other = active_clusters(seeded, 2)
    iam = admin_client(seeded, "iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:*"}],
    }
    role = iam.create_role(RoleName="velaops-role", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    grant = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "dsql:DbConnectAdmin", "Resource": f"arn:aws:dsql:*:*:cluster/{good}"}
        ],
    }
    iam.put_role_policy(RoleName="velaops-role", PolicyName="dsql", PolicyDocument=json.dumps(grant))
    credentials = admin_client(seeded, "sts").assume_role(RoleArn=role, RoleSessionName="velaops")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    dsql = session.client("dsql", region_name="us-east-1", endpoint_url=seeded)
    logins = MotoLogins(config_for(seeded))

    def check(identifier: str, token: str | None = None):
        token = token or dsql.generate_db_connect_admin_auth_token(
            Hostname=f"{identifier}.dsql.us-east-1.on.aws", Region="us-east-1"
        )
        return logins.check(token, "admin", record=False)

    session_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/velaops-role/velaops"
    accepted = check(good)
    assert accepted.refusal is None and accepted.principal == session_arn
    assert (accepted.action, accepted.resource) == (
        "dsql:DbConnectAdmin",
        f"arn:aws:dsql:us-east-1:{ACCOUNT}:cluster/{good}",
    )
    refused = check(other).refusal
    assert refused.sqlstate == "28000"
    assert refused.reason == (
        f'IAM authentication failed for user "admin": {session_arn} is not authorized to perform: '
        f"dsql:DbConnectAdmin on resource: arn:aws:dsql:us-east-1:{ACCOUNT}:cluster/{other}"
    )
    # A token whose session token is not the key's session's is refused before any policy is read.
    token = dsql.generate_db_connect_admin_auth_token(Hostname=f"{good}.dsql.us-east-1.on.aws", Region="us-east-1")
    forged = check(good, token.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x"))
    assert forged.refusal.sqlstate == "28P01" and forged.action == ""
    # The policy is read at each login: its removal refuses the very next one.
    iam.delete_role_policy(RoleName="velaops-role", PolicyName="dsql")
    assert check(good).refusal.sqlstate == "28000"


def test_a_key_made_inactive_is_refused_at_the_next_login(seeded):
    from infra.sandbox.dsql_login import MotoLogins

    (identifier,) = active_clusters(seeded, 1)
    iam = admin_client(seeded, "iam")
    iam.create_user(UserName="rehearser")
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dsql:DbConnectAdmin", "Resource": "*"}],
    }
    iam.put_user_policy(UserName="rehearser", PolicyName="dsql", PolicyDocument=json.dumps(grant))
    key = iam.create_access_key(UserName="rehearser")["AccessKey"]
    signer = boto3.client(
        "dsql",
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    logins = MotoLogins(config_for(seeded))

    def login():
        token = signer.generate_db_connect_admin_auth_token(
            Hostname=f"{identifier}.dsql.us-east-1.on.aws", Region="us-east-1"
        )
        return logins.check(token, "admin", record=True)

    assert login().refusal is None and login().principal == f"arn:aws:iam::{ACCOUNT}:user/rehearser"
    iam.update_access_key(UserName="rehearser", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    refused = login().refusal
    assert (refused.sqlstate, refused.reason) == (
        "28P01",
        "the token is signed with an access key the sandbox does not know",
    )
