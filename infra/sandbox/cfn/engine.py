"""Stack updates as CloudFormation performs them, in place of moto's: what executing a change set does.

moto 5.2 reports change sets without Replacement, PolicyAction or Details, deletes a removed resource even
under `DeletionPolicy: Retain`, treats an IMPORT change set as a new stack, keeps the exports of the stack's
first version forever and lets a stack drop an export another stack imports, and writes one event per stack
operation. Here:

- `changes.plan()` computes a change set's `Changes` from the current and the new template: Action, Replacement
  (True/False/Conditional, from the registry schema's createOnlyProperties), PolicyAction, Scope and Details
  (each changed property, attribute or policy, with its Evaluation and ChangeSource);
- `execute()` applies an update in CloudFormation's order: checks the exports other stacks import, adds and
  modifies resources (a replacement creates the new one first; a custom-named resource cannot be replaced),
  publishes the new exports, then cleans up: removed and replaced resources are deleted, retained
  (DELETE_SKIPPED) or snapshotted per their DeletionPolicy/UpdateReplacePolicy. A failure before cleanup
  rolls the update back (UPDATE_ROLLBACK_COMPLETE, with the reason on the stack and in its events);
- IMPORT change sets (`imports`) adopt existing resources into an existing stack, with AWS's validations;
- every resource transition is a stack event, in order.

Where AWS differs (docs/sandbox.md): it runs all of this asynchronously and in parallel per dependency level,
it resolves "Conditional" replacements once values are known, and its rollback restores each resource's
previous physical state, where the sandbox re-applies previous properties through moto's update path.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing, responses
from moto.cloudformation.exceptions import AlreadyExistsException, ValidationError
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Event, Stack, cloudformation_backends
from moto.cloudformation.parsing import ResourceMap, clean_json
from moto.core.utils import utcnow

from infra.sandbox.cfn import drift
from infra.sandbox.cfn.changes import RESOURCE_ATTRIBUTES, ChangeView, ResourceChange, imported_exports, plan

log = logging.getLogger(__name__)

STABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}

# ------------------------------------------------------------------------------------------------- events


def _event(
    stack: Stack, logical_id: str, physical_id: str | None, resource_type: str, status: str, reason: str | None = None
) -> None:
    event = Event(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id or "",
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    )
    stack.events.append(event)


def _stack_event(stack: Stack, status: str, reason: str | None = None) -> None:
    stack.status = status
    if reason == "User Initiated":
        stack.status_reason = None  # a new operation: the last one's reason no longer applies
    elif reason:
        stack.status_reason = reason
    _event(stack, stack.name, stack.stack_id, "AWS::CloudFormation::Stack", status, reason)


def _stack_event_first(stack: Stack) -> None:
    """moto resolves a new stack's exports (creating what they name) before its CREATE_IN_PROGRESS event."""
    for index, event in enumerate(stack.events):
        if event.logical_resource_id == stack.name and event.resource_status == "CREATE_IN_PROGRESS":
            stack.events.insert(0, stack.events.pop(index))
            break


def _stack_of(resource_map: ResourceMap) -> Stack | None:
    backend = cloudformation_backends[resource_map._account_id][resource_map._region_name]
    return backend.stacks.get(resource_map.stack_id)


def _error_message(exc: Exception) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__


def _creating(original):
    """parse_and_create_resource, with CREATE_IN_PROGRESS / CREATE_COMPLETE / CREATE_FAILED events."""

    def create(logical_id, resource_json, resources_map, account_id, region_name):
        stack = _stack_of(resources_map)
        resource_type = resource_json.get("Type", "")
        if stack is not None:
            _event(stack, logical_id, None, resource_type, "CREATE_IN_PROGRESS")
        try:
            resource = original(logical_id, resource_json, resources_map, account_id, region_name)
        except Exception as exc:
            if stack is not None:
                _event(stack, logical_id, None, resource_type, "CREATE_FAILED", _error_message(exc))
            raise
        if stack is not None:
            if resource is None:
                # Not created: a false Condition, or a type moto cannot model (reported, not hidden).
                if resource_json.get("Condition") is None:
                    _event(
                        stack,
                        logical_id,
                        None,
                        resource_type,
                        "CREATE_FAILED",
                        f"Resource type {resource_type} is not supported by the sandbox",
                    )
            else:
                _event(
                    stack, logical_id, getattr(resource, "physical_resource_id", None), resource_type, "CREATE_COMPLETE"
                )
                _tag_with_stack(stack, logical_id, resource)
        return resource

    create.__wrapped__ = original
    return create


