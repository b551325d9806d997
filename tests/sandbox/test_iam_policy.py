"""infra/iam-policy.json against the calls VelaOps really makes: every AWS API call the product (dashboard/,
tasks/) makes during both runbooks' full migrations, their rollbacks, the probes and a report is recorded with
the resource it acts on, and each must be allowed by the documented policy, resource ARNs and wildcards
included (the sandbox's moto checks only the action; docs/sandbox.md). Every action the policy grants must be
used by one of them, or be listed below with why. Then an action removed from the policy fails the step that
needs it with AWS's AccessDenied in the sandbox.

The recorder wraps botocore's BaseClient._make_api_call (calling through: it records, it does not answer) and
the DSQL endpoint's login check (dsql_login.MotoLogins.check, whose answer names the IAM question moto
evaluated), keeping calls whose stack passes through the product's code.
"""

from __future__ import annotations

import copy
import fnmatch
import traceback
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import botocore.client
import pytest

from dashboard.monitoring.probes import run_probe
from dashboard.runbook import DIRECT, service
from infra.sandbox import iam_principals
from infra.sandbox.dsql_login import MotoLogins
from tests.runbook import test_full_migration as direct_runbook
from tests.runbook import test_stack_migration as stack_runbook
from tests.runbook.conftest import step
from tests.runbook.test_full_migration import act, worker  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = (str(ROOT / "dashboard") + "/", str(ROOT / "tasks") + "/")
REGION, ACCOUNT = "us-east-1", "123456789012"

# Granted but not called in the sandbox's rehearsal, and why they stay.
UNUSED_BECAUSE = {
    "iam:PassRole": "CloudFormation is handed the environment's service role (docs/aws.md); the sandbox names none",
    "lambda:InvokeFunction": "the API health probe invokes the Lambda only when the environment has no health URL",
    # Recovery paths, not the rehearsal recorded here; their own tests (tests/runbook/test_full_migration.py's
    # rollbacks, test_stack_migration.py's failed change set) do not pass today for reasons that are not IAM's.
    "dsql:UpdateCluster": "provision_dsql's rollback lifts the cluster's deletion protection",
    "dsql:DeleteCluster": "provision_dsql's rollback deletes the cluster",
    "cloudformation:DeleteChangeSet": "a change set that failed or went obsolete is made again (changesets.py)",
    "cloudformation:ContinueUpdateRollback": "the execute step's rollback of a stack in UPDATE_ROLLBACK_FAILED",
    "ec2:DescribeRouteTables": "readiness reads the subnets' routes only when no usable DSQL endpoint exists, "
    "and the rehearsal's Lambda has one (tests/readiness/test_network_and_permissions.py reads them)",
    "ec2:DescribeNatGateways": "likewise: only for a default route to a NAT gateway",
    "iam:GetRole": "readiness turns VelaOps's session ARN into its role's; the sandbox's VelaOps is an IAM user",
}
# Allowed whatever the policy says (the STS API reference: "No permissions are required to perform this
# operation"; an explicit Deny does not apply to it either).
ALWAYS_ALLOWED = {"sts:GetCallerIdentity"}

CALLS: set[tuple[str, str, str]] = set()  # (action, resource, where: the product frame that made it)


def _product_frame() -> str | None:
    for frame in reversed(traceback.extract_stack()):
        if frame.filename.startswith(PRODUCT):
            return f"{Path(frame.filename).relative_to(ROOT)}:{frame.name}"
    return None


def _stack_arn(name: str) -> str:
    return name if name.startswith("arn:") else f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{name}/id"


