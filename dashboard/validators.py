"""Validators for the AWS identifiers an environment is configured with, and for webhook URLs."""

from __future__ import annotations

import functools
import re

from botocore.loaders import create_loader
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

from .alerts import outbound

account_id_validator = RegexValidator(r"^\d{12}$", "An AWS account id is exactly 12 digits, e.g. 123456789012.")

# arn:PARTITION:iam::ACCOUNT:role/OPTIONAL/PATH/NAME (IAM's own character set for names and paths).
role_arn_validator = RegexValidator(
    r"^arn:aws(-[a-z]+)*:iam::\d{12}:role/([\w+=,.@-]+/)*[\w+=,.@-]{1,64}$",
    "Expected an IAM role ARN such as arn:aws:iam::123456789012:role/VelaOpsOperator.",
)

# DNS label characters only: the resource names we store are used in API calls and host names.
resource_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,254}$",
    "Use letters, digits and . _ - : / + = @ only (AWS resource name or ARN).",
)


@functools.cache
def known_regions() -> frozenset[str]:
    """Every region in botocore's endpoint data, across partitions (aws, aws-cn, aws-us-gov, ...)."""
    endpoints = create_loader().load_data("endpoints")
    return frozenset(region for partition in endpoints["partitions"] for region in partition["regions"])


_REGION_SHAPE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def validate_region(value: str) -> None:
    if not _REGION_SHAPE.match(value or ""):
        raise ValidationError(f"“{value}” is not an AWS region name (expected a name like us-east-1).", code="invalid")
    if value not in known_regions():
        raise ValidationError(f"“{value}” is not a known AWS region.", code="unknown")


def validate_webhook_url(value: str) -> None:
    """Only a URL VelaOps may reach (dashboard/alerts/outbound.py): public addresses, or allow-listed ones."""
    try:
        outbound.resolve(value)
    except outbound.Refused as exc:
        raise ValidationError(f"Not allowed: {exc}.", code="refused") from None
    except outbound.Unresolvable as exc:
        raise ValidationError(f"{exc}; check the host name.", code="unresolvable") from None
