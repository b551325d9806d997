"""Stack drift detection in the sandbox's moto, which has none: DetectStackDrift, DescribeStackDriftDetectionStatus,
DescribeStackResourceDrifts, DetectStackResourceDrift, and DriftInformation on DescribeStacks/ListStacks and on
DescribeStackResource(s)/ListStackResources.

What is compared, as AWS does: a resource's template Properties, resolved with the stack's resource map as moto
resolved them (Ref, GetAtt, ImportValue, Join...), against the live resource read from moto's service backend by
physical id (never from the CloudFormation model object, so a change made through the service's API shows).
Only properties set in the template are compared (AWS does not compare defaults either), readOnly and writeOnly
paths of the registry schema never drift. Each supported type is one entry in `DRIFT_TYPES`; any other type is
NOT_CHECKED, as AWS reports types that do not support drift detection.

Unlike AWS, detection runs synchronously: DetectStackDrift returns once the result is final, so
DescribeStackDriftDetectionStatus never says DETECTION_IN_PROGRESS.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from moto.cloudformation import parsing, responses
from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import CloudFormationBackend, Stack, cloudformation_backends
from moto.core.responses import ActionResult
from moto.core.utils import utcnow

from infra.sandbox.cfn import registry

# AWS detects drift only on stacks at rest (the user guide lists CREATE_COMPLETE, UPDATE_COMPLETE,
# UPDATE_ROLLBACK_COMPLETE, UPDATE_ROLLBACK_FAILED; imported stacks are checked too).
DETECTABLE_STATUSES = frozenset(
    {
        "CREATE_COMPLETE",
        "UPDATE_COMPLETE",
        "UPDATE_ROLLBACK_COMPLETE",
        "UPDATE_ROLLBACK_FAILED",
        "IMPORT_COMPLETE",
        "IMPORT_ROLLBACK_COMPLETE",
    }
)
DRIFTED_STATUSES = frozenset({"MODIFIED", "DELETED"})

Path = tuple[str, ...]


# ---------------------------------------------------------------------------------------------------------------
# Live state, read from moto's service backends. Each reader returns the resource's properties in the template's
# shape (only those its DriftType compares), or None when the resource no longer exists.


def _lambda_function(account_id: str, region: str, name: str) -> dict[str, Any] | None:
    from moto.awslambda.exceptions import UnknownFunctionException
    from moto.awslambda.utils import get_backend  # the simple (docker-less) backend when moto is so configured

    try:
        config = get_backend(account_id, region).get_function(name).get_configuration()
    except UnknownFunctionException:
        return None
    vpc = config.get("VpcConfig") or {}  # moto adds a made-up VpcId, which is no template property
    return {
        "Environment": {"Variables": dict((config.get("Environment") or {}).get("Variables") or {})},
        "VpcConfig": {
            "SubnetIds": list(vpc.get("SubnetIds") or []),
            "SecurityGroupIds": list(vpc.get("SecurityGroupIds") or []),
        },
        "Timeout": config.get("Timeout"),
        "MemorySize": config.get("MemorySize"),
        "Runtime": config.get("Runtime"),
        "Handler": config.get("Handler"),
    }


def _dsql_cluster(account_id: str, region: str, identifier: str) -> dict[str, Any] | None:
    from moto.dsql.exceptions import ResourceNotFoundException
    from moto.dsql.models import dsql_backends

    try:
        cluster = dsql_backends[account_id][region].get_cluster(identifier)
    except ResourceNotFoundException:
        return None
    if cluster.status in ("DELETING", "DELETED"):  # deleted out of band, only not yet gone from GetCluster
        return None
    return {
        "DeletionProtectionEnabled": cluster.deletion_protection_enabled,
        "Tags": [{"Key": key, "Value": value} for key, value in (cluster.tags or {}).items()],
    }


def _rds_db_cluster(account_id: str, region: str, identifier: str) -> dict[str, Any] | None:
    from moto.rds.models import rds_backends

    from infra.sandbox.cfn import resources

    cluster = rds_backends[account_id][region].clusters.get(identifier)
    if cluster is None:
        return None
    return {
        "DeletionProtection": cluster.deletion_protection,
        "EngineVersion": cluster.engine_version,
        "Port": resources.template_port(cluster),  # the local server's port stands in for the template's
    }


def _dynamodb_table(account_id: str, region: str, name: str) -> dict[str, Any] | None:
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[account_id][region].tables.get(name)
    if table is None:
        return None
    return {"BillingMode": table.billing_mode}


def _ec2_security_group(account_id: str, region: str, group_id: str) -> dict[str, Any] | None:
    from moto.ec2.models import ec2_backends

    return {} if ec2_backends[account_id][region].get_security_group_from_id(group_id) else None


@dataclass(frozen=True)
class DriftType:
    """How drift is detected for one resource type."""

    read: Callable[[str, str, str], dict[str, Any] | None]  # (account, region, physical id) → live properties
    properties: frozenset[str]  # top-level properties compared, when the template sets them
    maps: frozenset[str] = frozenset()  # free-form maps ("A/B"): each key added or removed is a difference
    sets: frozenset[str] = frozenset()  # lists whose order AWS does not keep: compared as sets
    tags: frozenset[str] = frozenset()  # Key/Value lists: compared as sets of pairs, aws:* tags ignored


DRIFT_TYPES: dict[str, DriftType] = {
    # The properties VelaOps changes or checks; add a type (or a property) here and nowhere else.
    "AWS::Lambda::Function": DriftType(
        read=_lambda_function,
        properties=frozenset({"Environment", "VpcConfig", "Timeout", "MemorySize", "Runtime", "Handler"}),
        maps=frozenset({"Environment/Variables"}),
        sets=frozenset({"VpcConfig/SubnetIds", "VpcConfig/SecurityGroupIds"}),
    ),
    "AWS::DSQL::Cluster": DriftType(
        read=_dsql_cluster,
        properties=frozenset({"DeletionProtectionEnabled", "Tags"}),
        tags=frozenset({"Tags"}),
    ),
    "AWS::RDS::DBCluster": DriftType(
        read=_rds_db_cluster,
        properties=frozenset({"DeletionProtection", "EngineVersion", "Port"}),
    ),
    "AWS::DynamoDB::Table": DriftType(read=_dynamodb_table, properties=frozenset({"BillingMode"})),
    # Existence only: a security group's description and name cannot change in place.
    "AWS::EC2::SecurityGroup": DriftType(read=_ec2_security_group, properties=frozenset()),
}


# ---------------------------------------------------------------------------------------------------------------
# Expected state: the template's properties, resolved.


class _ResolvedOnly(Mapping):
    """The stack's ResourceMap, read-only: moto's map creates a resource it has not parsed yet when it is looked up,
    and resolving a template for comparison must never create anything. A resource moto never created (a type it
    lacks, a false Condition) resolves to nothing, as it did when the stack was created."""

    def __init__(self, resource_map: parsing.ResourceMap) -> None:
        self._map = resource_map

    def __getitem__(self, key: str) -> Any:
        parsed = self._map._parsed_resources
        if key in parsed:
            return parsed[key]
        if key in self._map.resources:
            return None
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __getattr__(self, name: str) -> Any:  # lazy_condition_map, cross_stack_resources...
        return getattr(self._map, name)


def _ignored_paths(resource_type: str) -> list[Path]:
    found = registry.schema(resource_type)
    if found is None:
        return []
    return [tuple(path.split("/")) for path in found.read_only | found.write_only]


def _without(value: Any, paths: list[Path], at: Path = ()) -> Any:
    """value without the given (readOnly/writeOnly) paths; a list's items are matched by "*" or any index."""
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            here = at + (key,)
            if any(_matches(here, path) for path in paths):
                continue
            kept[key] = _without(item, paths, here)
        return kept
    if isinstance(value, list):
        return [_without(item, paths, at + (str(index),)) for index, item in enumerate(value)]
    return value


