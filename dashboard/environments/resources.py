"""Live state of an environment's Vela resources, read through the AWS APIs (and the API's health URL)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dashboard.aws import AWS_EXCEPTIONS, boto3_session, client, describe_error
from dashboard.health_route import fetch_health
from dashboard.models import Environment, Step
from dashboard.runbook.steps.decommission_aurora import STEP as DECOMMISSION_AURORA
from dashboard.stacks import ownership
from dashboard.stacks.ownership import Mode, Owned

HEALTH_URL_TIMEOUT = 5

# StackResourceDriftStatus values that mean the resource differs from its template.
DRIFTED_RESOURCE = {"MODIFIED", "DELETED"}


@dataclass(frozen=True)
class StackResource:
    """One row of a stack's Resources tab (ListStackResources)."""

    logical_id: str
    type: str
    physical_id: str
    status: str
    status_reason: str = ""
    drift: str = ""  # StackResourceDriftStatus: NOT_CHECKED until a drift detection covers the resource
    drift_checked: str = ""

    @property
    def status_class(self) -> str:
        """The row's colour, as the resource rows have it: failed is bad, in progress is a warning."""
        if self.status.endswith("_FAILED") or self.drift in DRIFTED_RESOURCE:
            return "bad"
        if self.status.endswith("_IN_PROGRESS"):
            return "warn"
        return "ok"


@dataclass(frozen=True)
class StackResources:
    """A stack's resources, every page of ListStackResources; or why they could not be listed."""

    items: tuple[StackResource, ...] = ()
    error_code: str = ""
    error_message: str = ""

    @property
    def drift_checked(self) -> bool:
        """Some resource has been covered by a drift detection: worth a drift column."""
        return any(item.drift and item.drift != "NOT_CHECKED" for item in self.items)

    @property
    def drifted(self) -> int:
        return sum(item.drift in DRIFTED_RESOURCE for item in self.items)

    @property
    def failed(self) -> int:
        return sum(item.status.endswith("_FAILED") for item in self.items)


@dataclass(frozen=True)
class ResourceState:
    kind: str
    name: str
    exists: bool | None  # None: could not tell (the check itself failed)
    state: str = ""
    details: dict[str, str] = field(default_factory=dict)
    error_code: str = ""
    error_message: str = ""
    stack_resources: StackResources | None = None  # CloudFormation stacks only, once the stack was read

    @property
    def detail_pairs(self) -> list[tuple[str, str]]:
        # Templates look up dict keys before methods, so `details.items` would break on a key named "items".
        return [(key, value) for key, value in self.details.items() if value]

    @property
    def healthy(self) -> bool:
        # A stack that drifted from its template is at rest but no longer what was deployed: not healthy.
        drifted = self.details.get("drift") == "DRIFTED"
        return bool(self.exists) and not self.error_code and self.state in HEALTHY_STATES and not drifted

    @property
    def retired(self) -> bool:
        """Gone on purpose (a completed runbook step deleted it), not missing."""
        return self.exists is False and self.state == DECOMMISSIONED


HEALTHY_STATES = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "IMPORT_COMPLETE",
    "available",
    "Active",
    "ACTIVE",
    "Successful",
    "ok",
}

DECOMMISSIONED = "decommissioned"

# Error codes that mean "checked, and it is not there" rather than "could not check".
NOT_FOUND_CODES = {
    "ResourceNotFoundException",
    "DBClusterNotFoundFault",
    "ValidationError",  # CloudFormation: "Stack with id X does not exist"
}


@dataclass(frozen=True)
class OwnershipView:
    """Which runbook the environment's stacks call for (dashboard.stacks.ownership), or why it is unknown."""

    mode: Mode | None
    unknown: str = ""


def runbook_mode(environment: Environment, resources: list[ResourceState]) -> OwnershipView:
    """From the stack rows already read for the page: no further AWS call."""
    owned: dict[tuple[str, str], Owned] = {}
    for row in resources:
        if row.kind != "CloudFormation stack":
            continue
        listing = row.stack_resources
        if listing is None or listing.error_code:
            reason = listing.error_message if listing else (row.error_message or "it could not be read")
            return OwnershipView(None, f"the resources of {row.name} could not be listed: {reason}")
        for item in listing.items:
            if item.physical_id and item.status != "DELETE_COMPLETE":
                owned[(item.type, item.physical_id)] = Owned(row.name, item.logical_id, item.type, item.physical_id)
    return OwnershipView(ownership.runbook_mode(environment, owned))


