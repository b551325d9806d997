"""IMPORT change sets: an existing resource adopted into a stack's resource map, without creating anything.

A model class may offer `import_existing(identifier, resource_json, account_id, region_name)` (the sandbox's
own models do); moto's models for the other types Vela's stacks hold are adopted here. Anything else is
refused as AWS refuses a type that does not support import.
"""

from __future__ import annotations

from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.exceptions import ValidationError


def _identifier(item: dict[str, Any]) -> str:
    values = list((item.get("ResourceIdentifier") or {}).values())
    if len(values) != 1:
        raise ValidationError(
            message=f"ResourceIdentifier of {item.get('LogicalResourceId')} must name one identifier."
        )
    return str(values[0])


def _dynamodb_table(identifier: str, account_id: str, region: str) -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[account_id][region].tables.get(identifier)


def _lambda_function(identifier: str, account_id: str, region: str) -> Any:
    from moto.awslambda.utils import get_backend  # the docker-less backend when moto is so configured

    try:
        return get_backend(account_id, region).get_function(identifier)
    except Exception:
        return None


_MOTO_MODELS = {
    "AWS::DynamoDB::Table": _dynamodb_table,
    "AWS::Lambda::Function": _lambda_function,
}


def _find(account_id: str, region: str, item: dict[str, Any], resource_json: dict[str, Any] | None) -> Any:
    resource_type = item["ResourceType"]
    identifier = _identifier(item)
    model_class = parsing.resource_class_from_type(resource_type)
    if model_class is not None and hasattr(model_class, "import_existing"):
        return model_class.import_existing(identifier, resource_json or {}, account_id, region)
    if resource_type in _MOTO_MODELS:
        return _MOTO_MODELS[resource_type](identifier, account_id, region)
    raise ValidationError(message=f"ResourceType {resource_type} is not supported for import by the sandbox.")


def exists(account_id: str, region: str, item: dict[str, Any]) -> bool:
    return _find(account_id, region, item, None) is not None


def adopt(account_id: str, region: str, item: dict[str, Any], resource_json: dict[str, Any]) -> Any:
    model = _find(account_id, region, item, resource_json)
    if model is None:
        raise ValidationError(message=f"Resource with identifier '{_identifier(item)}' does not exist.")
    return model
