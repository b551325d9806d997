"""Fault switches: named failures the sandbox can inject so engineers can rehearse bad days.

The switches live in the sandbox process (the DSQL proxy and the health route read them on every
connection or request); other processes change them through the control endpoint (`control.py`).
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass

_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no", ""}

DESCRIPTIONS = {
    "dsql_refuse": "DSQL endpoint closes every new connection at once (clients see a connection error).",
    "dsql_latency_ms": "DSQL endpoint waits this many milliseconds before answering each new connection.",
    "health_fail": "Health route answers HTTP 500 with status error.",
    "health_timeout": "Health route holds each request far past any client timeout.",
}


class FaultError(ValueError):
    pass


@dataclass(frozen=True)
class Faults:
    dsql_refuse: bool = False
    dsql_latency_ms: int = 0
    health_fail: bool = False
    health_timeout: bool = False

    def as_dict(self) -> dict[str, bool | int]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != Faults()


def parse_value(name: str, raw: str | bool | int) -> bool | int:
    """A switch's value from text (command line, form) or JSON; raises FaultError on anything else."""
    if name not in DESCRIPTIONS:
        raise FaultError(f"unknown fault {name!r}; known: {', '.join(DESCRIPTIONS)}")
    if name == "dsql_latency_ms":
        try:
            value = int(raw)
        except (TypeError, ValueError):
            raise FaultError(f"{name} takes a number of milliseconds, not {raw!r}") from None
        if not 0 <= value <= 120_000:
            raise FaultError(f"{name} must be between 0 and 120000")
        return value
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FaultError(f"{name} takes on or off, not {raw!r}")


def parse_assignment(text: str) -> tuple[str, bool | int]:
    """`NAME=VALUE` as typed on the command line."""
    name, sep, raw = text.partition("=")
    if not sep:
        raise FaultError(f"expected NAME=VALUE, got {text!r}")
    name = name.strip().replace("-", "_")
    return name, parse_value(name, raw)


class FaultSwitches:
    """The current faults, shared by the sandbox's threads."""

    def __init__(self, initial: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self._faults = initial or Faults()

    @property
    def current(self) -> Faults:
        with self._lock:
            return self._faults

    def update(self, changes: dict[str, str | bool | int]) -> Faults:
        parsed = {name: parse_value(name, raw) for name, raw in changes.items()}
        with self._lock:
            self._faults = Faults(**{**self._faults.as_dict(), **parsed})
            return self._faults

    def clear(self) -> Faults:
        with self._lock:
            self._faults = Faults()
            return self._faults