def _tag_with_stack(stack: Stack, logical_id: str, resource: Any) -> None:
    from infra.sandbox.cfn.tags import tag_resource

    tags = {
        "aws:cloudformation:stack-name": stack.name,
        "aws:cloudformation:stack-id": stack.stack_id,
        "aws:cloudformation:logical-id": logical_id,
        **(stack.tags or {}),
    }
    try:
        tag_resource(stack.account_id, stack.region_name, getattr(resource, "cf_resource_type", ""), resource, tags)
    except Exception:  # tagging is a courtesy: never fail a stack for it
        log.debug("could not tag %s", logical_id, exc_info=True)


# ---------------------------------------------------------------------------------------------- exports


def importers(backend: CloudFormationBackend, export_name: str, *, excluding: str | None = None) -> list[str]:
    """Names of the stacks whose current template imports `export_name`."""
    found = []
    for other in backend.stacks.values():
        if other.stack_id == excluding or not other.template_dict or other.status == "REVIEW_IN_PROGRESS":
            continue
        for argument in imported_exports(other.template_dict.get("Resources", {})) + imported_exports(
            other.template_dict.get("Outputs", {})
        ):
            name = argument if isinstance(argument, str) else _resolve(argument, other.resource_map)
            if name == export_name:
                found.append(other.name)
                break
    return found


def _resolve(value: Any, resource_map: ResourceMap) -> Any:
    try:
        return clean_json(copy.deepcopy(value), resource_map)
    except Exception:
        return None


def _export_definitions(template: dict[str, Any], resource_map: ResourceMap) -> dict[str, Any]:
    """Export name → the output's Value as written in the template (unresolved)."""
    result = {}
    for output in (template.get("Outputs") or {}).values():
        export = (output or {}).get("Export")
        if export:
            name = export.get("Name")
            result[name if isinstance(name, str) else _resolve(name, resource_map)] = output.get("Value")
    return result


def _held_exports(backend: CloudFormationBackend, stack: Stack, template: dict[str, Any]) -> str | None:
    """CloudFormation's refusal when the update removes or changes an export another stack imports."""
    before = _export_definitions(stack.template_dict or {}, stack.resource_map)
    after = _export_definitions(template, stack.resource_map)
    for name, value in before.items():
        users = importers(backend, name, excluding=stack.stack_id)
        if not users:
            continue
        if name not in after:
            return f"Export {name} cannot be deleted as it is in use by {', '.join(users)}"
        if after[name] != value:
            return f"Cannot update export {name} as it is in use by {', '.join(users)}"
    return None


def missing_import(backend: CloudFormationBackend, template: dict[str, Any]) -> str | None:
    """The first export a template imports that no stack exports (names written literally, as CDK writes them)."""
    for argument in imported_exports(template.get("Resources", {})) + imported_exports(template.get("Outputs", {})):
        if isinstance(argument, str) and argument not in backend.exports:
            return argument
    return None


def _publish_exports(backend: CloudFormationBackend, stack: Stack, previous: set[str]) -> None:
    for name in previous:
        existing = backend.exports.get(name)
        if existing is not None and existing.exporting_stack_id == stack.stack_id:
            del backend.exports[name]
    for export in stack.exports:
        backend.exports[export.name] = export


# ---------------------------------------------------------------------------------------------- execute


class UpdateFailed(Exception):
    pass


def _delete_model(resource_map: ResourceMap, model: Any, resource_json: dict[str, Any]) -> None:
    resource_map._delete_resource(model, resource_json)


def _snapshot(stack: Stack, resource_type: str, physical_id: str) -> str | None:
    """Take the final snapshot a Snapshot policy asks for; its identifier."""
    if resource_type != "AWS::RDS::DBCluster":
        return None
    from moto.rds.models import rds_backends

    identifier = f"{physical_id}-snapshot-{utcnow().strftime('%Y%m%d%H%M%S')}"
    rds_backends[stack.account_id][stack.region_name].create_db_cluster_snapshot(
        db_cluster_identifier=physical_id, db_snapshot_identifier=identifier
    )
    return identifier


