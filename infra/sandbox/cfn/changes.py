"""A change set's Changes, computed as CloudFormation computes them (moto 5.2 lists bare Add/Modify/Remove).

Action; Replacement True/False/Conditional from the registry schema's createOnlyProperties (Conditional when the
new value depends on something the same change set changes); PolicyAction from DeletionPolicy (Remove) or
UpdateReplacePolicy (replacement); Scope and Details per changed property, tag set or resource attribute, with
Evaluation (Static/Dynamic) and ChangeSource (DirectModification, ResourceReference, ResourceAttribute,
ParameterReference). Botocore's ResourceChange shape, cloudformation 2010-05-15.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from moto.cloudformation.models import Stack
from moto.cloudformation.parsing import ResourceMap

from infra.sandbox.cfn.registry import schema

# Resource types whose DeletionPolicy may be Snapshot (AWS CloudFormation user guide, "DeletionPolicy
# attribute", checked 2026-12-01).
SNAPSHOT_TYPES = {
    "AWS::EC2::Volume",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::Neptune::DBCluster",
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::Redshift::Cluster",
    "AWS::DocDB::DBCluster",
}
# Template attributes of a resource other than Properties that a change set reports (Scope / Target.Attribute).
RESOURCE_ATTRIBUTES = ("Metadata", "CreationPolicy", "UpdatePolicy", "DeletionPolicy", "UpdateReplacePolicy")


# ---------------------------------------------------------------------------------------------- references


def _references(value: Any) -> list[tuple[str, str]]:
    """(kind, logical id or parameter) for every Ref/GetAtt/Sub reference in a template value."""
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.append(("Ref", inner))
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) else str(inner).split(".")[0]
                found.append(("GetAtt", target))
            else:
                found += _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found += _references(inner)
    return found


def imported_exports(value: Any) -> list[Any]:
    """The (unresolved) arguments of every Fn::ImportValue in a template value."""
    found: list[Any] = []
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Fn::ImportValue":
                found.append(inner)
            else:
                found += imported_exports(inner)
    elif isinstance(value, list):
        for inner in value:
            found += imported_exports(inner)
    return found


@dataclass
class ResourceChange:
    action: str  # Add | Modify | Remove | Import
    logical_id: str
    resource_type: str
    physical_id: str | None = None
    replacement: str | None = None  # True | False | Conditional (Modify only)
    policy_action: str | None = None
    scope: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def as_aws(self) -> dict[str, Any]:
        change: dict[str, Any] = {
            "Action": self.action,
            "LogicalResourceId": self.logical_id,
            "ResourceType": self.resource_type,
            "Scope": self.scope,
            "Details": self.details,
        }
        if self.physical_id:
            change["PhysicalResourceId"] = self.physical_id
        if self.replacement is not None:
            change["Replacement"] = self.replacement
        if self.policy_action:
            change["PolicyAction"] = self.policy_action
        return change


class ChangeView:
    """One entry of DescribeChangeSet's Changes, as moto's serializer reads it."""

    def __init__(self, change: ResourceChange) -> None:
        self.type = "Resource"
        self.resource_change = change.as_aws()
        # moto's ListChangeSets/other code reads these off a change.
        self.action = change.action
        self.logical_resource_id = change.logical_id
        self.resource_type = change.resource_type


def _policy_on_delete(resource: dict[str, Any]) -> str:
    policy = resource.get("DeletionPolicy", "Delete")
    if policy == "Snapshot" and resource["Type"] not in SNAPSHOT_TYPES:
        return "Delete"
    return "RetainExceptOnCreate" if policy == "RetainExceptOnCreate" else policy


def _policy_on_replace(resource: dict[str, Any]) -> str:
    policy = resource.get("UpdateReplacePolicy", "Delete")
    if policy == "Snapshot" and resource["Type"] not in SNAPSHOT_TYPES:
        policy = "Delete"
    return "ReplaceAnd" + policy


def _physical_id(resource_map: ResourceMap, logical_id: str) -> str | None:
    model = resource_map._parsed_resources.get(logical_id)
    return getattr(model, "physical_resource_id", None) if model is not None else None


def plan(stack: Stack, template: dict[str, Any], parameters: dict[str, Any] | None = None) -> list[ResourceChange]:
    """The changes that turning `stack` into `template` makes, as a change set lists them."""
    old: dict[str, Any] = stack.template_dict.get("Resources", {}) if stack.template_dict else {}
    new: dict[str, Any] = template.get("Resources", {})
    changed_parameters = {
        key for key, value in (parameters or {}).items() if stack.resource_map.input_parameters.get(key) != value
    }
    changes: dict[str, ResourceChange] = {}
    for logical_id, resource in new.items():
        if logical_id not in old:
            changes[logical_id] = ResourceChange("Add", logical_id, resource["Type"])
    for logical_id, resource in old.items():
        if logical_id not in new:
            changes[logical_id] = ResourceChange(
                "Remove",
                logical_id,
                resource["Type"],
                physical_id=_physical_id(stack.resource_map, logical_id),
                policy_action=_policy_on_delete(resource),
            )

    # Modifications, to a fixed point: a replaced resource changes whatever references it.
    replaced: set[str] = set()
    modified: set[str] = set()
    progress = True
    while progress:
        progress = False
        for logical_id, resource in new.items():
            if logical_id not in old or logical_id in replaced:
                continue
            change = _modification(
                logical_id, old[logical_id], resource, changes, replaced, modified, changed_parameters
            )
            if change is None:
                continue
            change.physical_id = _physical_id(stack.resource_map, logical_id)
            previous = changes.get(logical_id)
            if (
                previous is None
                or len(change.details) != len(previous.details)
                or change.replacement != previous.replacement
            ):
                changes[logical_id] = change
                if {"Properties", "Tags"} & set(change.scope):
                    modified.add(logical_id)  # a policy-only change alters nothing that references it
                if change.replacement in ("True", "Conditional") and logical_id not in replaced:
                    replaced.add(logical_id)
                progress = True
    order = list(new) + [key for key in old if key not in new]
    return [changes[key] for key in order if key in changes]


def _changing(ref: str, changes: dict[str, ResourceChange], modified: set[str]) -> bool:
    """Is what `ref` names unknown until the change set runs (a new resource, or one whose properties change)?"""
    return ref in modified or (ref in changes and changes[ref].action == "Add")


def _modification(
    logical_id: str,
    before: dict[str, Any],
    after: dict[str, Any],
    changes: dict[str, ResourceChange],
    replaced: set[str],
    modified: set[str],
    changed_parameters: set[str],
) -> ResourceChange | None:
    resource_schema = schema(after["Type"])
    details: list[dict[str, Any]] = []
    scope: list[str] = []
    recreate = {"Always": False, "Conditionally": False}

    def target(attribute: str, name: str | None, requires: str, change_type: str, b: Any, a: Any) -> dict[str, Any]:
        result: dict[str, Any] = {"Attribute": attribute, "RequiresRecreation": requires}
        if name is not None:
            result |= {"Name": name, "Path": f"/Properties/{name}"}
        result["AttributeChangeType"] = change_type
        if b is not None:
            result["BeforeValue"] = json.dumps(b) if not isinstance(b, str) else b
        if a is not None:
            result["AfterValue"] = json.dumps(a) if not isinstance(a, str) else a
        return result

    for attribute in RESOURCE_ATTRIBUTES:
        if before.get(attribute) != after.get(attribute):
            scope.append(attribute)
            kind = "Add" if attribute not in before else "Remove" if attribute not in after else "Modify"
            details.append(
                {
                    "Target": target(attribute, None, "Never", kind, before.get(attribute), after.get(attribute)),
                    "Evaluation": "Static",
                    "ChangeSource": "DirectModification",
                }
            )

    old_props = before.get("Properties") or {}
    new_props = after.get("Properties") or {}
    for name in sorted(set(old_props) | set(new_props)):
        b, a = old_props.get(name), new_props.get(name)
        is_tags = name == "Tags"
        attribute = "Tags" if is_tags else "Properties"
        create_only = bool(resource_schema and resource_schema.replaces(name))
        if b != a:
            kind = "Add" if name not in old_props else "Remove" if name not in new_props else "Modify"
            dynamic = any(_changing(ref, changes, modified) for _, ref in _references(a))
            requires = ("Conditionally" if dynamic else "Always") if create_only else "Never"
            if create_only:
                recreate["Conditionally" if dynamic else "Always"] = True
            if attribute not in scope:
                scope.append(attribute)
            details.append(
                {
                    "Target": target(attribute, name, requires, kind, b, a),
                    "Evaluation": "Dynamic" if dynamic else "Static",
                    "ChangeSource": "DirectModification",
                }
            )
            continue
        # Unchanged in the template, but what it refers to changes as this change set runs.
        for kind, ref in _references(a):
            source = None
            if kind == "Ref" and ref in changed_parameters:
                source = "ParameterReference"
            elif kind == "Ref" and ref in replaced:
                source = "ResourceReference"
            elif kind == "GetAtt" and (ref in replaced or ref in modified):
                source = "ResourceAttribute"
            if source is None:
                continue
            requires = "Conditionally" if create_only else "Never"
            if create_only:
                recreate["Conditionally"] = True
            if attribute not in scope:
                scope.append(attribute)
            details.append(
                {
                    "Target": target(attribute, name, requires, "Modify", None, None),
                    "Evaluation": "Dynamic" if source != "ParameterReference" else "Static",
                    "ChangeSource": source,
                    "CausingEntity": ref,
                }
            )
            break
    if not details:
        return None
    replacement = "True" if recreate["Always"] else "Conditional" if recreate["Conditionally"] else "False"
    change = ResourceChange("Modify", logical_id, after["Type"], replacement=replacement, scope=scope, details=details)
    if replacement != "False":
        change.policy_action = _policy_on_replace(after)
    return change
