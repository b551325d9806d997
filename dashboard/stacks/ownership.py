"""Which stack owns a resource, and so which runbook an environment follows.

Ownership comes from the stacks' own resource lists (ListStackResources), the record CloudFormation
keeps; an environment whose Lambda, Aurora or DSQL cluster a configured stack owns is migrated through
the stacks, one whose resources no stack owns through the direct-API runbook.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

# The types the runbook touches, and where an environment names each.
LAMBDA = "AWS::Lambda::Function"
AURORA = "AWS::RDS::DBCluster"
DSQL = "AWS::DSQL::Cluster"
STACKS_MODE = "stacks"
DIRECT_MODE = "direct"


@dataclass(frozen=True)
class Owned:
    stack: str
    logical_id: str
    resource_type: str
    physical_id: str

    def __str__(self) -> str:
        return f"{self.physical_id} is {self.logical_id} ({self.resource_type}) in stack {self.stack}"


def stack_resources(cfn: Any, stack: str) -> list[dict[str, Any]]:
    """Every resource summary of `stack`, across pages."""
    summaries: list[dict[str, Any]] = []
    token = None
    while True:
        page = cfn.list_stack_resources(StackName=stack, **({"NextToken": token} if token else {}))
        summaries += page.get("StackResourceSummaries") or []
        token = page.get("NextToken")
        if not token:
            return summaries


def _missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", "")


def owned_resources(cfn: Any, stacks: Iterable[str]) -> dict[tuple[str, str], Owned]:
    """(type, physical id) → its owner, for every resource of the given stacks. A stack that does not exist
    owns nothing (the preflight step reports it); any other failure to list is raised."""
    owned: dict[tuple[str, str], Owned] = {}
    for stack in stacks:
        try:
            items = stack_resources(cfn, stack)
        except ClientError as exc:
            if _missing(exc):
                continue
            raise
        for item in items:
            physical = item.get("PhysicalResourceId") or ""
            if physical and item.get("ResourceStatus") != "DELETE_COMPLETE":
                owned[(item["ResourceType"], physical)] = Owned(
                    stack, item["LogicalResourceId"], item["ResourceType"], physical
                )
    return owned


def owner_of(cfn: Any, stacks: Iterable[str], resource_type: str, physical_id: str) -> Owned | None:
    return owned_resources(cfn, stacks).get((resource_type, physical_id)) if physical_id else None


@dataclass(frozen=True)
class Mode:
    name: str  # STACKS_MODE or DIRECT_MODE
    owned: tuple[Owned, ...]

    @property
    def through_stacks(self) -> bool:
        return self.name == STACKS_MODE

    @property
    def reason(self) -> str:
        if self.owned:
            return "; ".join(str(owner) for owner in self.owned) + ": changed only through their stacks."
        return "No configured stack owns the Lambda function or the database clusters: the runbook calls their APIs."


def runbook_mode(environment: Any, owned: dict[tuple[str, str], Owned]) -> Mode:
    """The mode for an environment, given what its stacks own."""
    wanted = [
        (LAMBDA, environment.lambda_function_name),
        (AURORA, environment.aurora_cluster_identifier),
        (DSQL, environment.dsql_cluster_identifier),
    ]
    found = tuple(owned[key] for key in wanted if key[1] and key in owned)
    return Mode(STACKS_MODE if found else DIRECT_MODE, found)