def resources(service_name: str, operation: str, params: dict) -> list[str]:
    """The resource ARNs IAM authorises the call on (the Service Authorization Reference's resource types)."""
    arn = f"arn:aws:{service_name}:{REGION}:{ACCOUNT}"
    if service_name == "cloudformation":
        return [_stack_arn(params["StackName"])] if params.get("StackName") else ["*"]
    if service_name == "lambda":
        name = params.get("FunctionName", "*")
        return [name if name.startswith("arn:") else f"{arn}:function:{name}"]
    if service_name == "dynamodb":
        return [f"{arn}:table/{params['TableName']}"] if "TableName" in params else ["*"]
    if service_name == "dsql":
        if "resourceArn" in params:
            return [params["resourceArn"]]
        if "identifier" in params:
            return [f"{arn}:cluster/{params['identifier']}"]
        return [f"{arn}:cluster/*"] if operation == "CreateCluster" else ["*"]
    if service_name == "secretsmanager":
        secret = params.get("SecretId", "*")
        return [secret if secret.startswith("arn:") else f"{arn}:secret:{secret}-AbCdEf"]
    if service_name == "s3":
        return [f"arn:aws:s3:::{params['Bucket']}/{params.get('Key', '')}".rstrip("/")]
    if service_name == "rds":
        found = []
        if params.get("DBClusterIdentifier"):
            found.append(f"{arn}:cluster:{params['DBClusterIdentifier']}")
        if params.get("DBInstanceIdentifier"):
            found.append(f"{arn}:db:{params['DBInstanceIdentifier']}")
        for key in ("DBClusterSnapshotIdentifier", "FinalDBSnapshotIdentifier"):
            if params.get(key):
                found.append(f"{arn}:cluster-snapshot:{params[key]}")
        if params.get("ResourceName"):
            found.append(params["ResourceName"])
        return found or ["*"]
    if service_name == "sts":
        return [params.get("RoleArn", "*")]
    if service_name == "iam":
        if "PolicySourceArn" in params:  # SimulatePrincipalPolicy is authorised on the principal simulated
            return [params["PolicySourceArn"]]
        if "RoleName" in params:
            return [f"arn:aws:iam::{ACCOUNT}:role/{params['RoleName']}"]
    return ["*"]


def dependent_actions(service_name: str, operation: str, params: dict) -> list[tuple[str, str]]:
    """What else IAM checks for the call, as the services document it (checked 2026-12-02):
    tags on create need the tagging action (DSQL's and RDS's Service Authorization Reference list
    dsql:TagResource / rds:AddTagsToResource for CreateCluster / CreateDBClusterSnapshot with tags), and
    CloudFormation reads a TemplateURL with the caller's permissions (s3:GetObject)."""
    found = []
    if service_name == "dsql" and operation == "CreateCluster" and params.get("tags"):
        found.append(("dsql:TagResource", f"arn:aws:dsql:{REGION}:{ACCOUNT}:cluster/*"))
    if service_name == "rds" and params.get("Tags") and operation.startswith("Create"):
        found += [("rds:AddTagsToResource", r) for r in resources("rds", operation, params)]
    if service_name == "cloudformation" and params.get("TemplateURL"):
        url = urlparse(params["TemplateURL"])
        host_bucket, _, _ = url.netloc.partition(".s3")
        bucket, key = (host_bucket, url.path.lstrip("/")) if host_bucket else url.path.lstrip("/").split("/", 1)
        if url.netloc.startswith("127.0.0.1") or url.netloc.startswith("localhost"):
            bucket, key = url.path.lstrip("/").split("/", 1)  # the sandbox's path-style URL
        found.append(("s3:GetObject", f"arn:aws:s3:::{bucket}/{key}"))
    return found


@pytest.fixture(scope="module", autouse=True)
def recorder() -> Iterator[None]:
    make_api_call = botocore.client.BaseClient._make_api_call
    check = MotoLogins.check

    def recording_call(self, operation_name, api_params):
        where = _product_frame()
        if where:
            model = self.meta.service_model
            prefix = model.signing_name or model.endpoint_prefix
            for resource in resources(prefix, operation_name, api_params):
                CALLS.add((f"{prefix}:{operation_name}", resource, where))
            for action, resource in dependent_actions(prefix, operation_name, api_params):
                CALLS.add((action, resource, where))
        return make_api_call(self, operation_name, api_params)

    def recording_check(self, token, user, *, record):
        login = check(self, token, user, record=record)
        if login.action and login.principal.endswith(f":user/{iam_principals.VELAOPS_USER}"):
            CALLS.add((login.action, login.resource, "DSQL login"))
        return login

    botocore.client.BaseClient._make_api_call = recording_call
    MotoLogins.check = recording_check
    yield
    botocore.client.BaseClient._make_api_call = make_api_call
    MotoLogins.check = check


