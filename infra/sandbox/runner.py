"""All sandbox parts together: start in order, seed, stop everything that was started (in reverse)."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from . import aurora_db, dsql_proxy
from .config import SandboxConfig
from .control import ControlServer
from .dsql_proxy import DsqlProxy, known_secrets, moto_cluster_status
from .faults import Faults, FaultSwitches
from .health_route import HealthRoute
from .moto_server import MotoServer
from .seed import SeededAccount, seed_account, seed_environment

log = logging.getLogger(__name__)


class Sandbox:
    def __init__(self, config: SandboxConfig, faults: Faults | None = None, *, verbose: bool = False) -> None:
        self.config = config
        self.faults = FaultSwitches(faults)
        self.moto = MotoServer(config.host, config.moto_port, verbose=verbose)
        self.account: SeededAccount | None = None
        self._stops: list[Callable[[], None]] = []

    def start(self, *, reset: bool = False) -> SeededAccount:
        """Start every part and seed the account; on any failure, stop what already started."""
        try:
            self._start(reset)
        except BaseException:
            self.stop()
            raise
        assert self.account is not None
        return self.account

    def _start(self, reset: bool) -> None:
        config = self.config
        self.moto.start()
        self._stops.append(self.moto.stop)  # a no-op for an adopted moto: it is not ours to stop
        if reset:
            self.moto.reset()
            aurora_db.drop(config)
            dsql_proxy.drop_database(config)
        # Before any Lambda function exists, or moto would try to run it in Docker.
        self.moto.configure(config.dsql_creating_seconds)
        aurora_db.ensure(config)
        dsql_proxy.ensure_database(config)

        proxy = DsqlProxy(config, self.faults, secret_for=known_secrets(), cluster_status=moto_cluster_status(config))
        for part in (proxy, HealthRoute(config, self.faults), ControlServer(config, self.faults)):
            part.start()
            self._stops.append(part.stop)
        self.account = seed_account(config)

    def seed_environment(self) -> Any:
        assert self.account is not None, "start() first"
        return seed_environment(self.config, self.account)

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            try:
                stop()
            except Exception:  # keep stopping the rest
                log.exception("stopping a sandbox part failed")

    def describe(self) -> list[tuple[str, str]]:
        config = self.config
        return [
            ("AWS (moto)", config.moto_url + (" (already running: adopted)" if self.moto.adopted else "")),
            (
                "DSQL endpoint",
                f"{config.host}:{config.dsql_port} -> PostgreSQL {config.pg_host}:{config.pg_port}"
                f"/{config.dsql_database}",
            ),
            ("Aurora contents", f"PostgreSQL {config.pg_host}:{config.pg_port}/{config.aurora_database}"),
            ("API health route", config.health_url),
            ("fault control", f"{config.control_url}/faults"),
        ]


def run_forever(sandbox: Sandbox, *, reset: bool = False, out: Callable[[str], None] = print) -> None:
    """Start, seed the VelaOps environment, and serve until SIGINT/SIGTERM; then stop everything."""
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        sandbox.start(reset=reset)
        environment = sandbox.seed_environment()
        out(f"sandbox: environment '{environment.slug}' seeded")
        for label, where in sandbox.describe():
            out(f"sandbox: {label:<17} {where}")
        if sandbox.faults.current.active:
            out(f"sandbox: faults on: {sandbox.faults.current.as_dict()}")
        out("sandbox: ready; Ctrl-C stops it")
        while not stopping.wait(1):
            pass
        out("sandbox: stopping")
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
