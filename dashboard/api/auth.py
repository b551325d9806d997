"""Who is asking: a personal API token (Authorization: Bearer velaops_…) or the browser's session.

A token acts as its user, with the user's roles and nothing more: request.user becomes that user, so the
access helpers and services decide exactly as they do for the pages. A token request carries no cookie
the browser would send on its own, so it needs no CSRF token; a session request's writes do, as the
pages' forms do (Django's CSRF check, run here because ninja's views are CSRF-exempt)."""

from __future__ import annotations

import functools

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest
from ninja.security import HttpBearer
from ninja.utils import check_csrf

from dashboard.api.errors import ApiError, error_response
from dashboard.tokens import service as tokens

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def bearer_token(request: HttpRequest) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "invalid_token", "Send the API token as “Authorization: Bearer <token>”.")
    return value.strip()


def authenticate_request(request: HttpRequest):
    """The user of the token or session, set as request.user; raises ApiError (401/403) otherwise."""
    clear = bearer_token(request)
    if clear is not None:
        try:
            token = tokens.authenticate(clear)
        except tokens.TokenRefused as refused:
            raise ApiError(401, refused.code, str(refused)) from None
        request.user = token.user
        request.api_token = token
        return token.user
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None  # ninja answers 401 (errors._unauthenticated)
    if request.method not in SAFE_METHODS and check_csrf(request) is not None:
        raise ApiError(403, "csrf_failed", "A session's writes need the CSRF token (X-CSRFToken header).")
    return user


class ApiAuth(HttpBearer):
    """Documented in OpenAPI as HTTP bearer; also accepts the session (see the module's docstring)."""

    def __call__(self, request: HttpRequest):
        return authenticate_request(request)

    def authenticate(self, request: HttpRequest, token: str):  # pragma: no cover - __call__ does it all
        return None


def docs_access(view):
    """The OpenAPI document and the browsable docs: for a signed-in browser or a token, like the rest."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            user = authenticate_request(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message)
        if user is None:
            if request.path.endswith(".json"):
                return error_response(401, "unauthenticated", "Authenticate with a Bearer API token or a session.")
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper
