"""Debian's Chromium driven by Playwright (never a downloaded browser), shared by the browser tests."""

import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


# One Chromium for the browser tests (each test still gets a context of its own), stopped after the last of
# them: the async-unsafe switch below must not outlive this package.
@pytest.fixture(scope="package")
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("VELAOPS_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; the ORM calls the test makes are still
    # plain synchronous calls, so Django's async-safety guard does not apply.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield chromium
            chromium.close()
    finally:
        del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]  # later subprocesses (check --deploy) must not inherit it


# Runs before any page script, outside the page's CSP: every violation becomes a console error.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") +
    " at " + e.sourceFile + ":" + e.lineNumber + " " + (e.sample || ""));
});
"""


@pytest.fixture
def page(browser, live_server):
    """A page whose console errors (CSP violations included, htmx's errors too) and uncaught exceptions fail
    the test: every page a browser test visits must satisfy the Content-Security-Policy."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.add_init_script(REPORT_CSP_VIOLATIONS)

    def on_console(message) -> None:
        # The browser asks every site for /favicon.ico, which VelaOps has none of: not a page's error.
        if message.type == "error" and not message.location.get("url", "").endswith("/favicon.ico"):
            problems.append(f"{page.url}: {message.text}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: problems.append(f"{page.url}: uncaught {error}"))
    page.csp_problems = problems
    yield page
    context.close()
    assert not problems, "console errors or CSP violations:\n" + "\n".join(problems)
