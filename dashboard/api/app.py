"""The NinjaAPI: its routers, its auth, its error shape, and its URLs (velaops/urls.py includes `urls`)."""

from __future__ import annotations

import functools

from django.http import HttpRequest
from django.urls import re_path
from django.views.decorators.csrf import csrf_exempt
from ninja import NinjaAPI

from dashboard.api import alerts, attempts, environments, errors, health, migrations, readiness, reports
from dashboard.api.auth import ApiAuth, docs_access

api = NinjaAPI(
    title="VelaOps API",
    version="1",
    description="The same actions and rules as VelaOps's pages, for pipelines and the `velaops` CLI (docs/api.md).",
    auth=ApiAuth(),
    urls_namespace="api",
    docs_decorator=docs_access,
)
errors.install(api)
for module in (environments, migrations, attempts, readiness, health, reports, alerts):
    api.add_router("", module.router)


@csrf_exempt  # it acts on nothing: a POST to an unknown path gets the 404, not the CSRF page
def _unknown(request: HttpRequest, rest: str = ""):
    return errors.error_response(404, "not_found", f"No API operation at {request.path}.")


def _json_not_allowed(view):
    """ninja answers a wrong method with a plain-text 405: give it the API's error shape, keeping Allow."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if response.status_code == 405 and not response.get("Content-Type", "").startswith("application/json"):
            allowed = response.get("Allow", "")
            response = errors.error_response(405, "method_not_allowed", f"{request.method} is not allowed here.")
            response["Allow"] = allowed
        return response

    return wrapper


def _urls():
    patterns, app_name, namespace = api.urls
    for pattern in patterns:
        if pattern.name == "api-root":
            # Kept, since ninja reverses it for the document's paths, but /api/v1/ itself answers the 404.
            pattern.callback = _unknown
        # Operations authenticate themselves (token or session, api.auth): LoginRequiredMiddleware's redirect
        # to the login page is for pages. The docs keep their own check (docs_access).
        pattern.callback = _json_not_allowed(pattern.callback)
        pattern.callback.login_required = False
    # Anything else under /api/v1/ is a 404 in the API's error shape, not Django's HTML page.
    _unknown.login_required = False
    patterns.append(re_path(r"^(?P<rest>[\s\S]*)\Z", _unknown))
    return patterns, app_name, namespace


urls = _urls()
