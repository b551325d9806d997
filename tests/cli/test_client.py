"""The CLI's HTTP client against a small real HTTP server that answers as told: retries and their Idempotency-Key,
the error shape turned into exit codes, and the token kept out of every message."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from velaops_cli import errors
from velaops_cli.client import Client
from velaops_cli.follow import describe, follow_log
from velaops_cli.output import log_line, table
from velaops_cli.pipeline import confirmation_for, next_step

TOKEN = "velaops_unit-test-secret-token"


class Scripted(BaseHTTPRequestHandler):
    """Answers each request with the next (status, body) of the server's script and records what came."""

    def do_GET(self):
        self.answer()

    def do_POST(self):
        self.answer()

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append((self.command, self.path, dict(self.headers), body))
        status, payload = self.server.script.pop(0) if self.server.script else (200, {})
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if not isinstance(payload, str) else "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    httpd.script, httpd.seen = [], []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client_of(server, **kwargs) -> Client:
    return Client(f"http://127.0.0.1:{server.server_address[1]}", TOKEN, sleep=lambda s: None, **kwargs)


def test_a_write_retried_after_5xx_sends_the_same_idempotency_key_and_the_bearer_token(server):
    server.script = [
        (502, "<html>bad gateway</html>"),
        (503, {"error": {"code": "x", "message": "busy"}}),
        (201, {"id": 7}),
    ]
    assert client_of(server).post("/environments/sandbox/migrations") == {"id": 7}
    keys = [headers["Idempotency-Key"] for _, _, headers, _ in server.seen]
    assert len(keys) == 3 and len(set(keys)) == 1 and len(keys[0]) == 36  # one uuid4 for the three tries
    assert {h["Authorization"] for _, _, h, _ in server.seen} == {f"Bearer {TOKEN}"}
    assert server.seen[0][1] == "/api/v1/environments/sandbox/migrations"


def test_a_retry_that_finds_its_first_try_still_in_progress_waits_for_its_answer(server):
    busy = {"error": {"code": "idempotency_in_progress", "message": "A request with this key is in progress; retry."}}
    server.script = [(504, "gateway timeout"), (409, busy), (202, {"id": 3, "status": "queued"})]
    assert client_of(server).post("/migrations/1/steps/readiness/run") == {"id": 3, "status": "queued"}
    assert len({headers["Idempotency-Key"] for _, _, headers, _ in server.seen}) == 1


def test_each_write_has_its_own_key_and_reads_have_none(server):
    server.script = [(200, {}), (200, {}), (200, {})]
    client = client_of(server)
    client.post("/attempts/1/cancel")
    client.post("/attempts/1/cancel")
    client.get("/environments")
    first, second, read = (headers for _, _, headers, _ in server.seen)
    assert first["Idempotency-Key"] != second["Idempotency-Key"]
    assert "Idempotency-Key" not in read


def test_5xx_after_the_retries_exits_6(server):
    server.script = [(500, "oops")] * 4
    with pytest.raises(errors.CliError) as caught:
        client_of(server).get("/environments")
    assert caught.value.exit_code == errors.SERVER and len(server.seen) == 4


def test_an_unreachable_server_exits_6_after_retrying():
    slept = []
    client = Client("http://127.0.0.1:9", TOKEN, sleep=slept.append)  # the discard port: nothing listens
    with pytest.raises(errors.CliError) as caught:
        client.get("/environments")
    assert caught.value.exit_code == errors.SERVER
    assert slept == [0.5, 1.0, 2.0]  # backoff between the four tries
    assert TOKEN not in caught.value.message


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [
        (400, "bad_request", errors.USAGE),
        (401, "unauthenticated", errors.AUTH),
        (403, "forbidden", errors.AUTH),
        (404, "not_found", errors.NOT_FOUND),
        (409, "refused", errors.REFUSED),
        (422, "validation", errors.USAGE),
        (422, "idempotency_mismatch", errors.REFUSED),
    ],
)
def test_the_error_shape_becomes_message_and_exit_code(server, status, code, exit_code):
    server.script = [(status, {"error": {"code": code, "message": "Not now.", "fields": {"reason": ["Say why."]}}})]
    with pytest.raises(errors.CliError) as caught:
        client_of(server).post("/migrations/1/abandon", {"reason": ""})
    error = caught.value
    assert (error.exit_code, error.code, error.status) == (exit_code, code, status)
    assert error.message == "Not now.\n  reason: Say why."
    assert len(server.seen) == 1  # 4xx is not retried


