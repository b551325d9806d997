"""No URL serves content to someone who is not logged in, except the login page and /healthz."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

PUBLIC = {"/login/", "/healthz", "/admin/login/"}
# Scrapers cannot follow a login redirect: these answer 401 with no content instead.
BEARER_TOKEN = {"/metrics"}
SAMPLE_VALUES = {"slug": "staging", "int": "1", "path": "x", "str": "x", "uuid": "00000000-0000-0000-0000-000000000001"}


def walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def concrete(route: str) -> str:
    """Turn a route or regex into a path with sample values for its parameters."""
    route = re.sub(r"<(?:(\w+):)?(\w+)>", lambda m: SAMPLE_VALUES.get(m.group(1) or "str", "1"), route)
    route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)  # admin's regex routes
    route = route.replace("^", "").replace("$", "").replace("\\", "")
    return "/" + route.lstrip("/")


ALL_PATHS = sorted({concrete(route) for route in walk(get_resolver().url_patterns)})


def test_the_walk_finds_the_app_and_admin_routes():
    assert "/" in ALL_PATHS and "/environments/staging/" in ALL_PATHS
    assert any(path.startswith("/admin/dashboard/environment/") for path in ALL_PATHS)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ALL_PATHS)
def test_anonymous_requests_get_no_content(client, environment, path):
    response = client.get(path)
    if path in PUBLIC:
        assert response.status_code in (200, 503)
        return
    if path in BEARER_TOKEN:
        assert response.status_code == 401 and b"velaops_" not in response.content
        return
    if path.startswith("/api/v1/") and path != "/api/v1/docs":
        # The JSON API answers 401 in its error shape, never a login redirect (docs/api.md).
        assert response.status_code in (401, 404, 405), f"{path} answered {response.status_code}"
        assert set(response.json()) == {"error"}
        return
    assert response.status_code in (301, 302, 404, 405), f"{path} answered {response.status_code}"
    if response.status_code in (301, 302):
        assert "login" in response["Location"], f"{path} redirected to {response['Location']}"
