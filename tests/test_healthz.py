import json

import pytest

from dashboard.redis_client import redis_client, redis_key
from dashboard.system.heartbeat import HEARTBEAT_KEY, record_worker_heartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_heartbeat():
    redis_client().delete(redis_key(HEARTBEAT_KEY))


def test_healthz_is_public_json_and_degraded_without_a_worker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["redis"] == {"ok": True}
    assert body["checks"]["worker"] == {"ok": False, "last_heartbeat_seconds_ago": None}


def test_healthz_is_ok_after_a_worker_heartbeat(client):
    record_worker_heartbeat()
    body = client.get("/healthz").json()
    assert body["status"] == "ok"
    assert body["checks"]["worker"]["ok"] is True
    assert body["checks"]["worker"]["last_heartbeat_seconds_ago"] < 5


def test_healthz_reports_down_with_503_when_redis_is_unreachable(client, settings, monkeypatch):
    import redis

    from dashboard.system import health

    monkeypatch.setattr(health, "redis_client", lambda: redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=1))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "down"
    assert body["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}


def test_healthz_reveals_no_configuration(client, settings):
    text = json.dumps(client.get("/healthz").json())
    for secret in (settings.SECRET_KEY, settings.DATABASES["default"]["HOST"], settings.REDIS_URL):
        assert secret not in text