def test_an_error_page_that_is_not_json_still_says_what_happened(server):
    server.script = [(404, "<html>Not Found</html>")]
    with pytest.raises(errors.CliError) as caught:
        client_of(server).get("/nowhere")
    assert caught.value.exit_code == errors.NOT_FOUND
    assert caught.value.message == "HTTP 404 Not Found from /api/v1/nowhere"


def test_a_token_echoed_by_a_server_is_redacted(server):
    server.script = [(401, {"error": {"code": "unauthenticated", "message": f"token {TOKEN} is revoked"}})]
    with pytest.raises(errors.CliError) as caught:
        client_of(server).get("/environments")
    assert TOKEN not in caught.value.message and "token *** is revoked" == caught.value.message


def test_no_url_or_no_token_is_said_plainly():
    with pytest.raises(errors.CliError, match="VELAOPS_URL") as no_url:
        Client("", TOKEN)
    with pytest.raises(errors.CliError, match="VELAOPS_TOKEN") as no_token:
        Client("http://127.0.0.1:1", "")
    assert (no_url.value.exit_code, no_token.value.exit_code) == (errors.USAGE, errors.AUTH)


def test_following_reads_on_by_the_cursor_until_finished(server):
    line = {"at": "2026-12-02T07:00:01.5+00:00", "level": "info", "message": "one"}
    server.script = [
        (200, {"lines": [{**line, "seq": 1}], "cursor": 1, "finished": False, "status": "running"}),
        (200, {"lines": [], "cursor": 1, "finished": False, "status": "running"}),
        (200, {"lines": [{**line, "seq": 2, "message": "two"}], "cursor": 2, "finished": True, "status": "failed"}),
        (200, {"id": 3, "status": "failed", "step_key": "verify_dsql", "number": 1, "error": {"message": "refused"}}),
    ]
    seen = []
    attempt = follow_log(client_of(server), 3, seen.append, sleep=lambda s: None)
    assert [s["message"] for s in seen] == ["one", "two"]
    paths = [path for _, path, _, _ in server.seen]
    assert paths == [
        "/api/v1/attempts/3/log?limit=500",
        "/api/v1/attempts/3/log?after=1&limit=500",
        "/api/v1/attempts/3/log?after=1&limit=500",
        "/api/v1/attempts/3",
    ]
    assert describe(attempt) == "Attempt 3 (run of verify_dsql, #1): failed: refused"
    assert log_line(seen[0]) == "07:00:01 info    one"


def step(key, position, state="pending", **run):
    offer = {"allowed": True, "refusal": None, "destructive": False, "confirm": None, "needs_approval": False, **run}
    return {"key": key, "position": position, "title": key.title(), "state": state, "actions": {"run": offer}}


def test_the_pipeline_runs_the_first_step_not_done_and_types_only_a_given_name():
    migration = {"id": 4, "steps": [step("b", 2), step("a", 1, "succeeded"), step("c", 3, "skipped")]}
    assert next_step(migration)["key"] == "b"
    assert next_step({"steps": [step("a", 1, "skipped")]}) is None
    assert next_step({"steps": [step("a", 1, "failed")]})["key"] == "a"  # a failed step is retried

    destructive = step("decommission", 9, destructive=True, confirm="vela-aurora")
    assert confirmation_for(migration, destructive, ["vela-aurora"]) == "vela-aurora"
    with pytest.raises(errors.CliError, match="--confirm vela-aurora") as unconfirmed:
        confirmation_for(migration, destructive, ["DatabaseStack"])
    assert unconfirmed.value.exit_code == errors.REFUSED
    with pytest.raises(errors.CliError, match="velaops approval request 4 decommission"):
        confirmation_for(migration, step("decommission", 9, allowed=False, needs_approval=True), [])
    with pytest.raises(errors.CliError, match="Roll back the later steps first"):
        confirmation_for(migration, step("x", 1, allowed=False, refusal="Roll back the later steps first."), [])
    assert confirmation_for(migration, step("x", 1), []) == ""


def test_tables_line_up_and_say_dash_for_nothing():
    assert table([("sandbox", None, True), ("staging-1", 12, False)], ["slug", "open", "ok"]) == [
        "SLUG       OPEN  OK",
        "sandbox    -     yes",
        "staging-1  12    no",
    ]
