"""Adopting what was made out of band: an existing resource imported into a stack with an IMPORT change set.

A DSQL cluster made by the direct-API runbook (or by hand) is no stack's. Creating the stack's own beside it
would make a second; instead the cluster is imported into the database stack under the logical id the
stack's next template gives it, with that template's definition and a DeletionPolicy (AWS requires one).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from dashboard.stacks.changesets import (
    Source,
    StackOperationFailed,
    create_arguments,
    describe,
    execute,
    latest_event_id,
    prepare,
)


def resource_of_type(template: dict[str, Any], resource_type: str) -> tuple[str, dict[str, Any]] | None:
    """The one resource of `resource_type` a template declares (logical id, definition), or None."""
    found = [
        (key, value) for key, value in (template.get("Resources") or {}).items() if value.get("Type") == resource_type
    ]
    if len(found) > 1:
        raise StackOperationFailed(f"The template declares {len(found)} resources of type {resource_type}.")
    return found[0] if found else None


def import_template(current: dict[str, Any], logical_id: str, definition: dict[str, Any]) -> dict[str, Any]:
    """The stack's current template plus the imported resource: nothing else may change in an import."""
    resource = copy.deepcopy(definition)
    resource.setdefault("DeletionPolicy", "Retain")
    resource.setdefault("UpdateReplacePolicy", "Retain")
    template = copy.deepcopy(current)
    template.setdefault("Resources", {})[logical_id] = resource
    return template


def import_resource(
    cfn: Any,
    stack: str,
    name: str,
    *,
    template: dict[str, Any],
    logical_id: str,
    resource_type: str,
    identifier: dict[str, str],
    log: Callable[[str], None],
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """Create (or find again) the IMPORT change set, execute it, follow the stack's events until IMPORT_COMPLETE."""
    if describe(cfn, stack, name) is None:
        cfn.create_change_set(
            **create_arguments(
                cfn,
                stack,
                name,
                template_body=json.dumps(template, separators=(",", ":")),
                change_set_type="IMPORT",
                description="Prepared by VelaOps: adopt what was made out of band",
                ResourcesToImport=[
                    {"ResourceType": resource_type, "LogicalResourceId": logical_id, "ResourceIdentifier": identifier}
                ],
            )
        )
        log(f"import change set {name} requested on {stack}: {logical_id} = {identifier}")
    # Waited on (with its timeout) and judged like every change set VelaOps makes.
    prepare(cfn, stack, name, Source(change_set=name), log=log, sleep=sleep)
    since = latest_event_id(cfn, stack)
    return execute(cfn, stack, name, log=log, sleep=sleep, since_event=since)