def _dispose(stack: Stack, logical_id: str, model: Any, resource_json: dict[str, Any], policy: str) -> None:
    """Cleanup of a removed or replaced resource, per its policy; a failure is an event, not a stack failure (AWS)."""
    resource_type = resource_json["Type"]
    physical_id = getattr(model, "physical_resource_id", None)
    if model is None:
        _event(stack, logical_id, physical_id, resource_type, "DELETE_COMPLETE")
        return
    if policy in ("Retain", "RetainExceptOnCreate"):
        _event(stack, logical_id, physical_id, resource_type, "DELETE_SKIPPED")
        return
    _event(stack, logical_id, physical_id, resource_type, "DELETE_IN_PROGRESS")
    try:
        if policy == "Snapshot":
            _snapshot(stack, resource_type, physical_id)
        _delete_model(stack.resource_map, model, resource_json)
    except Exception as exc:
        _event(stack, logical_id, physical_id, resource_type, "DELETE_FAILED", _error_message(exc))
        return
    _event(stack, logical_id, physical_id, resource_type, "DELETE_COMPLETE")


def execute(
    backend: CloudFormationBackend,
    stack: Stack,
    template_body: str,
    parameters: dict[str, Any] | None,
    *,
    operation: str = "UPDATE",
) -> None:
    """Turn `stack` into `template_body`, as CloudFormation's UpdateStack/ExecuteChangeSet does."""
    template = Stack.parse_template(template_body)
    _stack_event(stack, f"{operation}_IN_PROGRESS", "User Initiated")
    missing = missing_import(backend, template)
    refusal = f"No export named {missing} found" if missing else _held_exports(backend, stack, template)
    if refusal:
        _roll_back(stack, operation, refusal, added=[], modified={})
        return
    resource_map = stack.resource_map
    old_template = stack.template_dict or {"Resources": {}}
    old_resources = dict(old_template.get("Resources", {}))
    old_body = stack.template
    changes = plan(stack, template, parameters)
    previous_exports = {export.name for export in stack.exports}

    resource_map._template = template
    if parameters:
        resource_map.input_parameters = _unresolved(stack, template, parameters)
    resource_map.load_mapping()
    resource_map.load_parameters()
    resource_map.load_conditions()
    resource_map._resource_json_map = template["Resources"]
    stack.template = template_body
    stack._parse_template()

    added: list[str] = []
    modified: dict[str, Any] = {}  # logical id → the model before the change
    cleanup: list[tuple[str, Any, dict[str, Any], str]] = []
    failing = None  # the resource being changed when the update failed: rolled back too
    try:
        for change in changes:
            failing = change.logical_id
            if change.action == "Add":
                _ = resource_map[change.logical_id]
                if resource_map._parsed_resources.get(change.logical_id) is None:
                    raise UpdateFailed(f"{change.logical_id} could not be created")
                added.append(change.logical_id)
            elif change.action == "Modify":
                before = resource_map._parsed_resources.get(change.logical_id)
                modified[change.logical_id] = before
                _modify(
                    stack,
                    change,
                    before,
                    old_resources[change.logical_id],
                    template["Resources"][change.logical_id],
                    cleanup,
                )
    except Exception as exc:
        stack.template = old_body
        stack._parse_template()
        resource_map._template = old_template
        resource_map._resource_json_map = old_resources
        _roll_back(
            stack,
            operation,
            _error_message(exc),
            added=added,
            modified=modified,
            new_resources=template["Resources"],
            old_resources=old_resources,
            failing=failing,
        )
        return

    stack.output_map = stack._create_output_map()
    _publish_exports(backend, stack, previous_exports)
    stack.description = template.get("Description")
    _stack_event(stack, f"{operation}_COMPLETE_CLEANUP_IN_PROGRESS")
    for logical_id, model, resource_json, policy in cleanup:
        _dispose(stack, logical_id, model, resource_json, policy)
    for change in changes:
        if change.action == "Remove":
            model = resource_map._parsed_resources.pop(change.logical_id, None)
            _dispose(
                stack, change.logical_id, model, old_resources[change.logical_id], change.policy_action or "Delete"
            )
    _stack_event(stack, f"{operation}_COMPLETE")


