"""The sandbox's control endpoint: read and flip fault switches from other processes.

Served by the running sandbox on loopback (`GET /faults`, `POST /faults` with a JSON object of
switches). VelaOps's fault page and `manage.py sandbox --set-fault` are its clients; the page finds it
through the SANDBOX_CONTROL_URL setting, and treats as "the sandbox" the environment whose AWS endpoint
URL is the one this endpoint reports. No authentication: it listens on loopback only and controls
nothing but fake failures.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infra.sandbox.config import SandboxConfig
from infra.sandbox.fault_effects import MotoFaults
from infra.sandbox.faults import CHOICES, DESCRIPTIONS, FaultError, Faults, FaultSwitches

MAX_BODY = 4096


class ControlServer:
    def __init__(self, config: SandboxConfig, faults: FaultSwitches) -> None:
        self.config, self.faults = config, faults
        self._server: ThreadingHTTPServer | None = None
        self.moto_faults = MotoFaults(config)
        faults.subscribe(self.moto_faults.apply)

    def state(self) -> dict[str, Any]:
        return {
            "aws_endpoint_url": self.config.moto_url,
            "faults": self.faults.current.as_dict(),
            "descriptions": DESCRIPTIONS,
            "choices": CHOICES,
            "revoked_rules": self.moto_faults.revoked,
            # Who serves these ports: a second sandbox started with the same config adopts this one.
            "sandbox": identity(self.config),
        }

    def start(self) -> None:
        control = self
        self.moto_faults.apply(Faults(), self.faults.current)  # the --fault switches the sandbox started with

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/network-path":
                    # Why the API Lambda does or does not reach DSQL (the health route only says "timeout", as
                    # AWS would). Apart from /faults, which a second sandbox reads with a short timeout to adopt.
                    return self._send(HTTPStatus.OK, control.moto_faults.network_path())
                if self.path != "/faults":
                    return self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
                self._send(HTTPStatus.OK, control.state())

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/faults":
                    return self._send(HTTPStatus.NOT_FOUND, {"error": "not found"})
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    if length > MAX_BODY:
                        raise FaultError("request too large")
                    changes = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(changes, dict):
                        raise FaultError("expected a JSON object of switches")
                    control.faults.update(changes)
                except (FaultError, ValueError) as exc:
                    return self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                self._send(HTTPStatus.OK, control.state())

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.config.host, self.config.control_port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="sandbox-control", daemon=True).start()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


def identity(config: SandboxConfig, pid: int | None = None) -> dict[str, Any]:
    """What makes two sandboxes the same one: where each part listens and which databases stand in."""
    return {
        "pid": os.getpid() if pid is None else pid,
        "moto_url": config.moto_url,
        "dsql_port": config.dsql_port,
        "health_port": config.health_port,
        "control_port": config.control_port,
        "postgres": f"{config.pg_host}:{config.pg_port}",
        "aurora_database": config.aurora_database,
        "dsql_database": config.dsql_database,
    }


class ControlError(Exception):
    pass


def get_state(control_url: str, timeout: float = 3) -> dict[str, Any]:
    """The running sandbox's faults and AWS endpoint; ControlError if it does not answer."""
    return _call("GET", control_url, None, timeout)


def set_faults(control_url: str, changes: dict[str, Any], timeout: float = 3) -> dict[str, Any]:
    return _call("POST", control_url, changes, timeout)


def get_network_path(control_url: str, timeout: float = 10) -> dict[str, Any]:
    """The API Lambda's network path to its DSQL cluster, as the running sandbox evaluates it now."""
    return _call("GET", control_url, None, timeout, path="/network-path")


def _call(
    method: str, control_url: str, body: dict[str, Any] | None, timeout: float, path: str = "/faults"
) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{control_url.rstrip('/')}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as exc:
        raw, status = exc.read(), exc.code
    except (urllib.error.URLError, OSError) as exc:
        raise ControlError(f"the sandbox does not answer at {control_url} ({type(exc).__name__})") from None
    try:
        payload = json.loads(raw)
    except ValueError:
        raise ControlError(f"the sandbox answered HTTP {status} without JSON") from None
    if status != 200:
        raise ControlError(payload.get("error") or f"HTTP {status}")
    return payload
