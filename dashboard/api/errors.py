"""One error shape for every answer that is not a success:
{"error": {"code": "...", "message": "...", "fields": {"field": ["..."]}}}.

Every exception an operation can raise is mapped here (ninja's own validation errors, 404s, refusals of the
runbook's rules, permission denials); anything unexpected is logged and answered 500 in the same shape,
never with a traceback or an HTML page.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from ninja import Schema
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from dashboard.runbook.service import ActionRefused, NotQueued

log = logging.getLogger(__name__)


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] = {}


class Error(Schema):
    error: ErrorBody


class ApiError(Exception):
    """Raised by an operation (or the auth) to answer with `status` and the error shape."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


def error_response(status: int, code: str, message: str, fields: dict | None = None) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message, "fields": fields or {}}}, status=status)


# The documented error statuses of every operation (the OpenAPI document lists them all).
ERROR_STATUSES = (400, 401, 403, 404, 409, 422)


def responses(ok: dict) -> dict:
    """An operation's `response=`: its success schemas plus the error shape for every error status."""
    return {**ok, **dict.fromkeys(ERROR_STATUSES, Error)}


def _location(loc) -> str:
    # ninja's locations are ("body", "payload", "reason") / ("query", "limit"): the field is what follows.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "payload", "data")]
    return ".".join(parts) or "__all__"


def _validation(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    fields: dict[str, list[str]] = {}
    for error in exc.errors:
        fields.setdefault(_location(error.get("loc", ())), []).append(str(error.get("msg", "invalid")))
    return error_response(422, "validation", "The request is not valid: see the fields.", fields)


def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.code, exc.message, exc.fields)


def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    # get_object_or_404's message names the model's query; say plainly what was not found instead.
    message = str(exc) if str(exc) and "matches the given query" not in str(exc) else "Not found."
    return error_response(404, "not_found", message)


def _forbidden(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
    return error_response(403, "forbidden", str(exc) or "You may not do this.")


def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = error_response(401, "unauthenticated", "Authenticate with a Bearer API token or a session.")
    response["WWW-Authenticate"] = 'Bearer realm="velaops"'
    return response


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    code = {400: "bad_request", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "not_allowed"}
    return error_response(exc.status_code, code.get(exc.status_code, "error"), str(exc))


def _refused(request: HttpRequest, exc: ActionRefused) -> HttpResponse:
    # The runbook's rules said no (already queued or running, wrong state, confirmation, approval): the
    # same sentence the page shows.
    return error_response(409, "refused", str(exc))


def _not_queued(request: HttpRequest, exc: NotQueued) -> HttpResponse:
    # Recorded as not started, nothing ran: the task queue is away, not the request wrong.
    return error_response(503, "queue_unavailable", str(exc))


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    log.exception("API %s %s failed", request.method, request.path)
    return error_response(500, "internal", "VelaOps failed to answer this request; the error is logged.")


HANDLERS = {
    NinjaValidationError: _validation,
    ApiError: _api_error,
    NotQueued: _not_queued,
    ActionRefused: _refused,
    Http404: _not_found,
    PermissionDenied: _forbidden,
    AuthenticationError: _unauthenticated,
    HttpError: _http_error,
    Exception: _unexpected,
}


def to_response(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The answer to `exc`, as the API gives it (ninja's lookup: the nearest class in the exception's MRO)."""
    handler = next(HANDLERS[cls] for cls in type(exc).__mro__ if cls in HANDLERS)
    return handler(request, exc)


def install(api) -> None:
    for exc_class, handler in HANDLERS.items():
        api.add_exception_handler(exc_class, handler)


def bad_request(request, exception):
    """Django's own 400 (a Host header this server does not answer to, a malformed request), raised before any
    view: the error shape under /api/ (a client reads JSON), Django's page elsewhere (velaops/urls.py)."""
    from django.views import defaults

    if request.path.startswith("/api/"):
        return error_response(400, "bad_request", "The request is malformed (its Host header, or its form).")
    return defaults.bad_request(request, exception)
