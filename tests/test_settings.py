import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from velaops import env

ROOT = Path(__file__).resolve().parent.parent


def run_manage(*args: str, **overrides: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY"}}
    environ.update(DJANGO_SETTINGS_MODULE="velaops.settings", **overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120
    )


def test_production_settings_pass_check_deploy_without_warnings():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY="k" * 20 + "A-very-long-random-production-secret-9f8e7d6c5b4a",
        ALLOWED_HOSTS="velaops.example.com",
        SECURE_SSL_REDIRECT="1",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_secret_key_is_required_when_debug_is_off():
    result = run_manage("check", DEBUG="0")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_a_malformed_boolean_stops_the_process():
    result = run_manage("check", DEBUG="maybe")
    assert result.returncode != 0
    assert "DEBUG='maybe' is not a boolean" in result.stderr


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("yes", True), ("off", False), ("", False), (None, True)])
def test_env_bool(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("FLAG", raising=False)
    else:
        monkeypatch.setenv("FLAG", raw)
    assert env.env_bool("FLAG", True) is expected


def test_env_int_rejects_text_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("N", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("N", 1)
    monkeypatch.setenv("N", "0")
    with pytest.raises(ImproperlyConfigured, match="at least 1"):
        env.env_int("N", 5, minimum=1)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("HOSTS", " a.example.com, ,b.example.com ")
    assert env.env_list("HOSTS") == ["a.example.com", "b.example.com"]


def test_database_url_must_be_postgres():
    result = run_manage("check", DEBUG="1", DATABASE_URL="sqlite:///tmp.db")
    assert result.returncode != 0
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr
