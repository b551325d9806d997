"""Change sets as VelaOps runs them: prepared (or the CI's picked), described as a diff, judged, executed, watched.

Names are derived from the migration and the step, and the client request token from the name, so a retry
after a crash finds the change set (and the execution) an earlier attempt started instead of making another.
A change set with nothing to change is success, not failure.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# Resources whose data a replacement or deletion would lose.
STATEFUL_TYPES = {"AWS::DynamoDB::Table", "AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::DSQL::Cluster"}
TABLE = "AWS::DynamoDB::Table"
NO_CHANGES = "didn't contain changes"  # CloudFormation's reason for an empty change set
PENDING = {"CREATE_PENDING", "CREATE_IN_PROGRESS", "DELETE_PENDING", "DELETE_IN_PROGRESS"}
# The capabilities `cdk deploy` grants: Vela's app names an IAM role.
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
FAILED_STACK = ("ROLLBACK", "FAILED")


class StackOperationFailed(Exception):
    def __init__(self, message: str, data: dict | None = None):
        super().__init__(message)
        self.data = data or {}


@dataclass(frozen=True)
class Source:
    """Where a step's change comes from: a change set the team's CI prepared on the stack, or a template URL."""

    change_set: str = ""
    template_url: str = ""

    @classmethod
    def parse(cls, value: Any) -> Source:
        value = value or {}
        return cls(change_set=str(value.get("change_set") or ""), template_url=str(value.get("template_url") or ""))

    def __bool__(self) -> bool:
        return bool(self.change_set or self.template_url)


def change_set_name(migration_pk: int, step_key: str, attempt: int | None = None) -> str:
    """A CloudFormation change-set name (letters, digits, hyphens; 128 at most), the same on every retry."""
    name = f"velaops-m{migration_pk}-{re.sub(r'[^A-Za-z0-9]+', '-', step_key).strip('-')}"
    return (name if attempt is None else f"{name}-{attempt}")[:128]


def describe(cfn: Any, stack: str, name: str) -> dict[str, Any] | None:
    """The change set with all its Changes (DescribeChangeSet pages them), or None if there is none."""
    try:
        described = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("ChangeSetNotFound", "ChangeSetNotFoundException"):
            return None
        if "does not exist" in exc.response.get("Error", {}).get("Message", ""):
            return None
        raise
    changes = list(described.get("Changes") or [])
    token = described.get("NextToken")
    while token:
        page = cfn.describe_change_set(StackName=stack, ChangeSetName=name, NextToken=token)
        changes += page.get("Changes") or []
        token = page.get("NextToken")
    return {**described, "Changes": changes}


def is_empty(described: dict[str, Any]) -> bool:
    return described.get("Status") == "FAILED" and NO_CHANGES in (described.get("StatusReason") or "")


def prepare(
    cfn: Any,
    stack: str,
    name: str,
    source: Source,
    *,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
    role_arn: str = "",
    timeout: float = 300,
) -> dict[str, Any]:
    """The described change set this step will execute: its own (created from the template, or found again on
    a retry) or the one the CI prepared. Raises StackOperationFailed when CloudFormation could not make it."""
    if source.change_set:
        described = describe(cfn, stack, source.change_set)
        if described is None:
            raise StackOperationFailed(f"{stack} has no change set named {source.change_set}.")
        log(f"using change set {source.change_set} prepared on {stack}")
    else:
        described = describe(cfn, stack, name)
        if described is not None and described.get("ExecutionStatus") in ("EXECUTE_FAILED", "OBSOLETE"):
            log(f"change set {name} was {described['ExecutionStatus']}; making it again")
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
            described = None
        if described is not None and described.get("Status") == "FAILED" and not is_empty(described):
            log(f"change set {name} failed before ({described.get('StatusReason')}); making it again")
            cfn.delete_change_set(StackName=stack, ChangeSetName=name)
            described = None
        if described is None:
            if not source.template_url:
                raise StackOperationFailed(f"No template is configured for this change of {stack}.")
            cfn.create_change_set(
                **create_arguments(cfn, stack, name, template_url=source.template_url, role_arn=role_arn)
            )
            log(f"change set {name} requested on {stack} from {source.template_url}")
        else:
            log(f"change set {name} of an earlier attempt found ({described['Status']})")
    deadline = time.monotonic() + timeout
    change_set = source.change_set or name
    while described is None or described.get("Status") in PENDING:
        if time.monotonic() > deadline:
            raise StackOperationFailed(f"Change set {change_set} still not ready after {timeout:.0f} s.")
        sleep(1)
        described = describe(cfn, stack, change_set)
    if described.get("Status") == "FAILED" and not is_empty(described):
        raise StackOperationFailed(
            f"CloudFormation could not make change set {change_set}: {described.get('StatusReason')}",
            {"change_set": change_set, "status_reason": described.get("StatusReason")},
        )
    return described


def create_arguments(
    cfn: Any,
    stack: str,
    name: str,
    *,
    template_url: str = "",
    template_body: str = "",
    role_arn: str = "",
    change_set_type: str = "UPDATE",
    description: str = "Prepared by VelaOps",
    **extra: Any,
) -> dict[str, Any]:
    """CreateChangeSet's arguments for every change set VelaOps makes: the stack's parameters reused as they
    are (UsePreviousValue, as `cdk deploy` does), CDK's capabilities, the name as the client token."""
    current = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    arguments: dict[str, Any] = {
        "StackName": stack,
        "ChangeSetName": name,
        "ChangeSetType": change_set_type,
        **({"TemplateURL": template_url} if template_url else {"TemplateBody": template_body}),
        "Parameters": [
            {"ParameterKey": p["ParameterKey"], "UsePreviousValue": True} for p in current.get("Parameters") or []
        ],
        "Capabilities": CAPABILITIES,
        "ClientToken": name,
        "Description": description,
        **extra,
    }
    if role_arn:
        arguments["RoleARN"] = role_arn
    return arguments


