"""DSQL cluster states past CREATING/ACTIVE, as the sandbox's moto reports them; and its clients.

moto 5.2.5's DSQL backend only knows CREATING -> ACTIVE and DELETING -> DELETED. `install()` (called by
`infra.sandbox.cfn.install()`, so in the sandbox's moto process and in the tests' in-process moto) makes a
cluster's status follow the Aurora DSQL user guide. Sources, checked 2026-12-02:

- "Aurora DSQL cluster lifecycle" (docs.aws.amazon.com/aurora-dsql/latest/userguide/cluster-lifecycle.html)
- botocore's service model dsql/2018-05-10 (ClusterStatus enum; UpdateCluster and DeleteCluster both list
  ConflictException {message, resourceId, resourceType}, HTTP 409)

Status: what the guide says -> what the sandbox does.
- IDLE: no connection activity for a while, resources scaled down; connecting makes it Active again ->
  after `idle_seconds` without a login (SANDBOX_DSQL_IDLE_SECONDS, default 1800; AWS publishes no figure).
- INACTIVE: an idle cluster after a prolonged period, scaled to zero, data kept; a connection restores it
  ("the time to restore depends on the cluster size"; the first connection is slower than usual) ->
  after `inactive_seconds` (SANDBOX_DSQL_INACTIVE_SECONDS, default 86400; no AWS figure).
- waking: a successful connection moves IDLE/INACTIVE back to ACTIVE -> the DSQL endpoint holds the
  accepted login `idle_wake_seconds` (1) / `inactive_wake_seconds` (3), then lets it in.
- UPDATING: while a configuration change is applied -> `updating_seconds` after each UpdateCluster
  (SANDBOX_DSQL_UPDATING_SECONDS, default 3); UpdateCluster and DeleteCluster meanwhile get ConflictException.
- PENDING_SETUP: a multi-Region cluster created with a witness Region, until a peer is added ->
  multiRegionProperties with a witnessRegion and no peer clusters.

`forced` (the `dsql_idle` fault) reports every cluster IDLE or INACTIVE as soon as it has had no login for
`FORCED_GRACE` seconds: each connection is a cold start. Settings are the moto process's, kept across
`/moto-api/reset`; `POST /moto-api/sandbox/dsql-lifecycle` changes them, `POST /moto-api/sandbox/dsql-connect`
records a login (the DSQL endpoint calls it) and answers how long the wake-up takes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.request
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

FORCED_GRACE = 2.0  # seconds after a login during which a forced-idle cluster still reports ACTIVE
FORCEABLE = ("IDLE", "INACTIVE")
_HOST = re.compile(r"^(?P<identifier>[a-z0-9]+)\.dsql\.(?P<region>[a-z0-9-]+)\.on\.aws/")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    idle_seconds: float = 1800
    inactive_seconds: float = 86400
    updating_seconds: float = 3
    idle_wake_seconds: float = 1
    inactive_wake_seconds: float = 3
    forced: str | None = None  # "IDLE" | "INACTIVE" | None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            idle_seconds=_env_float("SANDBOX_DSQL_IDLE_SECONDS", cls.idle_seconds),
            inactive_seconds=_env_float("SANDBOX_DSQL_INACTIVE_SECONDS", cls.inactive_seconds),
            updating_seconds=_env_float("SANDBOX_DSQL_UPDATING_SECONDS", cls.updating_seconds),
        )

    def changed(self, changes: dict[str, Any]) -> Settings:
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown lifecycle settings {sorted(unknown)}; known: {sorted(known)}")
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "forced":
                if value is not None and value not in FORCEABLE:
                    raise ValueError(f"forced is one of {FORCEABLE} or null, not {value!r}")
                values[name] = value
            else:
                number = float(value)
                if number < 0:
                    raise ValueError(f"{name} must not be negative")
                values[name] = number
        return replace(self, **values)


settings = Settings.from_env()


# -- the moto side ---------------------------------------------------------------------------------------
def effective_status(cluster: Any, base: str | None, now: float | None = None) -> str | None:
    """The status a cluster reports, from moto's own (CREATING/ACTIVE/DELETING) and the sandbox's timers."""
    if base != "ACTIVE":
        return base
    now = time.monotonic() if now is None else now
    if getattr(cluster, "_sandbox_updating_until", 0.0) > now:
        return "UPDATING"
    multi_region = getattr(cluster, "multi_region_properties", None) or {}
    if multi_region.get("witnessRegion") and not multi_region.get("clusters"):
        return "PENDING_SETUP"
    quiet = now - getattr(cluster, "_sandbox_last_activity", now)
    if settings.forced and quiet > FORCED_GRACE:
        return settings.forced
    if quiet >= settings.inactive_seconds:
        return "INACTIVE"
    if quiet >= settings.idle_seconds:
        return "IDLE"
    return "ACTIVE"


def record_login(cluster: Any) -> dict[str, Any]:
    """A client logged in: the cluster is ACTIVE again; how long its wake-up holds the client."""
    before = cluster.status
    wake = {"IDLE": settings.idle_wake_seconds, "INACTIVE": settings.inactive_wake_seconds}.get(before, 0.0)
    # Quiet time counts from when the woken cluster lets the client in.
    cluster._sandbox_last_activity = time.monotonic() + wake
    return {"identifier": cluster.identifier, "previousStatus": before, "wakeSeconds": wake}


_installed = False


def install() -> None:
    global _installed
    if _installed:
        return
    from moto.dsql.exceptions import ConflictException
    from moto.dsql.models import AuroraDSQLBackend, Cluster
    from moto.moto_api._internal import urls
    from moto.moto_api._internal.managed_state_model import ManagedState

    original_init = Cluster.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self._sandbox_last_activity = time.monotonic()
        self._sandbox_updating_until = 0.0

    def _get(self: Any) -> str | None:
        return effective_status(self, ManagedState.status.fget(self))

    def _set(self: Any, value: str) -> None:
        ManagedState.status.fset(self, value)

    Cluster.__init__ = __init__
    Cluster.status = property(_get, _set)

    original_update = AuroraDSQLBackend.update_cluster
    original_delete = AuroraDSQLBackend.delete_cluster

    def _refuse_while_updating(cluster: Any, action: str) -> None:
        if cluster.status == "UPDATING":
            raise ConflictException(
                f"Cannot {action} cluster {cluster.identifier} while it is in UPDATING state.",
                cluster.identifier,
                "cluster",
            )

    def update_cluster(self: Any, identifier: str, *args: Any, **kwargs: Any) -> Any:
        _refuse_while_updating(self.get_cluster(identifier), "update")
        cluster = original_update(self, identifier, *args, **kwargs)
        cluster._sandbox_updating_until = time.monotonic() + settings.updating_seconds
        return cluster

    def delete_cluster(self: Any, identifier: str) -> Any:
        if identifier in self.clusters:
            _refuse_while_updating(self.clusters[identifier], "delete")
        return original_delete(self, identifier)

    AuroraDSQLBackend.update_cluster = update_cluster
    AuroraDSQLBackend.delete_cluster = delete_cluster

    # Before moto builds its moto-api app (lazily, at the first request for it).
    urls.url_paths["{0}/moto-api/sandbox/dsql-lifecycle"] = _settings_view
    urls.url_paths["{0}/moto-api/sandbox/dsql-connect"] = _connect_view
    _installed = True


def _body(request: Any, headers: Any) -> dict[str, Any]:
    length = int(headers.get("Content-Length") or 0)
    raw = request.environ["wsgi.input"].read(length) if length else b""
    body = json.loads(raw or b"{}")
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def _json(status: int, payload: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def _settings_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    global settings
    if request.method == "POST":
        try:
            settings = settings.changed(_body(request, headers))
        except (ValueError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
    return _json(200, asdict(settings))


def _connect_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dsql.models import dsql_backends

    try:
        body = _body(request, headers)
        backend = dsql_backends[body.get("accountId") or DEFAULT_ACCOUNT_ID][body["region"]]
        cluster = backend.clusters.get(body["identifier"])
    except (ValueError, KeyError, TypeError) as exc:
        return _json(400, {"error": f"expected identifier and region: {exc}"})
    if cluster is None:
        return _json(404, {"error": f"no cluster {body['identifier']}"})
    return _json(200, record_login(cluster))


# -- clients (the sandbox process) -----------------------------------------------------------------------
def _post(moto_url: str, path: str, payload: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{moto_url}/moto-api/sandbox/{path}",
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def configure(moto_url: str, **changes: Any) -> dict[str, Any]:
    """Change the running moto's lifecycle settings (tests: short timers); returns them all."""
    return _post(moto_url, "dsql-lifecycle", changes)


def current(moto_url: str) -> dict[str, Any]:
    return _post(moto_url, "dsql-lifecycle", {})


def login(moto_url: str, token: str) -> float:
    """Record a successful login for the token's cluster; the seconds its wake-up takes (0 when ACTIVE)."""
    match = _HOST.match(token)
    if not match:
        return 0.0
    try:
        answer = _post(moto_url, "dsql-connect", {"identifier": match["identifier"], "region": match["region"]})
    except OSError:  # urllib's errors: the token check has just reached moto; a lost wake-up is no refusal
        return 0.0
    return float(answer.get("wakeSeconds") or 0.0)


async def wake_on_login(moto_url: str, token: str) -> None:
    """The DSQL endpoint's call after a login is accepted: a sleeping cluster makes the client wait."""
    delay = await asyncio.to_thread(login, moto_url, token)
    if delay:
        await asyncio.sleep(delay)
