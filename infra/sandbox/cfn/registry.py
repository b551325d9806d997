"""The CloudFormation registry's resource schemas, as cfn-lint ships them (installed with moto).

What a change set says about replacement and what drift detection compares come from AWS's own
schemas: `createOnlyProperties` (a change replaces the resource), `readOnlyProperties` (never in a
template, never drift), `writeOnlyProperties` (not readable back, never drift).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cfnlint

_SCHEMAS = Path(cfnlint.__file__).parent / "data" / "schemas"
REGION = "us-east-1"


@dataclass(frozen=True)
class ResourceSchema:
    type_name: str
    create_only: frozenset[str]  # top-level property names ("/properties/X" → "X"), plus nested paths
    read_only: frozenset[str]
    write_only: frozenset[str]
    primary_identifier: tuple[str, ...]

    def replaces(self, property_name: str) -> bool:
        """Does changing this top-level property replace the resource?"""
        return property_name in self.create_only or any(p.startswith(property_name + "/") for p in self.create_only)


def _names(paths: list[str] | None) -> frozenset[str]:
    return frozenset(path.removeprefix("/properties/") for path in (paths or []))


@cache
def _provider(region: str) -> dict[str, str]:
    return json.loads((_SCHEMAS / "providers" / f"{region}.json").read_text())


@cache
def schema(type_name: str, region: str = REGION) -> ResourceSchema | None:
    """The registry schema of a resource type, or None for a type the registry does not know."""
    digest = _provider(region).get(type_name)
    if not digest:
        return None
    raw = json.loads((_SCHEMAS / "resources" / f"{digest}.json").read_text())
    return ResourceSchema(
        type_name=type_name,
        create_only=_names(raw.get("createOnlyProperties")),
        read_only=_names(raw.get("readOnlyProperties")),
        write_only=_names(raw.get("writeOnlyProperties")),
        primary_identifier=tuple(_names(raw.get("primaryIdentifier"))),
    )