def diff(described: dict[str, Any]) -> list[dict[str, Any]]:
    """Every resource change, compact and JSON-safe: what the review shows and the step records."""
    rows = []
    for change in described.get("Changes") or []:
        resource = change.get("ResourceChange") or {}
        rows.append(
            {
                "action": resource.get("Action", ""),
                "logical_id": resource.get("LogicalResourceId", ""),
                "type": resource.get("ResourceType", ""),
                "physical_id": resource.get("PhysicalResourceId", ""),
                "replacement": resource.get("Replacement", ""),
                "policy_action": resource.get("PolicyAction", ""),
                "scope": list(resource.get("Scope") or []),
                "details": [
                    {
                        "attribute": (detail.get("Target") or {}).get("Attribute", ""),
                        "name": (detail.get("Target") or {}).get("Name", ""),
                        "requires_recreation": (detail.get("Target") or {}).get("RequiresRecreation", ""),
                        "before": (detail.get("Target") or {}).get("BeforeValue"),
                        "after": (detail.get("Target") or {}).get("AfterValue"),
                        "evaluation": detail.get("Evaluation", ""),
                        "source": detail.get("ChangeSource", ""),
                        "causing": detail.get("CausingEntity", ""),
                    }
                    for detail in resource.get("Details") or []
                ],
            }
        )
    return rows


def blockers(rows: list[dict[str, Any]], *, snapshot_taken: bool = False) -> list[str]:
    """Why this change may not run unattended: stateful data replaced or deleted, or a DynamoDB table touched
    (the plan's zero-impact rule for DynamoDB-backed behaviour)."""
    found = []
    for row in rows:
        what = f"{row['logical_id']} ({row['type']}{', ' + row['physical_id'] if row['physical_id'] else ''})"
        if row["type"] == TABLE and row["action"] in ("Modify", "Remove"):
            verb = "modified" if row["action"] == "Modify" else "removed"
            found.append(f"{what} would be {verb}: no change may touch a DynamoDB table")
            continue
        if row["type"] not in STATEFUL_TYPES:
            continue
        if row["action"] == "Modify" and row["replacement"] in ("True", "Conditional"):
            found.append(f"{what} would be replaced ({row['replacement']}): its data would not follow")
        elif row["action"] == "Remove" and row["policy_action"] == "Delete":
            found.append(f"{what} would be deleted (DeletionPolicy Delete)")
        elif row["action"] == "Remove" and row["policy_action"] == "Snapshot" and not snapshot_taken:
            found.append(f"{what} would be deleted before this migration's snapshot of Aurora exists")
    return found


def latest_event_id(cfn: Any, stack: str) -> str:
    events = cfn.describe_stack_events(StackName=stack).get("StackEvents") or []
    return events[0]["EventId"] if events else ""


