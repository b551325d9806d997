"""All sandbox parts together: start in order, seed, stop everything that was started (in reverse).

A sandbox already serving the same ports (its control endpoint says so) is adopted instead: nothing is
started, the account is seeded the usual non-destructive way (it looks before it creates), and
`run_forever` takes over with parts of its own if the adopted sandbox goes away.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from infra.sandbox import aurora_db, dsql_proxy, iam_principals
from infra.sandbox.config import SandboxConfig
from infra.sandbox.control import ControlError, ControlServer, get_state, identity, set_faults
from infra.sandbox.dsql_login import MotoLogins
from infra.sandbox.dsql_proxy import DsqlProxy
from infra.sandbox.faults import Faults, FaultSwitches
from infra.sandbox.health_route import HealthRoute
from infra.sandbox.moto_server import MotoServer, is_answering
from infra.sandbox.seed import SeededAccount, seed_account, seed_environment

log = logging.getLogger(__name__)


class Sandbox:
    def __init__(self, config: SandboxConfig, faults: Faults | None = None, *, verbose: bool = False) -> None:
        self.config = config
        self.faults = FaultSwitches(faults)
        self.moto = MotoServer(config.host, config.moto_port, verbose=verbose, aurora_port=config.pg_port)
        self.iam_enforced = iam_principals.enforced_by_default()  # SANDBOX_IAM=0: moto evaluates no IAM
        self.account: SeededAccount | None = None
        # The control state of the running sandbox this one adopted (None: this one runs its own parts).
        self.adopted: dict[str, Any] | None = None
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
        self.adopted = running_sandbox(config)
        if self.adopted is not None:
            if reset:
                raise RuntimeError(
                    f"a sandbox is already running (pid {self.adopted['pid']}, {config.control_url}): "
                    "stop it before --reset"
                )
            self.moto.start()  # answers (checked above): adopted, not started
            if self.faults.current.active:
                try:
                    set_faults(config.control_url, self.faults.current.as_dict())
                except ControlError as exc:
                    raise RuntimeError(f"could not set faults on the running sandbox: {exc}") from None
            self.account = seed_account(config)
            return
        self.moto.start()
        self._stops.append(self.moto.stop)  # a no-op for an adopted moto: it is not ours to stop
        if reset:
            self.moto.reset()
            aurora_db.drop(config)
            dsql_proxy.drop_database(config)
        # Before any Lambda function exists, or moto would try to run it in Docker.
        self.moto.configure(config.dsql_creating_seconds)
        # IAM evaluated from the first request on: the seed signs as the sandbox's admin, VelaOps as itself.
        iam_principals.enforce(self.moto.url, self.iam_enforced)
        aurora_db.ensure(config)
        dsql_proxy.ensure_database(config)

        # Token keys and their principals' grants are moto's (IAM users, STS sessions): DSQL asks IAM too.
        proxy = DsqlProxy(config, self.faults, logins=MotoLogins(config))
        for part in (proxy, HealthRoute(config, self.faults), ControlServer(config, self.faults)):
            part.start()
            self._stops.append(part.stop)
        self.account = seed_account(config)

    def adopted_is_running(self) -> bool:
        """The adopted sandbox still serves its control endpoint and its moto."""
        try:
            get_state(self.config.control_url)
        except ControlError:
            return False
        return is_answering(self.config.moto_url)

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
        parts = [
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
        if self.adopted is not None:
            parts.append(("adopted", f"the sandbox running as pid {self.adopted['pid']} (nothing started here)"))
        return parts


def running_sandbox(config: SandboxConfig) -> dict[str, Any] | None:
    """The identity of a sandbox already serving config's ports, or None if the control port is not served.

    Raises RuntimeError when the ports are served by a sandbox set up differently (other ports or stand-in
    databases), or by one whose moto no longer answers: adopting either would point VelaOps at the wrong place.
    """
    try:
        state = get_state(config.control_url, timeout=2)
    except ControlError:
        return None
    running = state.get("sandbox") or {}
    wanted = identity(config, pid=running.get("pid"))
    if running != wanted:
        differs = sorted(key for key in wanted if running.get(key) != wanted[key])
        raise RuntimeError(
            f"{config.control_url} is served by another sandbox (pid {running.get('pid', '?')}, "
            f"different {', '.join(differs)}): stop it or choose other ports (--port, SANDBOX_PORT)"
        )
    if not is_answering(config.moto_url, timeout=2):
        raise RuntimeError(
            f"the sandbox running as pid {running['pid']} no longer has its moto at {config.moto_url}: stop it"
        )
    return running


ADOPTED_CHECK_SECONDS = 3


def _start_and_seed(sandbox: Sandbox, reset: bool, out: Callable[[str], None]) -> None:
    sandbox.start(reset=reset)
    environment = sandbox.seed_environment()
    out(f"sandbox: environment '{environment.slug}' seeded")
    for label, where in sandbox.describe():
        out(f"sandbox: {label:<17} {where}")
    if sandbox.faults.current.active:
        out(f"sandbox: faults on: {sandbox.faults.current.as_dict()}")
    out("sandbox: ready; Ctrl-C stops it")


def run_forever(sandbox: Sandbox, *, reset: bool = False, out: Callable[[str], None] = print) -> None:
    """Start, seed the VelaOps environment, and serve until SIGINT/SIGTERM; then stop everything."""
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _start_and_seed(sandbox, reset, out)
        while not stopping.wait(ADOPTED_CHECK_SECONDS if sandbox.adopted else 1):
            moto = sandbox.moto.process
            if moto is not None and moto.poll() is not None:
                # Everything else depends on it: stop (non-zero) and let make run's supervisord start us again.
                raise RuntimeError(f"moto exited with code {moto.returncode}; the sandbox stops with it")
            if sandbox.adopted is not None and not sandbox.adopted_is_running():
                out(f"sandbox: the adopted sandbox (pid {sandbox.adopted['pid']}) stopped; starting this one's own")
                sandbox.stop()
                # Its moto stops last: give it the time to free the port rather than adopt a moto on its way out.
                deadline = time.monotonic() + 10
                while is_answering(sandbox.config.moto_url) and time.monotonic() < deadline:
                    time.sleep(0.2)
                _start_and_seed(sandbox, False, out)
        out("sandbox: stopping")
    finally:
        sandbox.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
