"""The Vela API's health route, as the seed plans it, standing in for the Lambda runtime moto does not run.

`GET /health` and `GET /health/dsql` answer
    {"status": "ok" | "degraded" | "error",
     "dsql": {"connected": bool, "latencyMs": number | null, "clusterArn": str | null, "error"?: str}}
HTTP 200 for ok and degraded (no DSQL configured yet), 503 for error. Each request asks the sandbox's moto for
what a fresh execution environment of the API Lambda starts with (`lambda_identity.function_context`: its
environment variables and VPC configuration, its execution role's session), so repointing the Lambda at a new
cluster is what makes this route report it, and its token is signed as the role.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from infra.sandbox import lambda_identity, network, seed
from infra.sandbox.config import SandboxConfig
from infra.sandbox.dsql_token import presign
from infra.sandbox.faults import FaultSwitches

log = logging.getLogger(__name__)

FUNCTION_NAME = "vela-api"
DSQL_CONNECT_TIMEOUT = 5
# What psycopg says when connect_timeout passes with no answer: a dropped packet looks exactly like this.
CONNECT_TIMEOUT_ERROR = "connection timeout expired"
_CLUSTER_HOST = re.compile(r"^(?P<identifier>[a-z0-9]+)\.dsql\.[a-z0-9-]+\.on\.aws$")


class HealthRoute:
    def __init__(self, config: SandboxConfig, faults: FaultSwitches, function_name: str = FUNCTION_NAME) -> None:
        self.config, self.faults, self.function_name = config, faults, function_name
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # The network path is the sandbox reading its own EC2 state (as its seed does), not the Lambda calling AWS.
        observers = {service: seed._client(config, service) for service in ("ec2", "dsql")}
        self.network = network.CachedPath(observers.__getitem__)
        # How long a connection to an unreachable endpoint hangs before the handler gives up (its connect timeout).
        self.unreachable_wait_seconds: float = DSQL_CONNECT_TIMEOUT

    def start(self) -> None:
        route = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path.split("?")[0].rstrip("/") not in ("/health", "/health/dsql"):
                    return self._send(HTTPStatus.NOT_FOUND, {"message": "Not Found"})
                status, payload = route.answer()
                if status is not None:
                    self._send(status, payload)

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (e.g. the timeout fault): nothing to tell it

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health route: " + format, *args)

        self._server = ThreadingHTTPServer((self.config.host, self.config.health_port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-health-route", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()  # wakes requests held by the timeout fault
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def answer(self) -> tuple[int | None, dict[str, Any]]:
        faults = self.faults.current
        if faults.health_timeout:
            # Hold the request well past any client timeout; answer nothing if the sandbox stops meanwhile.
            if self._stopping.wait(self.config.health_timeout_seconds):
                return None, {}
        if faults.health_fail:
            return HTTPStatus.INTERNAL_SERVER_ERROR, {
                "status": "error",
                "dsql": {"connected": False, "latencyMs": None, "clusterArn": None, "error": "injected fault"},
            }
        dsql = self.check_dsql()
        if dsql.get("error"):
            return HTTPStatus.SERVICE_UNAVAILABLE, {"status": "error", "dsql": dsql}
        return HTTPStatus.OK, {"status": "ok" if dsql["connected"] else "degraded", "dsql": dsql}

    def check_dsql(self) -> dict[str, Any]:
        result: dict[str, Any] = {"connected": False, "latencyMs": None, "clusterArn": None}
        try:
            context = lambda_identity.function_context(self.config, self.function_name)
        except lambda_identity.FunctionNotFound:
            result["error"] = f"cannot read {self.function_name} configuration: ResourceNotFoundException"
            return result
        except Exception as exc:
            result["error"] = f"cannot read {self.function_name} configuration: {type(exc).__name__}"
            return result
        configuration = context.configuration
        variables = (configuration.get("Environment") or {}).get("Variables") or {}
        result["clusterArn"] = variables.get("DSQL_CLUSTER_ARN") or None
        endpoint = variables.get("DSQL_ENDPOINT")
        if not endpoint:
            return result  # not migrated yet: degraded, not an error
        # The DSQL check's time starts before the network path is checked: on AWS that path is the connection's
        # own (the packets through the endpoint), so the route's other work stays what it was before the repoint.
        started = time.perf_counter()
        if not self._reachable(configuration, endpoint):
            result["error"] = CONNECT_TIMEOUT_ERROR
            return result
        region = variables.get("DSQL_REGION") or variables.get("AWS_REGION") or self.config.region
        credentials = context.credentials
        if credentials is None:
            # The handler's SDK has nothing to sign with: its DSQL check fails with the service's reason.
            result["error"] = f"{self.function_name}: {context.credentials_error}"[:300]
            return result
        # Vela's handler logs in as DSQL_USER (its own database role), as admin where none is set.
        user = variables.get("DSQL_USER") or "admin"
        token = presign(
            endpoint,
            region,
            action="DbConnectAdmin" if user == "admin" else "DbConnect",
            access_key=credentials["AccessKeyId"],
            secret_key=credentials["SecretAccessKey"],
            session_token=credentials["SessionToken"],
        )
        try:
            # The real handler connects to ENDPOINT:5432 over TLS; the sandbox's DSQL endpoint is its proxy.
            with psycopg.connect(
                host=endpoint,
                hostaddr=self.config.host,
                port=self.config.dsql_port,
                dbname="postgres",
                user=user,
                password=token,
                sslmode="disable",
                connect_timeout=DSQL_CONNECT_TIMEOUT,
                application_name="vela-api-health",
            ) as conn:
                conn.execute("SELECT 1").fetchone()
        except psycopg.Error as exc:
            result["error"] = " ".join(str(exc).split())[:300] or type(exc).__name__
            return result
        result["connected"] = True
        result["latencyMs"] = round((time.perf_counter() - started) * 1000, 1)
        return result

    def _reachable(self, configuration: dict[str, Any], endpoint: str) -> bool:
        """Whether the real function's packets would reach the cluster; if not, hang as a dropped SYN does."""
        match = _CLUSTER_HOST.match(endpoint)
        if not match:
            return True  # not a DSQL host name: the login refuses it, as DSQL would
        try:
            verdict = self.network.verdict(configuration.get("VpcConfig"), match["identifier"])
        except Exception as exc:  # the sandbox could not read its EC2 state: no reason to invent a failure
            log.warning("health route: network path not checked (%s)", type(exc).__name__)
            return True
        if verdict.reachable:
            return True
        # The client sees only the timeout, as from AWS; the reason is for the rehearsing engineer (log, /faults).
        log.warning("health route: %s cannot reach %s: %s", self.function_name, endpoint, verdict.reason)
        self._stopping.wait(self.unreachable_wait_seconds)
        return False
