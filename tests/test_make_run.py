"""`make run`'s process side: supervision of infra/Procfile.dev, and the check for PostgreSQL and Redis first.

The supervision tests run infra/supervise.py on a Procfile of small commands (the real one needs the
whole stack); the Redis outage uses a redis-server of its own on a free port, never the shared one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from infra.supervise import parse_procfile, supervisord_config
from tests.fixtures.aws import free_port

ROOT = Path(__file__).resolve().parent.parent

# A long-running command: listens on a port (to show it is freed) and records each start's pid. With a
# fourth argument it forks a worker that shares the listening socket, as gunicorn does.
SERVER = """
import os, socket, sys, time
name, port, pids = sys.argv[1], int(sys.argv[2]), sys.argv[3]
listener = socket.create_server(("127.0.0.1", port))
if len(sys.argv) > 4 and os.fork() == 0:
    with open(sys.argv[4], "a") as f:
        f.write(f"{os.getpid()}\\n")
    while True:
        time.sleep(1)
with open(pids, "a") as f:
    f.write(f"{os.getpid()}\\n")
print(f"{name} listening on {port}", flush=True)
while True:
    time.sleep(1)
"""

# A command that needs its broker: exits 1 when Redis does not answer, as a Celery process that lost it.
BROKER_CLIENT = """
import os, sys, time
import redis
port, pids = int(sys.argv[1]), sys.argv[2]
client = redis.Redis(port=port, socket_connect_timeout=1, socket_timeout=1)
try:
    client.ping()
except redis.RedisError as exc:
    sys.exit(f"no broker: {exc}")
with open(pids, "a") as f:
    f.write(f"{os.getpid()}\\n")
print("connected", flush=True)
while True:
    try:
        client.ping()
    except redis.RedisError as exc:
        sys.exit(f"lost the broker: {exc}")
    time.sleep(0.2)
"""


class Supervised:
    """`python -m infra.supervise PROCFILE` in a session of its own, its output collected by a thread."""

    def __init__(self, procfile: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "infra.supervise", str(procfile)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # like a terminal: the test's Ctrl-C is SIGINT to this process group
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.process.poll() is None, f"supervise exited while waiting for {what}:\n{self.output}"
            assert time.monotonic() < deadline, f"no {what} within {timeout}s:\n{self.output}"
            time.sleep(0.1)

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(timeout=40)

    def kill(self) -> None:
        """After a failure: a graceful stop first (the programs have process groups of their own)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def pids(path: Path) -> list[int]:
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except FileNotFoundError:
        return False
    return state != "Z"


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def write_procfile(tmp_path: Path, lines: dict[str, str]) -> Path:
    procfile = tmp_path / "Procfile"
    procfile.write_text("".join(f"{name}: {command}\n" for name, command in lines.items()))
    return procfile


def test_a_killed_process_is_restarted_and_the_others_keep_running_then_ctrl_c_stops_all(tmp_path):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    ports = {name: free_port() for name in ("web", "worker", "beat")}
    commands = {name: f"{sys.executable} {script} {name} {port} {tmp_path / name}.pids" for name, port in ports.items()}
    commands["web"] += f" {tmp_path / 'web-workers.pids'}"
    supervised = Supervised(write_procfile(tmp_path, commands))
    try:
        supervised.wait_for(lambda: all(pids(tmp_path / f"{name}.pids") for name in ports), "three processes")
        first = {name: pids(tmp_path / f"{name}.pids")[0] for name in ports}

        os.kill(first["worker"], signal.SIGKILL)  # under honcho, this ended web and beat too
        supervised.wait_for(lambda: len(pids(tmp_path / "worker.pids")) == 2, "the worker restarted")
        assert re.search(r"exited: worker \(exit status 137; not expected\)", supervised.output)
        assert "spawned: 'worker'" in supervised.output
        assert "worker | worker listening on" in supervised.output  # output labelled with the name
        assert alive(first["web"]) and alive(first["beat"])
        assert pids(tmp_path / "web.pids") == [first["web"]] and pids(tmp_path / "beat.pids") == [first["beat"]]

        # A server killed without its worker: the worker (still holding the port) is stopped before the
        # restart, which could not listen otherwise.
        (web_worker,) = pids(tmp_path / "web-workers.pids")
        os.kill(first["web"], signal.SIGKILL)
        supervised.wait_for(lambda: len(pids(tmp_path / "web.pids")) == 2, "web restarted on its port")
        assert not alive(web_worker)
        assert alive(first["beat"])

        assert supervised.ctrl_c() == 0
        every = [pid for name in ports for pid in pids(tmp_path / f"{name}.pids")]
        every += pids(tmp_path / "web-workers.pids")
        assert not [pid for pid in every if alive(pid)], supervised.output
        assert all(port_is_free(port) for port in ports.values())
    finally:
        supervised.kill()


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server for a private Redis")
def test_a_process_that_loses_redis_is_restarted_with_backoff_until_redis_is_back(tmp_path):
    port = free_port()

    def redis_server() -> subprocess.Popen:
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while port_is_free(port):
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)
        return server

    (tmp_path / "server.py").write_text(SERVER)
    (tmp_path / "client.py").write_text(BROKER_CLIENT)
    procfile = write_procfile(
        tmp_path,
        {
            "web": f"{sys.executable} {tmp_path / 'server.py'} web {free_port()} {tmp_path / 'web.pids'}",
            "worker": f"{sys.executable} {tmp_path / 'client.py'} {port} {tmp_path / 'worker.pids'}",
        },
    )
    redis = redis_server()
    supervised = Supervised(procfile)
    try:
        supervised.wait_for(lambda: pids(tmp_path / "worker.pids") and pids(tmp_path / "web.pids"), "both running")
        web = pids(tmp_path / "web.pids")[0]

        redis.terminate()  # the outage: only this test's own redis-server
        redis.wait(timeout=10)
        supervised.wait_for(lambda: "lost the broker" in supervised.output, "the worker losing Redis")
        # While Redis is away the worker keeps failing at startup: retried, each time a little later.
        supervised.wait_for(lambda: supervised.output.count("no broker") >= 2, "two retries", timeout=20)
        spawned = [line for line in supervised.lines if "spawned: 'worker'" in line]
        assert len(spawned) >= 3

        redis = redis_server()
        supervised.wait_for(lambda: len(pids(tmp_path / "worker.pids")) == 2, "the worker back on Redis", timeout=30)
        # Its pid is written before its "connected" line reaches supervisord's output: wait for that too.
        supervised.wait_for(lambda: supervised.output.count("worker | connected") == 2, "the second connect logged")
        assert pids(tmp_path / "web.pids") == [web] and alive(web)  # the outage did not touch web
        assert supervised.ctrl_c() == 0
    finally:
        supervised.kill()
        redis.terminate()
        redis.wait(timeout=10)


