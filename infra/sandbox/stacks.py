"""Vela's CloudFormation stacks in the sandbox: the synthesized templates of its CDK app, deployed as `cdk deploy` does.

The templates are the committed `cdk synth` output of infra/sandbox/cdk (revisions r0, r1, r2). Deploying
uploads a template to the bootstrap asset bucket and creates the stack from its S3 URL, with the
capabilities CDK asks for; the bootstrap prerequisites (the `CDKToolkit` stack with its asset bucket and
the `/cdk-bootstrap/hnb659fds/version` parameter the templates' `BootstrapVersion` parameter reads) are
deployed first, as `cdk bootstrap` leaves them.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from infra.sandbox.config import SandboxConfig

SYNTH = Path(__file__).resolve().parent / "cdk" / "synth"
REVISIONS = ("r0", "r1", "r2")
STACKS = ("DatabaseStack", "ApiStack")  # in deployment order: ApiStack imports DatabaseStack's exports
# What `cdk deploy` passes: the app names an IAM role (vela-api-role).
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
STACK_TAGS = [{"Key": "app", "Value": "vela"}]

BOOTSTRAP_QUALIFIER = "hnb659fds"  # CDK's default qualifier
BOOTSTRAP_VERSION = "30"  # what a current `cdk bootstrap` leaves (the templates require >= 6)
BOOTSTRAP_STACK = "CDKToolkit"
TERMINAL_FAILURES = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
}


def template_body(revision: str, stack: str) -> str:
    if revision not in REVISIONS or stack not in STACKS:
        raise ValueError(f"no template for {stack} at {revision}: revisions {REVISIONS}, stacks {STACKS}")
    return (SYNTH / revision / f"{stack}.template.json").read_text()


def asset_bucket(config: SandboxConfig) -> str:
    return f"cdk-{BOOTSTRAP_QUALIFIER}-assets-{config.account_id}-{config.region}"


def _bootstrap_template(config: SandboxConfig) -> str:
    # The parts of CDK's bootstrap template the Vela templates depend on (bucket and version parameter).
    return json.dumps(
        {
            "Description": "This stack includes resources needed to deploy AWS CDK apps into this environment",
            "Resources": {
                "StagingBucket": {
                    "Type": "AWS::S3::Bucket",
                    "Properties": {"BucketName": asset_bucket(config)},
                    "DeletionPolicy": "Retain",
                    "UpdateReplacePolicy": "Retain",
                },
                "CdkBootstrapVersion": {
                    "Type": "AWS::SSM::Parameter",
                    "Properties": {
                        "Type": "String",
                        "Name": f"/cdk-bootstrap/{BOOTSTRAP_QUALIFIER}/version",
                        "Value": BOOTSTRAP_VERSION,
                    },
                },
            },
            "Outputs": {
                "BucketName": {"Value": {"Ref": "StagingBucket"}},
                "BootstrapVersion": {"Value": {"Fn::GetAtt": ["CdkBootstrapVersion", "Value"]}},
            },
        }
    )


def stack_exists(cfn: Any, name: str) -> bool:
    try:
        cfn.describe_stacks(StackName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ValidationError":
            return False
        raise
    return True


def bootstrap(config: SandboxConfig, client) -> None:
    """`cdk bootstrap`'s result, once: the CDKToolkit stack with the asset bucket and the version parameter."""
    cfn = client("cloudformation")
    if not stack_exists(cfn, BOOTSTRAP_STACK):
        cfn.create_stack(StackName=BOOTSTRAP_STACK, TemplateBody=_bootstrap_template(config))
        wait_for_stack(cfn, BOOTSTRAP_STACK)


def upload(config: SandboxConfig, client, revision: str, stack: str) -> str:
    """The template in the asset bucket under its content hash, as `cdk deploy` publishes it; its URL."""
    body = template_body(revision, stack)
    key = hashlib.sha256(body.encode()).hexdigest() + ".json"
    client("s3").put_object(Bucket=asset_bucket(config), Key=key, Body=body.encode())
    return f"https://s3.{config.region}.amazonaws.com/{asset_bucket(config)}/{key}"


