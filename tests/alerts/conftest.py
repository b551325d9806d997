import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from dashboard.models import AlertSettings, ProbeKind, Target
from tests.reports.history import make_environment


class Receiver:
    """A local webhook receiver: records every JSON POST; answers the statuses queued in `answers`, then 200."""

    def __init__(self):
        self.posts: list[dict] = []
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answers.pop(0) if receiver.answers else 200
                if status == 200:
                    receiver.posts.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"try later")

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret-token-xyz"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    with Receiver() as running:
        yield running


@pytest.fixture
def alerting(db, receiver):
    environment = make_environment("alerting")
    AlertSettings.objects.create(
        environment=environment, emails=["oncall@example.com"], webhook_url=receiver.url, resend_minutes=30
    )
    target = Target.objects.create(environment=environment, kind=ProbeKind.DSQL, name="vela-dsql", down_after=2)
    return environment, target
