"""The health overview in Chromium (issue #18): from navigation until all of its rows are drawn, cold and warm.

Debian's Chromium (/usr/bin/chromium, never a downloaded browser) driven by Playwright, against the history
section's gunicorn and seed. A run is a navigation to `environments/<slug>/health/`; it ends at the first
animation frame after the load event (the HTML parsed, the styles applied, the page's scripts run) once every
target's row is in the document, measured in the page from the navigation's start (performance.timeOrigin).

- cold: a new browser context for each run (empty HTTP cache, no compiled scripts), logged in by cookie;
- warm: the same page navigated to again in one context, static files from its cache, as a user reopening it;
- scroll_to_end (no goal): from the drawn page to the frame that shows its last row. Rows off screen skip their
  rendering until scrolled near (static/velaops/health.css, content-visibility), so this is what they cost.

Called by bench/health_history.py while its server runs: `figures(base, session, slug, targets)`.
"""

from __future__ import annotations

import os
import shutil
import statistics

import requests

from bench.results import Figure

CHROMIUM = "/usr/bin/chromium"
# As tests/browser/conftest.py launches it: no sandbox (root in a container), nothing phoning home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUNS = 3 if os.environ.get("BENCH_QUICK") == "1" else 7
VIEWPORT = {"width": 1400, "height": 1000}

# Resolves with the time (ms since the navigation started) of the first frame after load with every row drawn.
DRAWN = """
(rows) => new Promise((resolve) => {
  function frame() {
    requestAnimationFrame(() => requestAnimationFrame(() => {
      if (document.querySelectorAll("tr[id^='target-']").length >= rows) { resolve(performance.now()); }
      else { setTimeout(frame, 10); }
    }));
  }
  if (document.readyState === "complete") { frame(); } else { window.addEventListener("load", frame); }
})
"""

# After the page is drawn: scroll to its end, and the time (ms) until a frame shows the last row.
SCROLL_TO_END = """
() => new Promise((resolve) => {
  const started = performance.now();
  const rows = document.querySelectorAll("tr[id^='target-']");
  rows[rows.length - 1].scrollIntoView();
  requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - started)));
})
"""


def figures(base: str, session: requests.Session, slug: str, rows: int) -> list[Figure]:
    names = (f"overview_browser_ms_{rows}_rows_cold", f"overview_browser_ms_{rows}_rows_warm")
    if not shutil.which(CHROMIUM):
        note = f"{CHROMIUM} is missing (apt-get install chromium)"
        return [Figure(name, None, "ms", note) for name in names]
    from playwright.sync_api import sync_playwright

    url = f"{base}/environments/{slug}/health/"
    cookies = [{"name": c.name, "value": c.value, "url": base} for c in session.cookies]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            cold, warm = [], []
            _context_run(browser, cookies, url, rows, [])  # Chromium's own first start: not the page's
            for _ in range(RUNS):
                _context_run(browser, cookies, url, rows, cold)
            context = _context(browser, cookies)
            page = context.new_page()
            _navigate(page, url, rows)  # fills the cache
            scrolls = []
            for _ in range(RUNS):
                warm.append(_navigate(page, url, rows))
                scrolls.append(float(page.evaluate(SCROLL_TO_END)))
            context.close()
        finally:
            browser.close()
    return [
        Figure(
            names[0],
            round(statistics.median(cold), 1),
            "ms",
            f"Chromium, a new context each time (empty cache), navigation to all {rows} rows drawn after load; "
            f"median of {RUNS}, min {min(cold):.0f}, max {max(cold):.0f}",
        ),
        Figure(
            names[1],
            round(statistics.median(warm), 1),
            "ms",
            f"the same page again in one context (static files cached); median of {RUNS}, "
            f"min {min(warm):.0f}, max {max(warm):.0f}",
        ),
        Figure(
            f"overview_browser_ms_{rows}_rows_scroll_to_end",
            round(statistics.median(scrolls), 1),
            "ms",
            f"once drawn, to the frame showing the last row (rows off screen are rendered as they come near: "
            f"content-visibility); median of {RUNS}",
        ),
    ]


def _context(browser, cookies):
    # The TLS proxy in front of gunicorn, pretended as the other page figures do.
    context = browser.new_context(viewport=VIEWPORT, extra_http_headers={"X-Forwarded-Proto": "https"})
    context.add_cookies(cookies)
    return context


def _context_run(browser, cookies, url: str, rows: int, into: list[float]) -> None:
    context = _context(browser, cookies)
    try:
        into.append(_navigate(context.new_page(), url, rows))
    finally:
        context.close()


def _navigate(page, url: str, rows: int) -> float:
    response = page.goto(url, wait_until="commit", timeout=60_000)
    assert response is not None and response.status == 200, (url, response and response.status)
    return float(page.evaluate(DRAWN, rows))
