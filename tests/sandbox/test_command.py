"""`manage.py sandbox`: the fault switches from a shell; a real start, seed, adoption by a second one and Ctrl-C."""

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from dashboard.models import Environment
from infra.sandbox import aurora_db, dsql_proxy
from infra.sandbox.config import SandboxConfig
from infra.sandbox.moto_server import is_answering
from tests.fixtures.aws import free_port


def test_set_fault_changes_the_running_sandbox(sandbox, capsys):
    call_command(
        "sandbox",
        "--set-fault",
        "health_fail=on",
        "--set-fault",
        "dsql_latency_ms=40",
        "--control-url",
        sandbox.config.control_url,
    )
    assert sandbox.faults.current.health_fail is True and sandbox.faults.current.dsql_latency_ms == 40
    call_command("sandbox", "--show-faults", "--control-url", sandbox.config.control_url)
    assert "health_fail = True" in capsys.readouterr().out


def test_unknown_fault_names_are_refused(sandbox):
    with pytest.raises(CommandError, match="unknown fault"):
        call_command("sandbox", "--set-fault", "disk_full=on", "--control-url", sandbox.config.control_url)


def test_no_sandbox_running_is_a_clear_error():
    with pytest.raises(CommandError, match="does not answer"):
        call_command("sandbox", "--show-faults", "--control-url", f"http://127.0.0.1:{free_port()}")


def read_until(process: subprocess.Popen, text: str, lines: list[str]) -> None:
    """Read the command's output into lines until a line contains text (or the process ends)."""
    for line in process.stdout:
        lines.append(line)
        if text in line:
            return
    raise AssertionError(f"{text!r} never printed:\n" + "".join(lines))


@pytest.mark.django_db(transaction=True)  # the command's own process writes the row: flush it afterwards
def test_the_command_starts_seeds_and_stops_on_ctrl_c():
    suffix = f"_cmd_{uuid.uuid4().hex[:8]}"
    ports = {
        name: str(free_port())
        for name in ("SANDBOX_PORT", "SANDBOX_DSQL_PORT", "SANDBOX_HEALTH_PORT", "SANDBOX_CONTROL_PORT")
    }
    db = settings.DATABASES["default"]
    env = (
        os.environ
        | ports
        | {
            "SANDBOX_DATABASE_SUFFIX": suffix,
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        }
    )

    def command(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "manage.py", "sandbox", *args],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    process = command("--reset", "--fault", "dsql_latency_ms=10")
    second = None
    lines, second_lines = [], []
    try:
        read_until(process, "sandbox: ready", lines)
        environment = Environment.objects.get(slug="sandbox")
        assert environment.aws_endpoint_url == f"http://127.0.0.1:{ports['SANDBOX_PORT']}"
        assert environment.dsql_database == f"vela_dsql_sandbox{suffix}"

        # A second one beside it (a second `make run`) adopts it instead of failing on the ports.
        second = command()
        read_until(second, "sandbox: ready", second_lines)
        adopted = f"sandbox: adopted the sandbox running as pid {process.pid}"
        assert any(" ".join(line.split()).startswith(adopted) for line in second_lines), "".join(second_lines)
        # When the first one stops, the adopter starts parts of its own on the same ports.
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0  # a clean stop: seconds, more on a loaded machine
        read_until(second, "starting this one's own", second_lines)
        read_until(second, "sandbox: ready", second_lines)
        assert is_answering(environment.aws_endpoint_url)

        second.send_signal(signal.SIGINT)
        assert second.wait(timeout=60) == 0
        assert not is_answering(environment.aws_endpoint_url)
    finally:
        for running in (process, second):
            if running is not None and running.poll() is None:
                running.kill()
        config = replace(
            SandboxConfig.from_env(db),
            aurora_database=f"vela_aurora_sandbox{suffix}",
            dsql_database=f"vela_dsql_sandbox{suffix}",
        )
        aurora_db.drop(config)
        dsql_proxy.drop_database(config)


@pytest.mark.django_db(transaction=True)
def test_the_command_stops_non_zero_when_its_moto_dies():
    """So that make run's supervisord starts the whole sandbox again (one without moto serves nothing)."""
    suffix = f"_cmd_{uuid.uuid4().hex[:8]}"
    moto_port = free_port()
    db = settings.DATABASES["default"]
    env = os.environ | {
        "SANDBOX_PORT": str(moto_port),
        "SANDBOX_DSQL_PORT": str(free_port()),
        "SANDBOX_HEALTH_PORT": str(free_port()),
        "SANDBOX_CONTROL_PORT": str(free_port()),
        "SANDBOX_DATABASE_SUFFIX": suffix,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "sandbox"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        read_until(process, "sandbox: ready", lines)
        (moto,) = [
            int(stat.parent.name)
            for stat in Path("/proc").glob("[0-9]*/stat")
            if stat.exists()
            and stat.read_text().rsplit(") ", 1)[1].split()[1] == str(process.pid)
            and b"infra.sandbox.cfn.server" in (stat.parent / "cmdline").read_bytes()
        ]
        os.kill(moto, signal.SIGKILL)
        assert process.wait(timeout=20) == 1
        assert "moto exited with code -9" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
        config = replace(
            SandboxConfig.from_env(db),
            aurora_database=f"vela_aurora_sandbox{suffix}",
            dsql_database=f"vela_dsql_sandbox{suffix}",
        )
        aurora_db.drop(config)
        dsql_proxy.drop_database(config)
