"""The API over HTTP: bearer token, one Idempotency-Key per write reused across its retries, retries with backoff
on network errors, 5xx and a write whose earlier try the server is still handling, and every error turned into a
CliError with the API's code and message."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from velaops_cli import errors

API_PREFIX = "/api/v1"
RETRIES = 3  # after the first try: 4 tries in all, waiting 0.5, 1 and 2 s between them
BACKOFF_SECONDS = 0.5
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class Client:
    def __init__(
        self,
        url: str,
        token: str,
        *,
        retries: int = RETRIES,
        backoff: float = BACKOFF_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not url:
            raise errors.CliError("No server: set VELAOPS_URL or pass --url.", errors.USAGE, "no_url")
        if not token:
            raise errors.CliError("No token: set VELAOPS_TOKEN or pass --token.", errors.AUTH, "no_token")
        self.token = token
        self.retries, self.backoff, self.sleep = retries, backoff, sleep
        self.http = httpx.Client(
            base_url=url.rstrip("/") + API_PREFIX,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", "User-Agent": "velaops-cli"},
            timeout=TIMEOUT,
            transport=transport,
            follow_redirects=False,  # a redirect (to a login page) would drop the Authorization header anyway
        )

    def close(self) -> None:
        self.http.close()

    # --- the verbs ---------------------------------------------------------------------------------

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: dict | None = None) -> Any:
        return self.request("POST", path, json=body or {}).json()

    def download(self, path: str, **params: Any) -> httpx.Response:
        return self.request("GET", path, params=params)

    def request(self, method: str, path: str, *, json: Any = None, params: dict | None = None) -> httpx.Response:
        headers = {}
        if method != "GET":
            # One key for this write, the same on each retry: the server acts once however often it arrives.
            headers["Idempotency-Key"] = str(uuid.uuid4())
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self.http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:
                if last:
                    raise errors.CliError(
                        f"Could not reach {self.http.base_url}: {self.redact(describe_transport(exc))}",
                        errors.SERVER,
                        "network",
                    ) from None
            else:
                if not (response.status_code >= 500 or in_progress(response)) or last:
                    return self.check(response)
            self.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    # --- errors ------------------------------------------------------------------------------------

    def check(self, response: httpx.Response) -> httpx.Response:
        if response.is_success:
            return response
        code, message, fields = "", "", {}
        try:
            body = response.json()
            error = body.get("error") if isinstance(body, dict) else None
            if isinstance(error, dict):
                code, message = str(error.get("code") or ""), str(error.get("message") or "")
                fields = error.get("fields") or {}
        except ValueError:
            pass  # not JSON (a proxy's page): the status says enough
        if not message:
            message = f"HTTP {response.status_code} {response.reason_phrase} from {response.request.url.path}"
        if fields:
            message += "".join(f"\n  {name}: {'; '.join(map(str, problems))}" for name, problems in fields.items())
        raise errors.CliError(
            self.redact(message),
            errors.exit_code_for(response.status_code, code),
            code or f"http_{response.status_code}",
            fields,
            response.status_code,
        )

    def redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text


def describe_transport(exc: httpx.TransportError) -> str:
    return str(exc) or type(exc).__name__


def in_progress(response: httpx.Response) -> bool:
    """The server still handles an earlier try of this very write (same Idempotency-Key): wait for its answer."""
    if response.status_code != 409:
        return False
    try:
        return response.json()["error"]["code"] == "idempotency_in_progress"
    except (ValueError, KeyError, TypeError):
        return False