def _previous_values(stack: Stack, incoming: list[dict[str, Any]]) -> dict[str, Any]:
    """UpdateStack's parameters: UsePreviousValue takes the previous input, or the previous template's
    default where the stack was created without one (moto's own lookup fails with a KeyError then)."""
    slots = (stack.template_dict or {}).get("Parameters") or {}
    previous = stack.resource_map.input_parameters or {}
    resolved = {}
    for item in incoming or []:
        key = item["ParameterKey"]
        if item.get("UsePreviousValue"):
            if key not in previous and "Default" not in (slots.get(key) or {}):
                raise ValidationError(message=f"Invalid input for parameter key {key}. Cannot specify usePreviousValue")
            resolved[key] = previous.get(key, (slots.get(key) or {}).get("Default"))
        else:
            resolved[key] = item.get("ParameterValue")
    return resolved


def _unresolved(stack: Stack, template: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    """Parameters with UsePreviousValue keep the previous *input*: for an SSM-typed parameter (CDK's
    BootstrapVersion) that is the parameter's name, not the value moto resolved it to."""
    slots = template.get("Parameters") or {}
    previous_input = stack.resource_map.input_parameters or {}
    resolved = stack.resource_map.resolved_parameters or {}
    result = dict(parameters)
    for key, value in parameters.items():
        kind = (slots.get(key) or {}).get("Type", "")
        if kind.startswith("AWS::SSM::Parameter::") and key in resolved and value == resolved[key]:
            result[key] = previous_input.get(key) or slots[key].get("Default") or value
    return result


def _require_exists(stack: Stack, resource_type: str, physical_id: str | None) -> None:
    """A resource deleted outside CloudFormation cannot be updated, nor rolled back to (moto's update path would
    update its orphaned model and succeed). Checked for the types drift detection can read."""
    drift_type = drift.DRIFT_TYPES.get(resource_type)
    if drift_type is None or not physical_id:
        return
    if drift_type.read(stack.account_id, stack.region_name, str(physical_id)) is None:
        raise UpdateFailed(
            f'Resource handler returned message: "{resource_type} {physical_id} not found" (HandlerErrorCode: NotFound)'
        )


def _modify(
    stack: Stack, change: ResourceChange, before: Any, old_json: dict[str, Any], new_json: dict[str, Any], cleanup: list
) -> None:
    resource_map = stack.resource_map
    physical = getattr(before, "physical_resource_id", None)
    _event(
        stack,
        change.logical_id,
        physical,
        change.resource_type,
        "UPDATE_IN_PROGRESS",
        "Requested update requires the creation of a new physical resource; hence creating one."
        if change.replacement == "True"
        else None,
    )
    only_policies = all(detail["Target"]["Attribute"] in RESOURCE_ATTRIBUTES for detail in change.details)
    if before is not None and not only_policies and change.replacement != "True":
        _require_exists(stack, change.resource_type, physical)
    if only_policies or before is None:
        _event(stack, change.logical_id, physical, change.resource_type, "UPDATE_COMPLETE")
        return
    if change.replacement == "True":
        name_property = parsing.resource_name_property_from_type(change.resource_type)
        if name_property and (new_json.get("Properties") or {}).get(name_property) is not None:
            old_name = (old_json.get("Properties") or {}).get(name_property)
            new_name = _resolve(new_json["Properties"][name_property], resource_map)
            if old_name == new_json["Properties"][name_property] or new_name == physical:
                raise UpdateFailed(
                    f"CloudFormation cannot update a stack when a custom-named resource requires replacing. "
                    f"Rename {old_name or physical} and update the stack again."
                )
        resource_map._parsed_resources.pop(change.logical_id, None)
        replacement = resource_map[change.logical_id]
        if replacement is None:
            resource_map._parsed_resources[change.logical_id] = before
            raise UpdateFailed(f"{change.logical_id} could not be replaced")
        policy = (change.policy_action or "ReplaceAndDelete").removeprefix("ReplaceAnd")
        cleanup.append((change.logical_id, before, old_json, policy))
        return
    updated = parsing.parse_and_update_resource(
        change.logical_id, copy.deepcopy(new_json), resource_map, resource_map._account_id, resource_map._region_name
    )
    if updated is not None:
        resource_map._parsed_resources[change.logical_id] = updated
    _event(
        stack,
        change.logical_id,
        getattr(updated or before, "physical_resource_id", physical),
        change.resource_type,
        "UPDATE_COMPLETE",
    )


def _roll_back(
    stack: Stack,
    operation: str,
    reason: str,
    *,
    added: list[str],
    modified: dict[str, Any],
    new_resources: dict | None = None,
    old_resources: dict | None = None,
    failing: str | None = None,
) -> None:
    """Undo what the failed update did, in reverse: each modified resource gets its previous properties back,
    then what the update added is deleted. A resource that cannot be restored (typically one deleted or changed
    outside CloudFormation) fails the rollback: UPDATE_ROLLBACK_FAILED, and the stack accepts nothing but
    ContinueUpdateRollback until the rest is undone."""
    rollback = "ROLLBACK" if operation == "CREATE" else f"{operation}_ROLLBACK"
    _stack_event(stack, f"{rollback}_IN_PROGRESS", reason)
    stack.pending_rollback = {
        "operation": rollback,
        "modified": [
            (logical_id, before, (old_resources or {}).get(logical_id), logical_id == failing)
            for logical_id, before in modified.items()
        ],
        "added": [(logical_id, (new_resources or {}).get(logical_id, {"Type": ""})) for logical_id in added],
    }
    _continue_rollback(stack, skip=set())


def _continue_rollback(stack: Stack, *, skip: set[str]) -> None:
    pending = stack.pending_rollback
    resource_map = stack.resource_map
    failed = []
    for logical_id, before, old_json, failed_on in reversed(pending["modified"]):
        resource_type = (old_json or {}).get("Type", "")
        physical = getattr(before, "physical_resource_id", None)
        if logical_id in skip:
            _event(stack, logical_id, physical, resource_type, "UPDATE_COMPLETE", "Resource skipped during rollback")
            continue
        current = resource_map._parsed_resources.get(logical_id)
        try:
            # What the update changed gets its old properties back; so does the resource the update failed on,
            # since CloudFormation cannot know how far its change went (its update may have half-applied).
            if (current is not before or failed_on) and before is not None and old_json:
                _require_exists(stack, resource_type, physical)
                restored = parsing.parse_and_update_resource(
                    logical_id,
                    copy.deepcopy(old_json),
                    resource_map,
                    resource_map._account_id,
                    resource_map._region_name,
                )
                resource_map._parsed_resources[logical_id] = restored or before
        except Exception as exc:
            log.info("rollback could not restore %s: %s", logical_id, exc)
            failed.append(logical_id)
            _event(stack, logical_id, physical, resource_type, "UPDATE_FAILED", _error_message(exc))
            continue
        _event(stack, logical_id, physical, resource_type, "UPDATE_COMPLETE")
    if failed:
        # Only what failed is retried by ContinueUpdateRollback; what was restored stays restored.
        pending["modified"] = [entry for entry in pending["modified"] if entry[0] in failed]
        _stack_event(
            stack,
            f"{pending['operation']}_FAILED",
            f"The following resource(s) failed to update: [{', '.join(failed)}].",
        )
        return
    for logical_id, resource_json in reversed(pending["added"]):
        model = resource_map._parsed_resources.pop(logical_id, None)
        _dispose(stack, logical_id, model, resource_json, "Delete")
    stack.pending_rollback = None
    _stack_event(stack, f"{pending['operation']}_COMPLETE")


def continue_update_rollback(backend: CloudFormationBackend, stack_name: str, skip: list[str]) -> None:
    """ContinueUpdateRollback: retry what the rollback could not restore, skipping `skip` (each must be one
    of those), as CloudFormation does from UPDATE_ROLLBACK_FAILED."""
    stack = backend.get_stack(stack_name)
    if stack.status != "UPDATE_ROLLBACK_FAILED" or not stack.pending_rollback:
        raise ValidationError(
            message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be rolled back (only a stack "
            "in UPDATE_ROLLBACK_FAILED can continue its rollback)."
        )
    failed = {entry[0] for entry in stack.pending_rollback["modified"]}
    unknown = [logical_id for logical_id in skip if logical_id not in failed]
    if unknown:
        raise ValidationError(
            message=f"Resources [{', '.join(unknown)}] cannot be skipped: only resources in UPDATE_FAILED "
            "because their rollback failed can be."
        )
    _stack_event(stack, "UPDATE_ROLLBACK_IN_PROGRESS", "Continue update rollback")
    _continue_rollback(stack, skip=set(skip))


# ------------------------------------------------------------------------------------ backend and responses


def _create_change_set(original):
    from infra.sandbox.cfn import imports

    def create_change_set(
        self,
        stack_name,
        change_set_name,
        template,
        parameters,
        description,
        change_set_type,
        notification_arns=None,
        tags=None,
        role_arn=None,
        resources_to_import=None,
    ):
        _refuse_duplicate_name(self, stack_name, change_set_name)
        if change_set_type == "IMPORT":
            stack = self.get_stack(stack_name)
            _require_stable(stack, "CreateChangeSet")
            template_dict = Stack.parse_template(template)
            imports.validate_import(self, stack, template_dict, resources_to_import or [])
            change_set_id, stack_id = original(
                self,
                stack_name,
                change_set_name,
                template,
                parameters,
                description,
                "UPDATE",
                notification_arns,
                tags,
                role_arn,
            )
            change_set = self.change_sets[change_set_id]
            change_set.change_set_type = "IMPORT"
            change_set.resources_to_import = resources_to_import
            change_set.changes = [
                ChangeView(
                    ResourceChange(
                        "Import",
                        item["LogicalResourceId"],
                        item["ResourceType"],
                        physical_id=next(iter((item.get("ResourceIdentifier") or {}).values()), None),
                        scope=[],
                        details=[],
                    )
                )
                for item in resources_to_import or []
            ]
            change_set.status, change_set.execution_status, change_set.status_reason = (
                "CREATE_COMPLETE",
                "AVAILABLE",
                None,
            )
            return change_set_id, stack_id
        if change_set_type == "UPDATE":
            _require_stable(self.get_stack(stack_name), "CreateChangeSet")
        change_set_id, stack_id = original(
            self,
            stack_name,
            change_set_name,
            template,
            parameters,
            description,
            change_set_type,
            notification_arns,
            tags,
            role_arn,
        )
        change_set = self.change_sets[change_set_id]
        new_template = Stack.parse_template(template)
        stack = self.stacks[stack_id]
        if (
            change_set_type == "UPDATE"
            and not change_set.changes
            and (stack.template_dict or {}).get("Outputs") == new_template.get("Outputs")
            and change_set.status != "FAILED"
        ):
            # moto compares raw parameter maps, so a UsePreviousValue it resolved looked like a change.
            change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
            change_set.status_reason = (
                "The submitted information didn't contain changes. Submit different information to create a change set."
            )
        missing = missing_import(self, new_template)
        if missing and change_set.status != "FAILED":
            # CloudFormation fails the change set itself: there is nothing it could execute.
            change_set.status, change_set.execution_status = "FAILED", "UNAVAILABLE"
            change_set.status_reason = f"No export named {missing} found"
        return change_set_id, stack_id

    return create_change_set


def _require_stable(stack: Stack, operation: str) -> None:
    if stack.status not in STABLE and stack.status != "REVIEW_IN_PROGRESS":
        raise ValidationError(message=f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")


def _diff(self: ChangeSet) -> list[ChangeView]:
    return [ChangeView(change) for change in plan(self.stack, self.template_dict, self.parameters)]


def _find_change_set(backend: CloudFormationBackend, change_set_name: str, stack_name: str | None) -> ChangeSet:
    if change_set_name in backend.change_sets:
        return backend.change_sets[change_set_name]
    # By name: the stack's latest change set of that name (an executed one gives its name up).
    for change_set in reversed(list(backend.change_sets.values())):
        if change_set.change_set_name == change_set_name and stack_name in (
            None,
            change_set.stack_name,
            change_set.stack_id,
        ):
            return change_set
    raise ValidationError(message=f"ChangeSet [{change_set_name}] does not exist")


def _refuse_duplicate_name(backend: CloudFormationBackend, stack_name: str, change_set_name: str) -> None:
    for change_set in backend.change_sets.values():
        if (
            change_set.change_set_name == change_set_name
            and stack_name in (change_set.stack_name, change_set.stack_id)
            and not (change_set.execution_status or "").startswith("EXECUTE_")
        ):
            raise AlreadyExistsException(f"ChangeSet {change_set_name} already exists")


def _execute_change_set(self: CloudFormationBackend, change_set_name: str, stack_name: str | None = None) -> None:
    from infra.sandbox.cfn import imports

    change_set = _find_change_set(self, change_set_name, stack_name)
    if change_set.execution_status != "AVAILABLE":
        raise cfn_models.ValidationError(
            message=f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status "
            f"of [{change_set.execution_status}]"
        )
    stack = self.stacks[change_set.stack_id]
    if change_set.change_set_type == "CREATE":
        stack.resource_map.cross_stack_resources = self.exports
        stack.template = change_set.template
        stack._parse_template()
        stack.parameters = change_set.parameters
        stack.resource_map = stack._create_resource_map()
        stack.output_map = stack._create_output_map()
        stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
        stack.status = "CREATE_IN_PROGRESS"
        try:
            stack.resource_map.create(stack.template_dict)
        except Exception as exc:
            _stack_event(stack, "ROLLBACK_IN_PROGRESS", _error_message(exc))
            stack.resource_map.delete()
            _stack_event(stack, "ROLLBACK_COMPLETE")
        else:
            _publish_exports(self, stack, set())
            _stack_event(stack, "CREATE_COMPLETE")
    elif change_set.change_set_type == "IMPORT":
        imports.execute_import(self, stack, change_set)
    else:
        _require_stable(stack, "ExecuteChangeSet")
        execute(self, stack, change_set.template, change_set.parameters)
    change_set.execution_status = "EXECUTE_COMPLETE"
    change_set.status = (
        "EXECUTE_COMPLETE"
        if stack.status.endswith("_COMPLETE") and "ROLLBACK" not in stack.status
        else change_set.status
    )
    if "ROLLBACK" in stack.status:
        change_set.execution_status = "EXECUTE_FAILED"
    # After a change set runs, CloudFormation deletes the stack's other change sets.
    for key in [
        key for key, other in self.change_sets.items() if other.stack_id == stack.stack_id and other is not change_set
    ]:
        del self.change_sets[key]


def _update_stack(
    self: CloudFormationBackend,
    name: str,
    template: str,
    role_arn: str | None,
    parameters: list[dict[str, Any]],
    tags: dict[str, str] | None,
) -> Stack:
    stack = self.get_stack(name)
    _require_stable(stack, "UpdateStack")
    resolved = _previous_values(stack, parameters)
    execute(self, stack, template, resolved)
    stack.role_arn = role_arn
    if resolved:
        stack.parameters = resolved
    if tags is not None:
        stack.tags = tags
    return stack


def _delete_stack(original):
    def delete_stack(self: CloudFormationBackend, name_or_stack_id: str) -> None:
        for stack in list(self.stacks.values()):
            if name_or_stack_id not in (stack.name, stack.stack_id):
                continue
            for export in stack.exports:
                users = importers(self, export.name, excluding=stack.stack_id)
                if users:
                    # DeleteStack itself succeeds on AWS; the stack then fails to delete.
                    _stack_event(stack, "DELETE_IN_PROGRESS", "User Initiated")
                    reason = f"Export {export.name} cannot be deleted as it is in use by {', '.join(users)}"
                    _stack_event(stack, "DELETE_FAILED", reason)
                    return
        original(self, name_or_stack_id)

    return delete_stack


def _create_stack(original):
    """CreateStack answers, then a resource that fails rolls the stack back (ROLLBACK_COMPLETE), as on AWS."""

    def create_stack(self: CloudFormationBackend, name: str, *args: Any, **kwargs: Any) -> Stack:
        try:
            stack = original(self, name, *args, **kwargs)
            _stack_event_first(stack)
            return stack
        except ValidationError:
            # Refused before anything was created (a template or export error): no stack, as on AWS.
            for stack_id, stack in list(self.stacks.items()):
                if stack.name == name and stack.status == "CREATE_PENDING":
                    del self.stacks[stack_id]
            raise
        except Exception as exc:
            stack = next((s for s in self.stacks.values() if s.name == name), None)
            if stack is None:
                raise
            _stack_event(stack, "ROLLBACK_IN_PROGRESS", _error_message(exc))
            try:
                stack.resource_map.delete()
            except Exception:
                log.warning("rollback of %s left resources behind", name, exc_info=True)
            _stack_event(stack, "ROLLBACK_COMPLETE")
            return stack

    return create_stack


def _response_create_change_set(self: responses.CloudFormationResponse) -> Any:
    """moto's handler for CREATE/UPDATE; IMPORT read here, since moto's drops ResourcesToImport."""
    if self._get_param("ChangeSetType") != "IMPORT":
        return _ORIGINAL["response_create_change_set"](self)
    from moto.core.responses import ActionResult

    stack_name = self._get_param("StackName")
    body = self._get_param("TemplateBody")
    if not body and self._get_param("TemplateURL"):
        body = self._get_stack_from_s3_url(self._get_param("TemplateURL"))
    if not body:
        raise ValidationError(message="Either Template URL or Template Body must be specified.")
    stack = self.cloudformation_backend.get_stack(stack_name)
    parameters = {
        item["ParameterKey"]: stack.stack_parameters.get(item["ParameterKey"])
        if item.get("UsePreviousValue")
        else item.get("ParameterValue")
        for item in self._get_param("Parameters", [])
    }
    change_set_id, stack_id = self.cloudformation_backend.create_change_set(
        stack_name=stack_name,
        change_set_name=self._get_param("ChangeSetName"),
        template=body,
        parameters=parameters or dict(stack.parameters),
        description=self._get_param("Description"),
        change_set_type="IMPORT",
        role_arn=self._get_param("RoleARN"),
        resources_to_import=self._get_param("ResourcesToImport", []),
    )
    return ActionResult({"Id": change_set_id, "StackId": stack_id})


def _list_imports(self: responses.CloudFormationResponse) -> Any:
    from moto.core.responses import ActionResult

    name = self._get_param("ExportName")
    backend = self.cloudformation_backend
    if name not in backend.exports:
        raise ValidationError(message=f"Export '{name}' does not exist.")
    return ActionResult({"Imports": importers(backend, name)})


def _continue_update_rollback(self: responses.CloudFormationResponse) -> Any:
    from moto.core.responses import EmptyResult

    if self._get_param("ForceRollback") and self._get_param("ResourcesToSkip"):
        raise ValidationError(message="ForceRollback and ResourcesToSkip are mutually exclusive.")
    name = self._get_param("StackName")
    skip = list(self._get_param("ResourcesToSkip", []) or [])
    if self._get_param("ForceRollback"):
        stack = self.cloudformation_backend.get_stack(name)
        skip = [entry[0] for entry in (stack.pending_rollback or {}).get("modified", [])]
    continue_update_rollback(self.cloudformation_backend, name, skip)
    return EmptyResult()


_ORIGINAL: dict[str, Any] = {}


def install() -> None:
    if _ORIGINAL:
        return
    _ORIGINAL["response_create_change_set"] = responses.CloudFormationResponse.create_change_set
    parsing.parse_and_create_resource = _creating(parsing.parse_and_create_resource)
    ChangeSet.diff = _diff
    CloudFormationBackend.create_change_set = _create_change_set(CloudFormationBackend.create_change_set)
    CloudFormationBackend.execute_change_set = _execute_change_set
    CloudFormationBackend.update_stack = _update_stack
    CloudFormationBackend.delete_stack = _delete_stack(CloudFormationBackend.delete_stack)
    CloudFormationBackend.create_stack = _create_stack(CloudFormationBackend.create_stack)
    responses.CloudFormationResponse.create_change_set = _response_create_change_set
    responses.CloudFormationResponse.list_imports = _list_imports
    responses.CloudFormationResponse.continue_update_rollback = _continue_update_rollback
    # Our changes are already shaped as DescribeChangeSet's Change; moto's wrapper would hide their fields.
    responses.CloudFormationResponse.RESPONSE_KEY_PATH_TO_TRANSFORMER["DescribeChangeSetOutput.Changes"] = (
        lambda changes: list(changes)
    )
    # StackStatusReason: moto's Stack has no such attribute; describe_stacks reads it when set.
    Stack.status_reason = None
    # What a failed rollback left to undo (ContinueUpdateRollback's work); None when nothing is pending.
    Stack.pending_rollback = None
