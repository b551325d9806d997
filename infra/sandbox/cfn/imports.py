"""IMPORT change sets: existing resources adopted into an existing stack, with AWS's validations (moto 5.2 treats
an IMPORT change set as a new stack). CloudFormation user guide, "Import AWS resources into a CloudFormation
stack" (checked 2026-12-01): the template is the stack's current one plus the imported resources, each with a
DeletionPolicy; nothing else may change; the resource must exist and belong to no other stack.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation.exceptions import ValidationError
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Stack

from infra.sandbox.cfn import engine


def execute_import(backend: CloudFormationBackend, stack: Stack, change_set: ChangeSet) -> None:
    from infra.sandbox.cfn.adopt import adopt

    template = change_set.template_dict
    engine._stack_event(stack, "IMPORT_IN_PROGRESS", "User Initiated")
    resource_map = stack.resource_map
    old_resources = dict((stack.template_dict or {}).get("Resources", {}))
    imported = []
    try:
        for item in change_set.resources_to_import:
            logical_id = item["LogicalResourceId"]
            resource_json = template["Resources"][logical_id]
            engine._event(stack, logical_id, None, item["ResourceType"], "IMPORT_IN_PROGRESS")
            model = adopt(stack.account_id, stack.region_name, item, resource_json)
            model.cf_resource_type = item["ResourceType"]
            model.logical_resource_id = logical_id
            resource_map._parsed_resources[logical_id] = model
            imported.append(logical_id)
            engine._event(stack, logical_id, model.physical_resource_id, item["ResourceType"], "IMPORT_COMPLETE")
            engine._tag_with_stack(stack, logical_id, model)
    except Exception as exc:
        for logical_id in imported:
            resource_map._parsed_resources.pop(logical_id, None)
        engine._stack_event(stack, "IMPORT_ROLLBACK_IN_PROGRESS", engine._error_message(exc))
        engine._stack_event(stack, "IMPORT_ROLLBACK_COMPLETE")
        return
    previous_exports = {export.name for export in stack.exports}
    stack.template = change_set.template
    stack._parse_template()
    resource_map._template = template
    resource_map._resource_json_map = template["Resources"]
    stack.output_map = stack._create_output_map()
    engine._publish_exports(backend, stack, previous_exports)
    del old_resources
    engine._stack_event(stack, "IMPORT_COMPLETE")


def validate_import(
    backend: CloudFormationBackend, stack: Stack, template: dict[str, Any], to_import: list[dict[str, Any]]
) -> None:
    """AWS's checks on an IMPORT change set (user guide, "Import AWS resources into a CloudFormation stack")."""
    from infra.sandbox.cfn.adopt import exists

    if not to_import:
        raise ValidationError(message="ResourcesToImport must be specified for an IMPORT change set.")
    current = (stack.template_dict or {}).get("Resources", {})
    resources = template.get("Resources", {})
    logical_ids = {item["LogicalResourceId"] for item in to_import}
    missing_policy = []
    for item in to_import:
        logical_id = item["LogicalResourceId"]
        resource_json = resources.get(logical_id)
        if resource_json is None:
            raise ValidationError(message=f"Resource {logical_id} to import is not in the template.")
        if logical_id in current:
            raise ValidationError(message=f"Resource {logical_id} already exists in the stack.")
        if resource_json["Type"] != item["ResourceType"]:
            raise ValidationError(
                message=f"Resource {logical_id} is of type {resource_json['Type']}, not {item['ResourceType']}."
            )
        if "DeletionPolicy" not in resource_json:
            missing_policy.append(logical_id)
        if not exists(stack.account_id, stack.region_name, item):
            identifier = next(iter((item.get("ResourceIdentifier") or {}).values()), "")
            raise ValidationError(
                message=f"Resource with identifier '{identifier}' of type '{item['ResourceType']}' does not exist."
            )
        owner = _owner(backend, item)
        if owner:
            raise ValidationError(message=f"Resource {item['LogicalResourceId']} already belongs to stack {owner}.")
    if missing_policy:
        raise ValidationError(
            message=f"The following resources to import [{', '.join(missing_policy)}] must have DeletionPolicy "
            "attribute specified in the template."
        )
    changed = [key for key, value in resources.items() if key not in logical_ids and current.get(key) != value]
    changed += [key for key in current if key not in resources]
    if changed:
        raise ValidationError(
            message=f"You have modified resources [{', '.join(sorted(changed))}] in your template that are not "
            "being imported. "
            "Update, create or delete operations cannot be executed during import operations."
        )


def _owner(backend: CloudFormationBackend, item: dict[str, Any]) -> str | None:
    identifiers = set((item.get("ResourceIdentifier") or {}).values())
    for other in backend.stacks.values():
        for model in other.resource_map._parsed_resources.values():
            if (
                getattr(model, "cf_resource_type", None) == item["ResourceType"]
                and getattr(model, "physical_resource_id", None) in identifiers
            ):
                return other.name
    return None
