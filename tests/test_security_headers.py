"""The Content-Security-Policy header on every page, templates that satisfy it (nothing inline, no eval),
a stored report allowed exactly its own styles, and no Server header from gunicorn."""

import base64
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.urls import reverse

from dashboard.csp import inline_style_sources

ROOT = Path(__file__).resolve().parents[1]
POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "connect-src": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "object-src": "'none'",
}


def directives(header: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()}


@pytest.mark.django_db
def test_every_page_carries_the_policy(client, viewer, environment):
    responses = [client.get(reverse("login"))]
    client.force_login(viewer)
    responses += [
        client.get(reverse("environment-list")),
        client.get(environment.get_absolute_url()),
        client.get(reverse("health-overview", args=[environment.slug])),
        client.get(reverse("report-archive", args=[environment.slug])),
        client.get(reverse("alerts", args=[environment.slug])),
    ]
    for response in responses:
        assert response.status_code == 200, response
        assert directives(response["Content-Security-Policy"]) == POLICY


@pytest.mark.django_db
def test_a_refused_page_carries_it_too(client, outsider, environment):
    client.force_login(outsider)
    response = client.get(environment.get_absolute_url())
    assert response.status_code == 403 and "frame-ancestors 'none'" in response["Content-Security-Policy"]


# e-mails are read by mail clients (no CSP, no stylesheets); reports are stored self-contained (below).
STORED_DOCUMENTS = {"reports/body.html", "reports/document.html"}
TEMPLATE_DIRS = [ROOT / "templates", ROOT / "infra" / "sandbox" / "templates"]
TEMPLATES = [
    path
    for folder in TEMPLATE_DIRS
    for path in folder.rglob("*.html")
    if path.parts[-2] != "email" and str(path.relative_to(folder)) not in STORED_DOCUMENTS
]


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda path: "/".join(path.parts[-2:]))
def test_templates_have_nothing_inline_that_needs_unsafe_inline_or_eval(path):
    html = path.read_text()
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all("src=" in tag or 'type="application/json"' in tag for tag in scripts), scripts
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"\son[a-z]+=", html)  # event handler attributes
    assert not re.search(r"hx-on|hx-vals=.(js|javascript):|hx-trigger=\"[^\"]*\[", html)  # htmx would eval these
    # Django's {# #} comments are one line: a longer one is printed on the page.
    assert all("#}" in line for line in html.splitlines() if "{#" in line)


def test_htmx_runs_without_eval_or_its_injected_style():
    base = (ROOT / "templates" / "base.html").read_text()
    meta = re.search(r"<meta name=\"htmx-config\" content='([^']*)'>", base)
    assert json.loads(meta.group(1)) == {
        "allowEval": False,
        "includeIndicatorStyles": False,
        "attributesToSettle": ["class", "width", "height"],  # htmx's default has "style": setAttribute, refused
    }
    assert base.index('name="htmx-config"') < base.index("{% htmx_script %}")  # read when htmx loads


def sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_a_report_is_allowed_exactly_its_own_styles():
    html = (
        '<style>\n.vr h1 { color: red; }\n</style><p><span style="background:#1f9d55"></span></p>'
        '<col style="width:5%"/>'
    )
    assert inline_style_sources(html) == [
        sha256("\n.vr h1 { color: red; }\n"),
        "'unsafe-hashes'",
        *sorted([sha256("background:#1f9d55"), sha256("width:5%")]),
    ]
    # New reports carry no style attributes: no 'unsafe-hashes' at all.
    assert inline_style_sources("<style>.a{}</style><p class=a>x</p>") == [sha256(".a{}")]


@pytest.mark.django_db
def test_the_report_page_policy_adds_only_the_reports_style_hashes(client, viewer, environment):
    from datetime import UTC, datetime, timedelta

    from dashboard.periods import Period
    from dashboard.reports.generate import build_report, report_store

    start = datetime(2026, 11, 2, tzinfo=UTC)
    period = Period(start, start + timedelta(days=1), kind="daily")
    report = report_store(environment=environment, period=period, rendered=build_report(environment, period))
    assert not re.search(r"\sstyle=", report.html)  # new reports need no 'unsafe-hashes'
    client.force_login(viewer)
    page = directives(client.get(report.get_absolute_url())["Content-Security-Policy"])
    style = re.search(r"<style>(.*?)</style>", report.html, re.S).group(1)
    assert page["style-src"] == f"'self' {sha256(style)}"
    assert {k: v for k, v in page.items() if k != "style-src"} == {k: v for k, v in POLICY.items() if k != "style-src"}
    download = client.get(reverse("report-download", args=[environment.slug, report.pk, "html"]))
    styles = re.findall(r"<style>(.*?)</style>", download.content.decode(), re.S)
    assert len(styles) == 2  # the document's page rules and the report's own
    assert directives(download["Content-Security-Policy"])["style-src"] == " ".join(
        ["'self'", *sorted(sha256(text) for text in styles)]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_gunicorn_sends_no_server_header(tmp_path):
    """A real gunicorn with infra/gunicorn.conf.py serving a bare WSGI app."""
    (tmp_path / "bare_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'ok']\n"
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "infra/gunicorn.conf.py"), "--workers", "1",
         "--bind", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "bare_app:app"],
        env={**os.environ, "GUNICORN_WORKERS": "1"}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except requests.ConnectionError:
                assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert response.text == "ok"
        assert "Server" not in response.headers, response.headers
        assert "gunicorn" not in str(response.headers).lower()
    finally:
        server.terminate()
        server.wait(timeout=20)
