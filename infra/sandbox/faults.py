"""Fault switches: named failures the sandbox can inject so engineers can rehearse bad days.

The switches live in the sandbox process (the DSQL proxy and the health route read them on every
connection or request); other processes change them through the control endpoint (`control.py`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass

log = logging.getLogger(__name__)

_TRUE = {"1", "on", "true", "yes"}
_FALSE = {"0", "off", "false", "no", ""}

DESCRIPTIONS = {
    "dsql_refuse": "DSQL endpoint closes every new connection at once (clients see a connection error).",
    "dsql_latency_ms": "DSQL endpoint waits this many milliseconds before answering each new connection.",
    "health_fail": "Health route answers HTTP 500 with status error.",
    "health_timeout": "Health route holds each request far past any client timeout.",
    "dsql_idle": "Every DSQL cluster reports IDLE (or INACTIVE) whenever it has had no login for 2 s: each "
    "connection wakes it, slower (real state in moto: GetCluster shows it).",
    "dsql_endpoint_sg_revoked": "Revokes the TCP 5432 ingress rules of the DSQL interface endpoints' security "
    "groups in moto (restored when turned off): the API Lambda loses its path to DSQL.",
}
# Switches that take one of a few words; `on` means the first one.
CHOICES = {"dsql_idle": ("off", "idle", "inactive")}


class FaultError(ValueError):
    pass


@dataclass(frozen=True)
class Faults:
    dsql_refuse: bool = False
    dsql_latency_ms: int = 0
    health_fail: bool = False
    health_timeout: bool = False
    dsql_idle: str = "off"
    dsql_endpoint_sg_revoked: bool = False

    def as_dict(self) -> dict[str, bool | int | str]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != Faults()


def parse_value(name: str, raw: str | bool | int) -> bool | int | str:
    """A switch's value from text (command line, form) or JSON; raises FaultError on anything else."""
    if name not in DESCRIPTIONS:
        raise FaultError(f"unknown fault {name!r}; known: {', '.join(DESCRIPTIONS)}")
    if name in CHOICES:
        choices = CHOICES[name]
        text = str(raw).strip().lower() if not isinstance(raw, bool) else ("on" if raw else "off")
        text = {"on": choices[1], "true": choices[1], "1": choices[1], "false": "off", "0": "off", "": "off"}.get(
            text, text
        )
        if text not in choices:
            raise FaultError(f"{name} takes one of {', '.join(choices)} (or on), not {raw!r}")
        return text
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


def parse_assignment(text: str) -> tuple[str, bool | int | str]:
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
        # Switches with an effect outside this process (moto's state) apply it on every change.
        self._listeners: list[Callable[[Faults, Faults], None]] = []

    def subscribe(self, listener: Callable[[Faults, Faults], None]) -> None:
        """listener(before, after) on every change, after the switches are set (in the changing thread)."""
        self._listeners.append(listener)

    def _changed(self, before: Faults, after: Faults) -> None:
        for listener in self._listeners:
            try:
                listener(before, after)
            except Exception:  # a switch that cannot act says so in the log; the others still do
                log.exception("applying sandbox faults failed")

    @property
    def current(self) -> Faults:
        with self._lock:
            return self._faults

    def update(self, changes: dict[str, str | bool | int]) -> Faults:
        parsed = {name: parse_value(name, raw) for name, raw in changes.items()}
        with self._lock:
            before = self._faults
            self._faults = after = Faults(**{**before.as_dict(), **parsed})
        self._changed(before, after)
        return after

    def clear(self) -> Faults:
        with self._lock:
            before, self._faults = self._faults, Faults()
        self._changed(before, self._faults)
        return self._faults