def deploy(config: SandboxConfig, client, revision: str = "r0") -> None:
    """Create whichever of the stacks is missing, at `revision`, in order; existing stacks are left as they are."""
    bootstrap(config, client)
    cfn = client("cloudformation")
    for stack in STACKS:
        if stack_exists(cfn, stack):
            continue
        cfn.create_stack(
            StackName=stack,
            TemplateURL=upload(config, client, revision, stack),
            Capabilities=CAPABILITIES,
            Tags=STACK_TAGS,
        )
        wait_for_stack(cfn, stack)


def create_change_set(config: SandboxConfig, client, stack: str, revision: str, name: str) -> str:
    """A change set of `stack` to `revision`'s template, as `cdk deploy --method=prepare-change-set` leaves it."""
    cfn = client("cloudformation")
    response = cfn.create_change_set(
        StackName=stack,
        ChangeSetName=name,
        ChangeSetType="UPDATE",
        TemplateURL=upload(config, client, revision, stack),
        Parameters=[{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}],
        Capabilities=CAPABILITIES,
        Tags=STACK_TAGS,
    )
    return response["Id"]


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs") or []}


def physical_ids(cfn: Any, stack: str) -> dict[str, str]:
    """Logical id → physical id of every resource the stack holds."""
    listed = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return {item["LogicalResourceId"]: item.get("PhysicalResourceId") or "" for item in listed}


def wait_for_stack(cfn: Any, stack: str, timeout: float = 60) -> dict[str, Any]:
    """The stack once it is no longer in progress; RuntimeError (with its reason) when it failed."""
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = described["StackStatus"]
        if status in TERMINAL_FAILURES:
            raise RuntimeError(f"{stack} is {status}: {described.get('StackStatusReason') or 'see its events'}")
        if not status.endswith("_IN_PROGRESS"):
            return described
        if time.monotonic() > deadline:
            raise RuntimeError(f"{stack} still {status} after {timeout:.0f}s")
        time.sleep(0.2)


# What each change of VelaOps's change-set runbook deploys in the sandbox (Environment.stack_changes).
CHANGES = {
    "add_dsql": ("r1", "DatabaseStack"),
    "point_lambda": ("r1", "ApiStack"),
    "drop_aurora_api": ("r2", "ApiStack"),
    "remove_aurora": ("r2", "DatabaseStack"),
}


def stack_changes(config: SandboxConfig, client) -> dict[str, dict[str, str]]:
    """The r1/r2 templates in the asset bucket, as a team's CI would publish them: the environment's ready choices."""
    return {
        purpose: {"template_url": upload(config, client, revision, stack)}
        for purpose, (revision, stack) in CHANGES.items()
    }


def release(config: SandboxConfig, client) -> None:
    """An account whose resources no stack owns (for the direct-API runbook): every resource of each stack
    marked Retain, then the stack deleted — ApiStack first, since it imports DatabaseStack's exports."""
    cfn = client("cloudformation")
    for stack in reversed(STACKS):
        if not stack_exists(cfn, stack):
            continue
        body = cfn.get_template(StackName=stack)["TemplateBody"]
        template = json.loads(body) if isinstance(body, str) else body
        for resource in template["Resources"].values():
            resource["DeletionPolicy"] = "Retain"
        cfn.update_stack(
            StackName=stack,
            TemplateBody=json.dumps(template),
            Parameters=[{"ParameterKey": "BootstrapVersion", "UsePreviousValue": True}],
            Capabilities=CAPABILITIES,
        )
        wait_for_stack(cfn, stack)
        cfn.delete_stack(StackName=stack)
        if stack_exists(cfn, stack):
            raise RuntimeError(f"{stack} was not deleted: {cfn.describe_stacks(StackName=stack)['Stacks'][0]}")