def environment_resources(environment: Environment) -> list[ResourceState]:
    """Check every configured resource concurrently; one failing check never hides the others."""
    session = boto3_session(environment)
    checks: list[Callable[[], ResourceState]] = []
    if environment.cloudformation_stacks:
        cfn = client(environment, "cloudformation", session)
        checks += [lambda name=name: _stack(cfn, name) for name in environment.cloudformation_stacks]
    if environment.lambda_function_name:
        lam = client(environment, "lambda", session)
        checks.append(lambda: _lambda(lam, environment.lambda_function_name))
    if environment.api_health_url:
        checks.append(lambda: _health_url(environment.api_health_url))
    if environment.dsql_cluster_identifier:
        dsql = client(environment, "dsql", session)
        checks.append(lambda: _dsql(dsql, environment))
    decommission = _aurora_decommission(environment)  # read here: the checks run on other threads
    # A decommission clears the environment's Aurora settings; the page still says where Aurora went.
    aurora = environment.aurora_cluster_identifier or (decommission.outputs.get("cluster", "") if decommission else "")
    if aurora:
        rds = client(environment, "rds", session)
        checks.append(lambda: _aurora(rds, aurora, decommission))
    if environment.dynamodb_tables:
        ddb = client(environment, "dynamodb", session)
        checks += [lambda name=name: _table(ddb, name) for name in environment.dynamodb_tables]
    if not checks:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(checks))) as pool:
        return list(pool.map(lambda check: check(), checks))


def _guarded(kind: str, name: str, read: Callable[[], ResourceState]) -> ResourceState:
    try:
        return read()
    except AWS_EXCEPTIONS as exc:
        error = describe_error(exc)
        exists = False if error.code in NOT_FOUND_CODES and _is_not_found(error.message) else None
        return ResourceState(kind, name, exists, error_code=error.code, error_message=error.message)


def _is_not_found(message: str) -> bool:
    lowered = message.lower()
    return "not found" in lowered or "does not exist" in lowered or "not exist" in lowered or "cannot find" in lowered


def _stack(cfn, name: str) -> ResourceState:
    def read() -> ResourceState:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        details = {"last updated": _when(stack.get("LastUpdatedTime") or stack.get("CreationTime"))}
        if stack.get("StackStatusReason"):
            details["reason"] = stack["StackStatusReason"]
        drift = stack.get("DriftInformation") or {}
        if drift.get("StackDriftStatus"):
            details["drift"] = drift["StackDriftStatus"]
        if drift.get("LastCheckTimestamp"):
            details["drift checked"] = _when(drift["LastCheckTimestamp"])
        resources = _stack_resources(cfn, name)
        return ResourceState(
            "CloudFormation stack", name, True, stack["StackStatus"], details, stack_resources=resources
        )

    return _guarded("CloudFormation stack", name, read)


def _stack_resources(cfn, stack: str) -> StackResources:
    """Every page of ListStackResources, sorted by type then logical id; a failure is kept, never raised,
    so the stack's own row still shows."""
    try:
        items = [
            _stack_resource(summary)
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
            for summary in page.get("StackResourceSummaries") or []
        ]
    except AWS_EXCEPTIONS as exc:
        error = describe_error(exc)
        return StackResources(error_code=error.code, error_message=error.message)
    return StackResources(tuple(sorted(items, key=lambda item: (item.type, item.logical_id))))


def _stack_resource(summary: dict) -> StackResource:
    drift = summary.get("DriftInformation") or {}
    return StackResource(
        logical_id=summary.get("LogicalResourceId", ""),
        type=summary.get("ResourceType", ""),
        physical_id=summary.get("PhysicalResourceId", ""),
        status=summary.get("ResourceStatus", ""),
        status_reason=summary.get("ResourceStatusReason", ""),
        drift=drift.get("StackResourceDriftStatus", ""),
        drift_checked=_when(drift.get("LastCheckTimestamp")),
    )