def _matches(path: Path, ignored: Path) -> bool:
    return len(path) == len(ignored) and all(i in ("*", p) for p, i in zip(path, ignored, strict=True))


def expected_properties(stack: Stack, logical_id: str, drift_type: DriftType) -> dict[str, Any]:
    resource_json = stack.template_dict.get("Resources", {}).get(logical_id, {})
    resolved = parsing.clean_json(
        copy.deepcopy(resource_json.get("Properties") or {}), _ResolvedOnly(stack.resource_map)
    )
    compared = {key: value for key, value in resolved.items() if key in drift_type.properties}
    return _without(compared, _ignored_paths(resource_json.get("Type", "")))


# ---------------------------------------------------------------------------------------------------------------
# Comparison. Paths are JSON pointers into the properties, as AWS's PropertyPath: /Environment/Variables/NAME.


def _pointer(path: Path) -> str:
    return "/" + "/".join(part.replace("~", "~0").replace("/", "~1") for part in path)


def _scalar(value: Any) -> str:
    """A template holds 15 or "15", true or "true" for the same value: compare (and report) them as AWS's strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if value is None:
        return "null"
    return str(value)


def _difference(path: Path, expected: Any, actual: Any, kind: str) -> dict[str, str]:
    return {
        "PropertyPath": _pointer(path),
        "ExpectedValue": _scalar(expected),
        "ActualValue": _scalar(actual),
        "DifferenceType": kind,
    }


def _compare_sets(path: Path, expected: list, actual: list) -> list[dict[str, str]]:
    expected_keys = [_scalar(item) for item in expected]
    actual_keys = [_scalar(item) for item in actual]
    removed = [
        _difference(path + (str(i),), item, None, "REMOVE")
        for i, item in enumerate(expected)
        if expected_keys[i] not in actual_keys
    ]
    added = [
        _difference(path + (str(i),), None, item, "ADD")
        for i, item in enumerate(actual)
        if actual_keys[i] not in expected_keys
    ]
    return removed + added


def compare(expected: Any, actual: Any, drift_type: DriftType, path: Path = ()) -> list[dict[str, str]]:
    name = "/".join(path)
    if name in drift_type.sets or name in drift_type.tags:
        return _compare_sets(
            path, expected if isinstance(expected, list) else [], actual if isinstance(actual, list) else []
        )
    if isinstance(expected, dict):
        actual = actual if isinstance(actual, dict) else {}
        differences = []
        for key, value in expected.items():
            if key not in actual or actual[key] is None:
                differences.append(_difference(path + (key,), value, None, "REMOVE"))
            else:
                differences.extend(compare(value, actual[key], drift_type, path + (key,)))
        if name in drift_type.maps:  # keys set out of band are drift only in a free-form map
            differences.extend(
                _difference(path + (key,), None, value, "ADD") for key, value in actual.items() if key not in expected
            )
        return differences
    if isinstance(expected, list):
        actual = actual if isinstance(actual, list) else []
        differences = []
        for index, value in enumerate(expected):
            if index < len(actual):
                differences.extend(compare(value, actual[index], drift_type, path + (str(index),)))
            else:
                differences.append(_difference(path + (str(index),), value, None, "REMOVE"))
        differences.extend(
            _difference(path + (str(i),), None, actual[i], "ADD") for i in range(len(expected), len(actual))
        )
        return differences
    if _scalar(expected) != _scalar(actual):
        return [_difference(path, expected, actual, "NOT_EQUAL")]
    return []


def _actual_view(expected: dict[str, Any], live: dict[str, Any], drift_type: DriftType) -> dict[str, Any]:
    """The live values of the properties compared (AWS-managed aws:* tags are not the template's to set)."""
    actual = {key: live[key] for key in expected if key in live and live[key] is not None}
    for name in drift_type.tags:
        if name in actual:
            actual[name] = [tag for tag in actual[name] if not str(tag.get("Key", "")).startswith("aws:")]
    return actual


# ---------------------------------------------------------------------------------------------------------------
# Detection.


def _state(stack: Stack) -> dict[str, Any]:
    """Drift results kept on the stack: {"status", "checked", "resources": {logical id: StackResourceDrift}}."""
    if "vela_drift" not in stack.__dict__:
        stack.vela_drift = {"status": None, "checked": None, "resources": {}}
    return stack.vela_drift


def _models(stack: Stack) -> dict[str, Any]:
    """The stack's created resource models by logical id (without creating any, unlike iterating the map)."""
    parsed = stack.resource_map._parsed_resources
    return {
        logical_id: parsed[logical_id]
        for logical_id in stack.resource_map.resources
        if getattr(parsed.get(logical_id), "logical_resource_id", None)
    }


def _resource_type(stack: Stack, logical_id: str, model: Any) -> str:
    return getattr(model, "cf_resource_type", None) or stack.template_dict["Resources"][logical_id]["Type"]


def check_resource(stack: Stack, logical_id: str, model: Any) -> dict[str, Any] | None:
    """One resource's StackResourceDrift, or None for a type drift detection does not support."""
    resource_type = _resource_type(stack, logical_id, model)
    drift_type = DRIFT_TYPES.get(resource_type)
    if drift_type is None:
        return None
    physical_id = getattr(model, "physical_resource_id", None)
    drift: dict[str, Any] = {
        "StackId": stack.stack_id,
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": physical_id,
        "ResourceType": resource_type,
        "Timestamp": utcnow(),
    }
    try:
        live = drift_type.read(stack.account_id, stack.region_name, str(physical_id))
        if live is None:
            return {**drift, "StackResourceDriftStatus": "DELETED"}  # AWS gives no Expected/Actual for DELETED
        expected = expected_properties(stack, logical_id, drift_type)
        actual = _actual_view(expected, live, drift_type)
        differences = compare(expected, actual, drift_type)
    except Exception as error:  # a failing read is UNKNOWN for this resource, DETECTION_FAILED for the stack
        return {**drift, "StackResourceDriftStatus": "UNKNOWN", "DriftStatusReason": f"{type(error).__name__}: {error}"}
    drift["ExpectedProperties"] = json.dumps(expected, sort_keys=True)
    drift["ActualProperties"] = json.dumps(actual, sort_keys=True)
    if differences:
        drift["PropertyDifferences"] = differences
    drift["StackResourceDriftStatus"] = "MODIFIED" if differences else "IN_SYNC"
    return drift


def _detectable_stack(backend: CloudFormationBackend, stack_name: str) -> Stack:
    stack = backend.get_stack(stack_name)
    if stack.status not in DETECTABLE_STATUSES:
        raise ValidationError(
            message=f"Drift detection cannot be performed on stack [{stack.stack_id}] in status {stack.status}: "
            f"it is supported in {', '.join(sorted(DETECTABLE_STATUSES))}."
        )
    return stack


def _detections(backend: CloudFormationBackend) -> dict[str, dict[str, Any]]:
    if "vela_drift_detections" not in backend.__dict__:
        backend.vela_drift_detections = {}
    return backend.vela_drift_detections


def detect_stack_drift(
    self: CloudFormationBackend, stack_name: str, logical_resource_ids: list[str] | None = None
) -> str:
    stack = _detectable_stack(self, stack_name)
    models = _models(stack)
    unknown = [logical_id for logical_id in logical_resource_ids or [] if logical_id not in models]
    if unknown:
        raise ValidationError(message=f"Resources {unknown} do not exist in stack [{stack.name}].")
    started = utcnow()
    state = _state(stack)
    checked = []
    for logical_id, model in models.items():
        if logical_resource_ids and logical_id not in logical_resource_ids:
            continue
        drift = check_resource(stack, logical_id, model)
        if drift is None:
            state["resources"].pop(logical_id, None)  # NOT_CHECKED
            continue
        state["resources"][logical_id] = drift
        checked.append(drift)
    drifted = [d for d in checked if d["StackResourceDriftStatus"] in DRIFTED_STATUSES]
    failed = [d["LogicalResourceId"] for d in checked if d["StackResourceDriftStatus"] == "UNKNOWN"]
    if drifted:
        stack_status = "DRIFTED"
    elif failed:
        stack_status = "UNKNOWN"
    else:
        stack_status = "IN_SYNC" if checked else "NOT_CHECKED"
    state["status"], state["checked"] = stack_status, started
    detection_id = str(uuid.uuid4())
    detection: dict[str, Any] = {
        "StackId": stack.stack_id,
        "StackDriftDetectionId": detection_id,
        "StackDriftStatus": stack_status,
        "DetectionStatus": "DETECTION_FAILED" if failed else "DETECTION_COMPLETE",
        "DriftedStackResourceCount": len(drifted),
        "Timestamp": started,
    }
    if failed:
        detection["DetectionStatusReason"] = f"Failed to detect drift on resources [{', '.join(failed)}]"
    _detections(self)[detection_id] = detection
    return detection_id


def describe_stack_drift_detection_status(self: CloudFormationBackend, detection_id: str) -> dict[str, Any]:
    detection = _detections(self).get(detection_id)
    if detection is None:
        raise ValidationError(message=f"Stack drift detection with id [{detection_id}] does not exist")
    return detection


def describe_stack_resource_drifts(
    self: CloudFormationBackend, stack_name: str, status_filters: list[str] | None = None
) -> list[dict[str, Any]]:
    """The latest drift result of each checked resource, in template order (unsupported types are never listed)."""
    stack = self.get_stack(stack_name)
    resources = _state(stack)["resources"]
    drifts = [resources[logical_id] for logical_id in stack.resource_map.resources if logical_id in resources]
    return [d for d in drifts if not status_filters or d["StackResourceDriftStatus"] in status_filters]


def detect_stack_resource_drift(
    self: CloudFormationBackend, stack_name: str, logical_resource_id: str
) -> dict[str, Any]:
    stack = _detectable_stack(self, stack_name)
    model = _models(stack).get(logical_resource_id)
    if model is None:
        raise ValidationError(message=f"Resource [{logical_resource_id}] does not exist in stack [{stack.name}]")
    drift = check_resource(stack, logical_resource_id, model)
    if drift is None:
        resource_type = _resource_type(stack, logical_resource_id, model)
        raise ValidationError(message=f"Drift detection is not supported for resource type {resource_type}")
    state = _state(stack)
    state["resources"][logical_resource_id] = drift
    # A resource's check moves the stack's LastCheckTimestamp, not its StackDriftStatus.
    state["checked"] = drift["Timestamp"]
    return drift


# ---------------------------------------------------------------------------------------------------------------
# DriftInformation on stacks and stack resources.


def stack_drift_information(stack: Stack) -> dict[str, Any]:
    state = stack.__dict__.get("vela_drift") or {}
    information: dict[str, Any] = {"StackDriftStatus": state.get("status") or "NOT_CHECKED"}
    if state.get("checked"):
        information["LastCheckTimestamp"] = state["checked"]
    return information


def resource_drift_information(stack: Stack | None, logical_id: str | None) -> dict[str, Any]:
    drift = ((stack.__dict__.get("vela_drift") or {}).get("resources") or {}).get(logical_id) if stack else None
    if not drift:
        return {"StackResourceDriftStatus": "NOT_CHECKED"}
    return {"StackResourceDriftStatus": drift["StackResourceDriftStatus"], "LastCheckTimestamp": drift["Timestamp"]}


def _stack_by_id(stack_id: str | None) -> Stack | None:
    # arn:aws:cloudformation:REGION:ACCOUNT:stack/NAME/UUID
    parts = (stack_id or "").split(":")
    if len(parts) < 6:
        return None
    backend = cloudformation_backends[parts[4]][parts[3]]
    return backend.stacks.get(stack_id) or backend.deleted_stacks.get(stack_id)


def _with_resource_drift(original: Callable[..., Any], key: str) -> Callable[..., Any]:
    """A response method whose result's stack resources (DTOs or dicts, under `key`) carry DriftInformation."""

    def method(self: responses.CloudFormationResponse) -> Any:
        result = original(self)
        if not isinstance(result, ActionResult) or not isinstance(result.result, dict):
            return result
        items = result.result.get(key)
        items = items if isinstance(items, list) else [items] if items is not None else []
        for item in items:
            if isinstance(item, dict):
                stack = _stack_by_id(item.get("StackId")) or self.cloudformation_backend.get_stack(
                    self._get_param("StackName")
                )
                item.setdefault("DriftInformation", resource_drift_information(stack, item.get("LogicalResourceId")))
            else:
                stack = _stack_by_id(getattr(item, "stack_id", None))
                item.drift_information = resource_drift_information(stack, getattr(item, "logical_resource_id", None))
        return result

    method.vela_drift = True  # type: ignore[attr-defined]
    return method


# ---------------------------------------------------------------------------------------------------------------
# The API.


def _detect_stack_drift(self: responses.CloudFormationResponse) -> ActionResult:
    detection_id = self.cloudformation_backend.detect_stack_drift(
        self._get_param("StackName"), self._get_param("LogicalResourceIds")
    )
    return ActionResult({"StackDriftDetectionId": detection_id})


def _describe_stack_drift_detection_status(self: responses.CloudFormationResponse) -> ActionResult:
    return ActionResult(
        self.cloudformation_backend.describe_stack_drift_detection_status(self._get_param("StackDriftDetectionId"))
    )


def _describe_stack_resource_drifts(self: responses.CloudFormationResponse) -> ActionResult:
    drifts = self.cloudformation_backend.describe_stack_resource_drifts(
        self._get_param("StackName"), self._get_param("StackResourceDriftStatusFilters")
    )
    max_results = int(self._get_param("MaxResults") or 100)
    token = self._get_param("NextToken")
    start = int(token) if token and str(token).isdigit() else 0
    result: dict[str, Any] = {"StackResourceDrifts": drifts[start : start + max_results]}
    if start + max_results < len(drifts):
        result["NextToken"] = str(start + max_results)
    return ActionResult(result)


def _detect_stack_resource_drift(self: responses.CloudFormationResponse) -> ActionResult:
    drift = self.cloudformation_backend.detect_stack_resource_drift(
        self._get_param("StackName"), self._get_param("LogicalResourceId")
    )
    return ActionResult({"StackResourceDrift": drift})


def install() -> None:
    """Idempotent. Wraps the resource-listing responses as installed at call time (after engine's, if any)."""
    backend, response = CloudFormationBackend, responses.CloudFormationResponse
    backend.detect_stack_drift = detect_stack_drift
    backend.describe_stack_drift_detection_status = describe_stack_drift_detection_status
    backend.describe_stack_resource_drifts = describe_stack_resource_drifts
    backend.detect_stack_resource_drift = detect_stack_resource_drift
    response.detect_stack_drift = _detect_stack_drift
    response.describe_stack_drift_detection_status = _describe_stack_drift_detection_status
    response.describe_stack_resource_drifts = _describe_stack_resource_drifts
    response.detect_stack_resource_drift = _detect_stack_resource_drift
    # DescribeStacks/ListStacks serialize Stack objects: their DriftInformation is read from this attribute.
    Stack.drift_information = property(stack_drift_information)
    for name, key in (
        ("describe_stack_resources", "StackResources"),
        ("describe_stack_resource", "StackResourceDetail"),
        ("list_stack_resources", "StackResourceSummaries"),
    ):
        current = getattr(response, name)
        if not getattr(current, "vela_drift", False):
            setattr(response, name, _with_resource_drift(current, key))
