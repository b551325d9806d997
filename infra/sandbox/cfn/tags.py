"""The tags CloudFormation puts on what it creates (aws:cloudformation:stack-name, stack-id, logical-id, and the
stack's own tags), applied through moto's tagging backends. moto does this for EC2 resources only."""

from __future__ import annotations

from typing import Any

from moto.iam.models import iam_backends
from moto.resourcegroupstaggingapi.models import resourcegroupstaggingapi_backends

# Where each model keeps its ARN (moto's models name it differently per service).
_ARN_ATTRIBUTES = ("arn", "function_arn", "table_arn", "db_cluster_arn")


# The sandbox's own models keep only the physical id; their ARNs are built as the services build them.
_ARN_FORMATS = {
    "AWS::DSQL::Cluster": "arn:aws:dsql:{region}:{account}:cluster/{id}",
    "AWS::RDS::DBCluster": "arn:aws:rds:{region}:{account}:cluster:{id}",
}


def resource_arn(model: Any, resource_type: str = "", account_id: str = "", region: str = "") -> str | None:
    if resource_type in _ARN_FORMATS:
        return _ARN_FORMATS[resource_type].format(region=region, account=account_id, id=model.physical_resource_id)
    for attribute in _ARN_ATTRIBUTES:
        value = getattr(model, attribute, None)
        if isinstance(value, str) and value.startswith("arn:"):
            return value
    physical = getattr(model, "physical_resource_id", None)
    return physical if isinstance(physical, str) and physical.startswith("arn:") else None


def tag_resource(account_id: str, region: str, resource_type: str, model: Any, tags: dict[str, str]) -> None:
    if resource_type.startswith("AWS::EC2::"):
        return  # moto's ResourceMap tags EC2 resources itself
    if resource_type == "AWS::IAM::Role":
        iam_backends[account_id]["global"].tag_role(model.name, [{"Key": k, "Value": v} for k, v in tags.items()])
        return
    arn = resource_arn(model, resource_type, account_id, region)
    if arn:
        resourcegroupstaggingapi_backends[account_id][region].tag_resources([arn], tags)
