"""Every action the pages offer has an API operation, listed in the OpenAPI document.

The pages' actions are found, not listed by hand: Django's URL resolver is walked for dashboard's (non-API)
URL patterns whose views accept POST. Each must appear in PAGE_ACTIONS below, mapped to the operations that
do the same through the API (or to None with the reason it has none). A new page action without an API
operation fails here until it gets one.
"""

import inspect

from django.urls import URLPattern, URLResolver, get_resolver

from dashboard.api.app import api

# The page's URL name → the API's operationIds doing the same (each in the OpenAPI document).
PAGE_ACTIONS: dict[str, list[str] | None] = {
    "migration-start": ["migration_start"],
    "migration-abandon": ["migration_abandon"],
    # One page URL for every step action: run (also "Retry" / "Run again" on the page), rollback, skip, override.
    "step-action": ["step_run", "step_retry", "step_rollback", "step_skip", "step_override"],
    "approval-request": ["approval_request"],
    "approval-grant": ["approval_grant"],
    "attempt-cancel": ["attempt_cancel"],
    "bake-stop": ["attempt_bake_stop"],
    "target-pause": ["target_pause"],
    "target-resume": ["target_resume"],
    "readiness-check": ["readiness_check"],
    "report-generate": ["report_generate"],
    "report-schedule-new": ["schedule_create"],
    "report-schedule-edit": ["schedule_update"],
    "report-schedule-delete": ["schedule_delete"],
    "alert-settings": ["alert_settings_update"],
    "maintenance-add": ["window_create"],
    "maintenance-end": ["window_end"],
    # Tokens are made and revoked by their user on the token page, signed in: a token never mints another.
    "token-create": None,
    "token-revoke": None,
}


def _patterns(resolvers, prefix=""):
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            yield from _patterns(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _methods(view) -> set[str] | None:
    """The methods a view's require_http_methods (require_POST, require_GET) allows; None: any method."""
    while view is not None:
        closure = inspect.getclosurevars(view).nonlocals if inspect.isfunction(view) else {}
        if "request_method_list" in closure:
            return {m.upper() for m in closure["request_method_list"]}
        view = getattr(view, "__wrapped__", None)
    return None


def page_post_actions() -> dict[str, str]:
    found = {}
    for route, pattern in _patterns(get_resolver().url_patterns):
        module = getattr(pattern.callback, "__module__", "") or ""
        if not module.startswith("dashboard.") or module.startswith("dashboard.api"):
            continue
        methods = _methods(pattern.callback)
        if methods is None or "POST" in methods:
            found[pattern.name] = route
    return found


def test_the_walk_finds_the_pages_actions():
    # The walk itself must see through the decorators: GET-only pages are not actions, POST ones are.
    found = page_post_actions()
    assert "migration-start" in found and "maintenance-end" in found
    assert "environment-detail" not in found and "migration-detail" not in found


def test_every_page_action_has_an_api_operation():
    document = api.get_openapi_schema()
    operations = {
        op["operationId"]: method.upper()
        for item in document["paths"].values()
        for method, op in item.items()
        if isinstance(op, dict) and "operationId" in op
    }
    found = page_post_actions()
    unmapped = sorted(set(found) - set(PAGE_ACTIONS))
    assert not unmapped, f"page actions without an entry in PAGE_ACTIONS (give them an API operation): {unmapped}"
    stale = sorted(set(PAGE_ACTIONS) - set(found))
    assert not stale, f"PAGE_ACTIONS names pages that are gone: {stale}"
    for name, operation_ids in PAGE_ACTIONS.items():
        for operation_id in operation_ids or []:
            assert operation_id in operations, f"{name}: no operation {operation_id} in the OpenAPI document"
            assert operations[operation_id] in ("POST", "PUT", "DELETE"), f"{operation_id} is not a write"


def test_the_document_is_openapi_3_1_and_served(client, viewer):
    assert api.get_openapi_schema()["openapi"].startswith("3.1")
    assert client.get("/api/v1/openapi.json").status_code == 401  # behind authentication, like every page
    client.force_login(viewer)
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200 and served.json()["openapi"].startswith("3.1")
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200 and b"/static/ninja/swagger-ui-bundle.js" in docs.content  # served here, no CDN