def statements(policy: dict) -> list[dict]:
    found = policy["Statement"]
    return [found] if isinstance(found, dict) else found


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def allowed_by(policy: dict, action: str, resource: str) -> list[str]:
    """The Sids of Allow statements granting action on resource: IAM's wildcard matching, case-insensitive
    actions, case-sensitive ARNs; a call on no particular resource ("*") needs a statement on "*"."""
    granted = []
    for statement in statements(policy):
        if statement["Effect"] != "Allow" or "Condition" in statement:
            continue
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in _listed(statement["Action"])):
            continue
        patterns = _listed(statement["Resource"])
        if resource == "*" and "*" not in patterns:
            continue
        if any(fnmatch.fnmatchcase(resource, p) for p in patterns):
            granted.append(statement.get("Sid", "?"))
    return granted


def test_the_direct_runbook_its_rollbacks_and_the_probes(worker, fresh_direct_sandbox_environment, operator):  # noqa: F811
    direct_runbook.test_the_whole_migration_then_its_rollbacks(worker, fresh_direct_sandbox_environment, operator)
    for target in fresh_direct_sandbox_environment.targets.filter(paused=False):
        run_probe(target)


def test_the_change_set_runbook(worker, fresh_sandbox_environment, operator):  # noqa: F811
    stack_runbook.test_the_whole_migration_through_change_sets(worker, fresh_sandbox_environment, operator)
    for target in fresh_sandbox_environment.targets.filter(paused=False):
        run_probe(target)


def test_every_call_is_allowed_by_the_documented_policy(sandbox):
    assert {action for action, _, _ in CALLS} >= {"dsql:CreateCluster", "cloudformation:ExecuteChangeSet"}, (
        "the migrations above did not run: nothing to compare"
    )
    policy = iam_principals.policy_document(sandbox.config)
    refused = sorted(
        (action, resource, where)
        for action, resource, where in CALLS
        if action not in ALWAYS_ALLOWED and not allowed_by(policy, action, resource)
    )
    assert not refused, "calls infra/iam-policy.json does not allow (action, resource, made by):\n" + "\n".join(
        map(str, refused)
    )


def test_every_grant_is_used_or_says_why_not(sandbox):
    policy = iam_principals.policy_document(sandbox.config)
    granted = {a for statement in statements(policy) for a in _listed(statement["Action"])}
    used = {action for action, _, _ in CALLS}
    dead = sorted(granted - used - set(UNUSED_BECAUSE))
    assert not dead, f"granted, never called (dead grants): {dead}"
    assert sorted(set(UNUSED_BECAUSE) & used) == [], "listed as unused, but called"


def test_an_action_removed_from_the_policy_fails_its_step_with_access_denied(
    worker,  # noqa: F811
    fresh_direct_sandbox_environment,
    operator,
    sandbox,
):
    environment = fresh_direct_sandbox_environment
    policy = copy.deepcopy(iam_principals.policy_document(sandbox.config))
    for statement in statements(policy):
        statement["Action"] = [a for a in _listed(statement["Action"]) if a != "dsql:CreateCluster"]
    admin = sandbox_admin(sandbox)
    iam_principals.seed_velaops(sandbox.config, admin, policy=policy)
    try:
        migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
        for definition in DIRECT.steps:
            confirmation = environment.aurora_cluster_identifier if definition.destructive else ""
            attempt = act(migration, definition.key, operator, confirmation=confirmation)
            if definition.key == "provision_dsql":
                break
            assert attempt.status == "succeeded", (definition.key, attempt.error)
        assert attempt.status == "failed"
        assert attempt.error["code"] == "AccessDeniedException"
        assert attempt.error["message"].startswith(
            f"User: arn:aws:iam::{ACCOUNT}:user/velaops is not authorized to perform: dsql:CreateCluster"
        )
        assert step(migration, "provision_dsql").state == "failed"
    finally:
        iam_principals.seed_velaops(sandbox.config, admin)


def sandbox_admin(sandbox):
    from infra.sandbox.seed import _client

    return lambda service_name: _client(sandbox.config, service_name)
