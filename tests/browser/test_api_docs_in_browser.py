"""The API's browsable docs (ninja's bundled Swagger UI, never a CDN) in Debian's Chromium: behind login, every
operation of the OpenAPI document listed, and no CSP violation (the page fixture fails on any)."""

import pytest

from dashboard.api.app import api
from tests.browser.screenshots import shot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_api_docs_render_under_the_csp(page, operator):
    document = api.get_openapi_schema()
    operations = sum(len(methods) for methods in document["paths"].values())
    page.goto("/api/v1/docs")
    assert "/login/" in page.url
    page.fill("input[name=username]", operator.username)
    page.fill("input[name=password]", f"pw-{operator.username}")
    page.click("button[type=submit]")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".swagger-ui .opblock").count() == operations
    assert page.locator(".opblock-summary-path", has_text="/bake-stop").count() == 1
    shot(page, "api-docs")
