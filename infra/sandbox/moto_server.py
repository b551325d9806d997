"""moto's HTTP server as a real subprocess: the sandbox's AWS."""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]  # where `infra` is importable from

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Linux only: if the sandbox process is killed outright, the kernel stops moto too (no orphan on the port).
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def is_answering(url: str, timeout: float = 0.5) -> bool:
    """A moto server answers at url: its config endpoint, which reads no emulated state.

    Not /moto-api/data.json: that one serialises every public attribute of every model, and for a
    Lambda function that includes the `docker_client` property, which connects to Docker; without a
    Docker daemon it raises DockerException and moto answers 500 once the sandbox's Lambda exists (a
    second sandbox then took the running moto for absent and failed to start its own on the port).
    """
    try:
        with urllib.request.urlopen(f"{url}/moto-api/config", timeout=timeout) as response:
            config = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(config, dict) and "lambda" in config


def _post(url: str, payload: dict | None = None) -> None:
    """POST to moto's own API; raises on an error status (urllib's HTTPError)."""
    data = json.dumps(payload).encode() if payload is not None else b""
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10):
        pass


class MotoServer:
    """Starts moto's server with the sandbox's CloudFormation extensions (`python -m infra.sandbox.cfn.server`)
    on host:port, or adopts one already answering there (rerun-safe).

    `aurora_port`: the port Aurora clusters report, the local PostgreSQL's (infra/sandbox/cfn/resources.py).
    """

    def __init__(self, host: str, port: int, *, verbose: bool = False, aurora_port: int | None = None) -> None:
        self.host, self.port, self.verbose, self.aurora_port = host, port, verbose, aurora_port
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def adopted(self) -> bool:
        return self.process is None

    def start(self, timeout: float = 60.0) -> None:
        # About 1.5 s on a quiet 2-core machine; importing moto's services took past 20 s on one loaded by the
        # suite's workers. A server that exits is reported at once (below), so only a hung one waits this long.
        if is_answering(self.url):
            log.info("moto already answers at %s: using it", self.url)
            return
        output = None if self.verbose else subprocess.DEVNULL
        env = dict(os.environ)
        if self.aurora_port:
            env["SANDBOX_AURORA_PORT"] = str(self.aurora_port)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.sandbox.cfn.server", "-H", self.host, "-p", str(self.port)],
            stdout=output,
            stderr=output,
            env=env,
            cwd=ROOT,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while not is_answering(self.url):
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited with code {self.process.returncode} (is port {self.port} free?)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto did not answer at {self.url} within {timeout:.0f}s")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def configure(self, dsql_creating_seconds: int) -> None:
        """Lambda without Docker (before any function exists) and a realistic CREATING phase for DSQL clusters."""
        api = f"{self.url}/moto-api"
        _post(f"{api}/config", {"lambda": {"use_docker": False}})
        # Only DSQL models use moto's state manager; RDS clusters and snapshots are "available" at once.
        for model in ("dsql::cluster", "dsql::stream"):
            transition = {"progression": "time", "seconds": dsql_creating_seconds}
            if dsql_creating_seconds <= 0:
                transition = {"progression": "immediate"}
            _post(f"{api}/state-manager/set-transition", {"model_name": model, "transition": transition})

    def reset(self) -> None:
        """An empty account (every service, every region)."""
        _post(f"{self.url}/moto-api/reset")
