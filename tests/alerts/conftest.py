import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from dashboard.models import AlertSettings, ProbeKind, Target
from tests.alerts.helpers import make_environment


class Receiver:
    """A local webhook receiver: records every JSON POST; answers the statuses queued in `answers`, then 200
    (a redirect to `location`, the error answers with `body`)."""

    def __init__(self, host: str = "127.0.0.1"):
        self.posts: list[dict] = []
        self.answers: list[int] = []
        self.location = "/"
        self.body = b"try later"
        self.host_headers: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.host_headers.append(self.headers["Host"])
                if status == 200:
                    receiver.posts.append(json.loads(body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else receiver.body)

            def log_message(self, *args):
                pass

        self.server = HTTPServer((host, 0), Handler)
        self.url = f"http://{host}:{self.server.server_port}/services/T000/B000/secret-token-xyz"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings, monkeypatch):
    # Webhooks reach public addresses only: the receiver's loopback address is allow-listed explicitly,
    # for this process and for the workers it starts.
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    monkeypatch.setenv("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")
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