def _events_since(cfn: Any, stack: str, last_seen: str) -> list[dict[str, Any]]:
    """Events newer than `last_seen`, oldest first (DescribeStackEvents lists newest first, in pages)."""
    newer: list[dict[str, Any]] = []
    token = None
    while True:
        page = cfn.describe_stack_events(StackName=stack, **({"NextToken": token} if token else {}))
        for event in page.get("StackEvents") or []:
            if event["EventId"] == last_seen:
                return list(reversed(newer))
            newer.append(event)
        token = page.get("NextToken")
        if not token:
            return list(reversed(newer))


def describe_event(event: dict[str, Any]) -> str:
    reason = f" — {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    return f"{event['LogicalResourceId']} ({event.get('ResourceType', '')}): {event['ResourceStatus']}{reason}"


def execute(
    cfn: Any,
    stack: str,
    change_set: str,
    *,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
    since_event: str,
    timeout: float = 3600,
) -> dict[str, Any]:
    """Execute (unless an earlier attempt did), stream the stack's events into `log` as they happen, and
    return the stack once it is done. Raises StackOperationFailed naming the first resource that failed."""
    described = describe(cfn, stack, change_set)
    if described is None:
        raise StackOperationFailed(f"Change set {change_set} of {stack} is gone: prepare it again.")
    if described.get("ExecutionStatus") == "AVAILABLE":
        cfn.execute_change_set(StackName=stack, ChangeSetName=change_set, ClientRequestToken=change_set)
        log(f"executing change set {change_set} on {stack}")
    else:
        log(f"change set {change_set} is {described.get('ExecutionStatus')}: following {stack}")
    return follow(cfn, stack, since_event, log=log, sleep=sleep, timeout=timeout)


def continue_rollback(
    cfn: Any,
    stack: str,
    *,
    token: str,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
    role_arn: str = "",
    timeout: float = 3600,
) -> dict[str, Any]:
    """ContinueUpdateRollback for a stack whose rollback failed, followed like an execution. Nothing is skipped:
    skipping leaves the stack disagreeing with its resources, a call for a person (ResourcesToSkip, by hand)."""
    since = latest_event_id(cfn, stack)
    cfn.continue_update_rollback(
        StackName=stack, ClientRequestToken=token, **({"RoleARN": role_arn} if role_arn else {})
    )
    log(f"{stack} is UPDATE_ROLLBACK_FAILED: continuing its rollback (ContinueUpdateRollback)")
    return follow(cfn, stack, since, log=log, sleep=sleep, timeout=timeout, done="UPDATE_ROLLBACK_COMPLETE")


def follow(
    cfn: Any,
    stack: str,
    since_event: str,
    *,
    log: Callable[[str], None],
    sleep: Callable[[float], None],
    timeout: float = 3600,
    done: str = "",
) -> dict[str, Any]:
    """Stream the stack's events after `since_event` into `log` until it is no longer in progress; the stack,
    or StackOperationFailed naming the first resource that failed. `done`: the status that is success even
    though it names a rollback (a continued rollback's UPDATE_ROLLBACK_COMPLETE)."""
    deadline = time.monotonic() + timeout
    seen = since_event
    failures: list[dict[str, Any]] = []
    while True:
        for event in _events_since(cfn, stack, seen):
            log(describe_event(event))
            seen = event["EventId"]
            if event["ResourceStatus"].endswith("_FAILED"):
                failures.append(event)
        current = cfn.describe_stacks(StackName=stack)["Stacks"][0]
        status = current["StackStatus"]
        if not status.endswith("_IN_PROGRESS"):
            break
        if time.monotonic() > deadline:
            raise StackOperationFailed(f"{stack} still {status} after {timeout:.0f} s.")
        sleep(2)
    if status != done and any(word in status for word in FAILED_STACK):
        first = next((e for e in failures if e["LogicalResourceId"] != stack), failures[0] if failures else None)
        reason = current.get("StackStatusReason") or (first or {}).get("ResourceStatusReason") or "see its events"
        where = f"{first['LogicalResourceId']} ({first.get('ResourceType', '')}): " if first else ""
        raise StackOperationFailed(
            f"{stack} ended {status}: {where}{reason}",
            {"stack": stack, "status": status, "failed_resource": (first or {}).get("LogicalResourceId", "")},
        )
    return current


def outputs(cfn: Any, stack: str) -> dict[str, str]:
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    return {item["OutputKey"]: item["OutputValue"] for item in described.get("Outputs") or []}
