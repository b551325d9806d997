"""What a running step sees: its environment, AWS clients that log every call, earlier steps' outputs,
a log, and the cooperative cancel check."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dashboard.aws import boto3_session, client, describe_error
from dashboard.db import reconnecting
from dashboard.models import Attempt, AttemptLog, Environment, MigrationRun, Step


class StepFailed(Exception):
    """The step checked something and it is not as required; the message says what."""

    def __init__(self, message: str, data: dict | None = None):
        super().__init__(message)
        self.data = data or {}


class Cancelled(Exception):
    """The operator asked to cancel; raised between AWS calls."""


THROTTLING_CODES = {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}


class LoggedClient:
    """A boto3 client whose every call checks for cancellation first and logs its request id."""

    def __init__(self, ctx: StepContext, service: str, raw: Any):
        self._ctx, self._service, self._raw = ctx, service, raw

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._raw, name)
        if name.startswith(("generate_", "get_waiter", "get_paginator", "can_paginate")):
            return method

        def call(**kwargs: Any) -> Any:
            return self._ctx.call_aws(self._service, name, method, kwargs)

        return call


class StepContext:
    # Throttled calls are retried by botocore's standard mode first; these are extra, slower rounds.
    THROTTLE_RETRIES = 4

    def __init__(self, attempt: Attempt, cancel_event: threading.Event | None = None):
        self.attempt = attempt
        self.step: Step = attempt.step
        self.migration: MigrationRun = attempt.migration
        self.environment: Environment = self.migration.environment
        self._cancel_event = cancel_event or threading.Event()
        self._session: boto3.Session | None = None
        self._clients: dict[str, LoggedClient] = {}
        self.request_ids: list[str] = []

    # --- AWS -------------------------------------------------------------------------------------
    @property
    def session(self) -> boto3.Session:
        if self._session is None:
            self._session = boto3_session(self.environment)
        return self._session

    def aws(self, service: str) -> LoggedClient:
        if service not in self._clients:
            self._clients[service] = LoggedClient(self, service, client(self.environment, service, self.session))
        return self._clients[service]

    def call_aws(self, service: str, operation: str, method: Callable[..., Any], kwargs: dict) -> Any:
        for round_ in range(self.THROTTLE_RETRIES + 1):
            self.check_cancel()
            try:
                response = method(**kwargs)
            except ClientError as exc:
                exc.velaops_service = service  # lets the failure record name the refused IAM action
                error = describe_error(exc)
                self._remember(error.request_id)
                if error.code in THROTTLING_CODES and round_ < self.THROTTLE_RETRIES:
                    delay = 2 ** (round_ + 1)
                    self.log(
                        f"{service}.{operation} throttled; retrying in {delay} s", level="warning", data=error.as_dict()
                    )
                    self.sleep(delay)
                    continue
                raise
            request_id = (
                (response or {}).get("ResponseMetadata", {}).get("RequestId", "") if isinstance(response, dict) else ""
            )
            self._remember(request_id)
            self.log(f"{service}.{operation}", data={"request_id": request_id} if request_id else {})
            return response
        raise AssertionError("unreachable")

    def _remember(self, request_id: str) -> None:
        if request_id:
            self.request_ids.append(request_id)

    # --- flow ------------------------------------------------------------------------------------
    def check_cancel(self) -> None:
        if self._cancel_event.is_set():
            raise Cancelled("cancelled by operator")

    def sleep(self, seconds: float) -> None:
        """Wait, but wake at once if the attempt is cancelled."""
        if self._cancel_event.wait(seconds):
            raise Cancelled("cancelled by operator")

    def wait_for(
        self, what: str, check: Callable[[], tuple[bool, str]], *, timeout: float, interval: float = 2.0
    ) -> str:
        """Poll `check` (returning done, state) until done; logs each change of state; fails after `timeout`."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            done, state = check()
            if state != last:
                self.log(f"{what}: {state}")
                last = state
            if done:
                return state
            if time.monotonic() > deadline:
                raise StepFailed(f"Timed out after {timeout:.0f} s waiting for {what} (last state: {state}).")
            self.sleep(interval)

    # --- records ---------------------------------------------------------------------------------
    def log(self, message: str, *, level: str = "info", data: dict | None = None) -> None:
        reconnecting(
            lambda: AttemptLog.objects.create(attempt=self.attempt, level=level, message=message, data=data or {}),
            what=f"logging attempt {self.attempt.pk}",
        )

    def output_of(self, *step_keys: str) -> dict[str, Any]:
        """Outputs of an earlier step of this migration (its latest successful run): the first of `step_keys`
        this migration's runbook has (the direct and the change-set runbooks name some steps differently)."""
        for key in step_keys:
            step = self.migration.steps.filter(key=key).first()
            if step is not None:
                return step.outputs or {}
        return {}
