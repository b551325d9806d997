"""Exit codes (documented in docs/api.md, "CLI") and the one error the commands raise."""

from __future__ import annotations

OK = 0
ATTEMPT_FAILED = 1  # the attempt (or report) ended failed, cancelled, interrupted or not started
USAGE = 2  # bad arguments, or input the API rejected (400, 422): click's own usage errors exit 2 too
AUTH = 3  # no, invalid, expired or revoked token (401), or the token's user lacks the role (403)
NOT_FOUND = 4  # 404
REFUSED = 5  # refused by the runbook's rules or a conflict (409: already queued or running), idempotency mismatch
SERVER = 6  # the server failed (5xx) or could not be reached, after the retries

_BY_STATUS = {400: USAGE, 401: AUTH, 403: AUTH, 404: NOT_FOUND, 409: REFUSED, 422: USAGE}


class CliError(Exception):
    """Ends the command with `exit_code`; `message` is shown (never carries the token)."""

    def __init__(
        self,
        message: str,
        exit_code: int,
        code: str = "",
        fields: dict | None = None,
        status: int = 0,
        result: dict | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.exit_code, self.code, self.fields, self.status = (
            message,
            exit_code,
            code,
            fields or {},
            status,
        )
        self.result = result or {}  # what was done before the error (--json prints it beside the error)

    def as_json(self) -> dict:
        error = {"code": self.code or "cli_error", "message": self.message, "fields": self.fields}
        return {**self.result, "error": error}


def exit_code_for(status: int, code: str) -> int:
    if code == "idempotency_mismatch":
        return REFUSED
    if status >= 500:
        return SERVER
    return _BY_STATUS.get(status, USAGE if 400 <= status < 500 else SERVER)
