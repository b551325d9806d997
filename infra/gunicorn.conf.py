"""gunicorn settings shared by `make run` and the container image; override with GUNICORN_* env."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# Environment pages call AWS; give them room but never hang a worker forever.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 20
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# No `Server: gunicorn` header: what runs VelaOps is nobody's business outside. gunicorn has no setting for
# it, so the responses' default headers are filtered once here, in the master before workers fork.
from gunicorn.http import wsgi as _gunicorn_wsgi  # noqa: E402

_default_headers = _gunicorn_wsgi.Response.default_headers


def _default_headers_without_server(self) -> list[str]:
    return [line for line in _default_headers(self) if not line.lower().startswith("server:")]


if getattr(_gunicorn_wsgi.Response.default_headers, "__name__", "") != "_default_headers_without_server":
    _gunicorn_wsgi.Response.default_headers = _default_headers_without_server