def _when(value: datetime | str | None) -> str:
    """An AWS timestamp as the page shows times: UTC, to the second."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value or "")


def _lambda(lam, name: str) -> ResourceState:
    def read() -> ResourceState:
        config = lam.get_function_configuration(FunctionName=name)
        vpc = config.get("VpcConfig") or {}
        details = {
            "runtime": config.get("Runtime", ""),
            "last update": config.get("LastUpdateStatus", ""),
            "subnets": str(len(vpc.get("SubnetIds") or [])),
            "security groups": ", ".join(vpc.get("SecurityGroupIds") or []),
        }
        return ResourceState("Lambda function", name, True, config.get("State", "Active"), details)

    return _guarded("Lambda function", name, read)


def _aurora_decommission(environment: Environment) -> Step | None:
    """The latest succeeded "Decommission Aurora" step of this environment's migrations, if any."""
    return (
        Step.objects.filter(migration__environment=environment, key=DECOMMISSION_AURORA.key, state=Step.State.SUCCEEDED)
        .select_related("migration")
        .order_by("-migration__started_at")
        .first()
    )


def _dsql(dsql, environment: Environment) -> ResourceState:
    identifier = environment.dsql_cluster_identifier

    def read() -> ResourceState:
        cluster = dsql.get_cluster(identifier=identifier)
        details = {
            "endpoint": environment.dsql_endpoint,
            "deletion protection": "on" if cluster.get("deletionProtectionEnabled") else "off",
            "created": str(cluster.get("creationTime") or ""),
            "ARN": cluster.get("arn", ""),
        }
        return ResourceState("DSQL cluster", identifier, True, cluster.get("status", ""), details)

    return _guarded("DSQL cluster", identifier, read)


def _aurora(rds, identifier: str, decommission: Step | None = None) -> ResourceState:
    found = _aurora_live(rds, identifier)
    if found.exists is False and decommission is not None:
        return _aurora_decommissioned(rds, identifier, decommission)
    return found


def _aurora_decommissioned(rds, identifier: str, decommission: Step) -> ResourceState:
    """Deleted by the runbook: say so, with the final snapshot it left (read live, it may be gone too)."""
    snapshot = decommission.outputs.get("final_snapshot", "")
    details = {"by": f"migration {decommission.migration_id}", "final snapshot": snapshot}
    if snapshot:
        try:
            found = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot)["DBClusterSnapshots"]
            details["snapshot status"] = found[0].get("Status", "") if found else "not found"
            if found and found[0].get("SnapshotCreateTime"):
                details["snapshot taken"] = str(found[0]["SnapshotCreateTime"])
        except AWS_EXCEPTIONS as exc:
            error = describe_error(exc)
            details["snapshot status"] = "not found" if error.code == "DBClusterSnapshotNotFoundFault" else error.code
    return ResourceState("Aurora cluster", identifier, False, DECOMMISSIONED, details)


def _aurora_live(rds, identifier: str) -> ResourceState:
    def read() -> ResourceState:
        cluster = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
        details = {
            "engine": f"{cluster.get('Engine', '')} {cluster.get('EngineVersion', '')}".strip(),
            "deletion protection": "on" if cluster.get("DeletionProtection") else "off",
            "instances": str(len(cluster.get("DBClusterMembers") or [])),
        }
        return ResourceState("Aurora cluster", identifier, True, cluster.get("Status", ""), details)

    return _guarded("Aurora cluster", identifier, read)


def _table(ddb, name: str) -> ResourceState:
    def read() -> ResourceState:
        table = ddb.describe_table(TableName=name)["Table"]
        details = {
            "item count": str(table.get("ItemCount", "")),
            "billing": (table.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED"),
        }
        return ResourceState("DynamoDB table", name, True, table.get("TableStatus", ""), details)

    return _guarded("DynamoDB table", name, read)


def _health_url(url: str) -> ResourceState:
    kind = "API health route"
    reading = fetch_health(url, timeout=HEALTH_URL_TIMEOUT)
    if not reading.reachable:
        return ResourceState(kind, url, None, error_code="Unreachable", error_message=reading.error)
    details = {
        "HTTP": str(reading.http_status),
        "DSQL connected": "" if reading.dsql_connected is None else str(reading.dsql_connected),
        "latency ms": "" if reading.dsql_latency_ms is None else f"{reading.dsql_latency_ms:.1f}",
        "cluster": reading.cluster_arn,
    }
    if reading.http_status != 200:
        return ResourceState(kind, url, True, f"HTTP {reading.http_status}", details, "HTTP error", reading.error)
    return ResourceState(kind, url, True, reading.status or "unknown", details, error_message=reading.error)