def test_the_configuration_keeps_the_procfile_commands_as_written(tmp_path):
    entries = parse_procfile(
        (ROOT / "infra" / "Procfile.dev").read_text() + "\n# a comment\nx: echo ${PORT:-8000} 100%\n"
    )
    assert [name for name, _ in entries] == ["web", "worker", "probes", "beat", "sandbox", "x"]
    config = supervisord_config(entries, tmp_path, ROOT)
    # supervisord expands %(...)s: a literal % is doubled, so celery's `probes@%h` reaches celery intact.
    assert "probes@%%h" in config and "100%%" in config
    for name, _ in entries:
        section = config.split(f"[program:{name}]")[1].split("\n\n")[0]
        assert "autorestart = true" in section and "stopasgroup = true" in section and "killasgroup = true" in section
    with pytest.raises(ValueError, match="not `name: command`"):
        parse_procfile("web gunicorn\n")


# --- PostgreSQL and Redis checked before anything starts ------------------------------------------


def ensure_services(database_url: str, redis_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.ensure_services"],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": database_url, "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_missing_postgres_and_redis_are_named_in_one_line(tmp_path):
    pg_port, redis_port = free_port(), free_port()
    result = ensure_services(f"postgres://postgres@127.0.0.1:{pg_port}/velaops", f"redis://127.0.0.1:{redis_port}/0")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert f"PostgreSQL (DATABASE_URL) at 127.0.0.1:{pg_port}" in line
    assert f"Redis (REDIS_URL) at 127.0.0.1:{redis_port}" in line
    assert "start them" in line and "docker compose up" in line


def test_only_what_is_missing_is_named():
    from django.conf import settings

    db = settings.DATABASES["default"]
    database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    redis_port = free_port()
    result = ensure_services(database_url, f"redis://127.0.0.1:{redis_port}/0")
    assert result.returncode == 1, result.stderr
    (line,) = result.stderr.splitlines()
    assert "PostgreSQL" not in line and f"Redis (REDIS_URL) at 127.0.0.1:{redis_port}" in line
    assert "start it," in line and "docker compose up" in line

    assert ensure_services(database_url, os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")).returncode == 0


def test_a_refused_login_is_one_line_too():
    from django.conf import settings

    db = settings.DATABASES["default"]
    result = ensure_services(
        f"postgres://no_such_role_h@{db['HOST']}:{db['PORT']}/velaops", os.environ.get("REDIS_URL", "redis://")
    )
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "refuses the login" in line and "no_such_role_h" in line and "Traceback" not in result.stderr


def test_make_run_checks_the_services_before_it_starts_anything():
    recipe = textwrap.dedent((ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]).splitlines()[1:]
    commands = [line.strip().lstrip("@") for line in recipe]
    assert commands[0] == "$(PY) -m infra.ensure_services"
    assert commands[-1] == "$(RUN_ENV) $(PY) -m infra.supervise infra/Procfile.dev"
