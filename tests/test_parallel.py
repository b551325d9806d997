"""tests/parallel.py: each xdist worker on a PostgreSQL server, Redis prefix and sandbox ports of its own, the
server gone with its worker, and one process on DATABASE_URL where no server can be made."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest
from django.conf import settings

from tests import parallel
from tests.fixtures.aws import free_port

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(parallel.why_no_private_server() is not None, reason="no PostgreSQL server binaries")


def connect(host: str, port: int = parallel.PORT) -> psycopg.Connection:
    return psycopg.connect(host=host, port=port, user="postgres", dbname="postgres", autocommit=True, connect_timeout=5)


def test_a_private_server_has_roles_of_its_own_and_leaves_nothing_behind():
    server = parallel.PrivatePostgres()
    try:
        server.start()
        with connect(server.address) as conn:
            conn.execute("CREATE ROLE velaops_parallel_probe")
            assert conn.execute("SHOW fsync").fetchone() == ("off",)
        database = settings.DATABASES["default"]
        assert server.address != database["HOST"]
        with connect(database["HOST"], int(database["PORT"])) as other:
            assert not other.execute("SELECT 1 FROM pg_roles WHERE rolname = 'velaops_parallel_probe'").fetchone()
    finally:
        server.stop()
    assert not server.directory.exists()
    with pytest.raises(psycopg.OperationalError):
        connect(server.address).close()


def test_a_directory_left_by_a_killed_worker_is_removed_and_a_live_ones_kept():
    ended = subprocess.Popen(["true"])
    ended.wait()
    gone = Path(tempfile.mkdtemp(prefix=f"{parallel.DIRECTORY_PREFIX}{ended.pid}-"))
    kept = Path(tempfile.mkdtemp(prefix=f"{parallel.DIRECTORY_PREFIX}{os.getpid()}-"))
    try:
        parallel.remove_abandoned_directories()
        assert not gone.exists() and kept.exists()
    finally:
        kept.rmdir()


class Config:
    def __init__(self):
        self.cleanups = []

    def add_cleanup(self, function):
        self.cleanups.append(function)


def test_a_worker_gets_its_server_prefix_and_ports_through_the_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://someone:secret@db.example:6543/velaops_mine")
    monkeypatch.setenv("REDIS_KEY_PREFIX", "velaops-test-run:")
    monkeypatch.setenv("SANDBOX_PORT", "6100")
    config = Config()
    try:
        parallel.isolate_worker(config, "gw2")
        url = os.environ["DATABASE_URL"]
        host = re.fullmatch(r"postgres://postgres@(127\.0\.0\.\d+):5432/velaops_mine", url).group(1)
        assert host != "127.0.0.1"
        with connect(host) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert os.environ["REDIS_KEY_PREFIX"] == "velaops-test-run-gw2:"
        assert os.environ["SANDBOX_PORT"] == str(6100 + 2 * parallel.SANDBOX_PORTS_PER_WORKER)
    finally:
        for cleanup in config.cleanups:
            cleanup()


PROBE = """
import json, os
from django.conf import settings

def test_probe():
    database = settings.DATABASES["default"]
    with open(os.environ["PROBE_OUT"], "a") as out:
        out.write(json.dumps([os.environ["PYTEST_XDIST_WORKER"], database["HOST"], settings.REDIS_KEY_PREFIX]) + "\\n")
"""


@pytest.mark.timeout(120)
def test_two_workers_never_share_a_server_or_a_prefix(tmp_path):
    (tmp_path / "test_probe_a.py").write_text(textwrap.dedent(PROBE))
    (tmp_path / "test_probe_b.py").write_text(textwrap.dedent(PROBE))
    out = tmp_path / "seen.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT)]
        + ["-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider", "-q", str(tmp_path)],
        cwd=ROOT,
        # As from a shell, even when this test runs on a worker itself or under the caller's PYTEST_ADDOPTS.
        env={
            name: value for name, value in os.environ.items() if not name.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))
        }
        | {"PROBE_OUT": str(out), "SANDBOX_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(worker for worker, _, _ in seen) == ["gw0", "gw1"]
    assert len({host for _, host, _ in seen}) == 2 and len({prefix for _, _, prefix in seen}) == 2
    assert settings.DATABASES["default"]["HOST"] not in {host for _, host, _ in seen}


def test_without_server_binaries_the_suite_runs_in_one_process(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setattr(parallel, "postgres_bindir", lambda: None)

    config = SimpleNamespace(option=SimpleNamespace(numprocesses=3, dist="load"), stash=pytest.Stash())
    hook = parallel.pytest_cmdline_main(config)
    next(hook)  # the part before xdist's hook
    assert (config.option.numprocesses, config.option.dist) == (0, "no")
    assert "no PostgreSQL server binaries" in parallel.pytest_report_header(config)


class Node:
    """What xdist's scheduler drives: a worker that is sent test indices and told to shut down."""

    def __init__(self, name: str) -> None:
        self.gateway = SimpleNamespace(id=name)
        self.shutting_down = False
        self.sent: list[int] = []

    def send_runtest_some(self, indices) -> None:
        self.sent.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True


def test_without_dist_a_module_runs_on_one_worker_and_each_worker_in_collection_order(monkeypatch):
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    chosen = SimpleNamespace(option=SimpleNamespace(numprocesses=3, dist="no"), stash=pytest.Stash())
    told = SimpleNamespace(option=SimpleNamespace(numprocesses=3, dist="loadfile"), stash=pytest.Stash())
    for config in (chosen, told):
        next(parallel.pytest_cmdline_main(config))
    assert parallel.pytest_xdist_make_scheduler(told, None) is None  # xdist's own loadfile
    config = SimpleNamespace(
        option=chosen.option, stash=chosen.stash, getvalue=lambda name: ["popen"] * 3, getoption=lambda name: None
    )
    scheduler = parallel.pytest_xdist_make_scheduler(config, None)
    assert isinstance(scheduler, parallel.ModulesInOrder)

    # As pytest-django orders them: a module's rollback tests early, its transactional ones later.
    collection = [f"tests/test_{name}.py::test_{n}" for n, name in enumerate("aabcdeabfgbh")]
    nodes = [Node(f"gw{n}") for n in range(3)]
    for node in nodes:
        scheduler.add_node(node)
        scheduler.add_node_collection(node, collection)
    scheduler.schedule()
    done: list[int] = []
    while len(done) < len(collection):  # each worker finishes its oldest test, in turn
        for node in nodes:
            if pending := [index for index in node.sent if index not in done]:
                done.append(pending[0])
                scheduler.mark_test_complete(node, pending[0])
    assert sorted(done) == list(range(len(collection))) and all(node.shutting_down for node in nodes)
    assert all(node.sent == sorted(node.sent) for node in nodes)
    for module in "ab":
        (holder,) = [node for node in nodes if any(f"test_{module}.py" in collection[i] for i in node.sent)]
        assert {i for i, nodeid in enumerate(collection) if f"test_{module}.py" in nodeid} <= set(holder.sent)
