"""The suite on several pytest-xdist workers (`make test` runs `pytest -n`): each worker gets a PostgreSQL
server, a Redis key prefix and a range of sandbox ports of its own, before Django reads its settings.

A server per worker, not a database per worker: PostgreSQL's roles belong to the server, and the sandbox's
stand-ins create and drop the roles the production code names (vela_api, velaops_monitor), which two workers
on one server would take from each other. So a worker runs initdb into a temporary directory and a postmaster
on port 5432 of a loopback address of its own (127.0.0.2 and up: all of 127/8 is the loopback; the shared
server's 127.0.0.1 is never touched), trust auth, non-durable (a test database is thrown away), and points
DATABASE_URL at it. Django's test database, the sandbox's Aurora and DSQL stand-ins (SandboxConfig.from_env
reads the server from Django's settings) and every subprocess a test starts (Celery workers, manage.py)
follow from that. The port stays 5432, the templates' Aurora port, so a worker's sandbox says what AWS would
(the cluster, its secret and the security group rule derived from `Endpoint.Port`). The postmaster ends with
its worker: stopped and removed at the worker's exit, signalled by the kernel if the worker dies, and a
directory a killed worker left behind is removed by the next run.

With -n and no --dist, each module's tests run on one worker, and every worker's in collection order
(ModulesInOrder).

Where no server can be made (no initdb, root without a `postgres` user to run it, or 5432 taken on every
loopback address, as a server listening on 0.0.0.0 does), the suite runs in one process on DATABASE_URL, as
without -n, and the report header says why.

Loaded with `-p tests.parallel` (pyproject.toml's addopts): a conftest is read after pytest-django has read
the settings, too late to change DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from xdist.scheduler import LoadScheduling

DIRECTORY_PREFIX = "velaops-test-pg-"
PORT = 5432
SERVER_SETTINGS = {
    # A test database is thrown away: no durability (PostgreSQL's "Non-Durable Settings").
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
    # The whole suite's connections on one worker: Django, the sandbox's proxy, Celery workers, live servers.
    "max_connections": "200",
    "shared_buffers": "64MB",
}
# Ports a worker's sandbox is given (SANDBOX_PORT..+3 by default) are apart by this much per worker.
SANDBOX_PORTS_PER_WORKER = 4
SERIAL_REASON = pytest.StashKey[str]()
MODULES_IN_ORDER = pytest.StashKey[bool]()


def postgres_bindir() -> Path | None:
    """The newest installed server's binaries: Debian's /usr/lib/postgresql/<major>/bin, else initdb on PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def server_owner() -> pwd.struct_passwd | None:
    """Whom the server runs as: PostgreSQL refuses to run as root, so root hands it to the `postgres` user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return None


def free_addresses() -> list[str]:
    """Loopback addresses other than 127.0.0.1 whose port 5432 is free now, in a random order: workers of
    runs that overlap (two checkouts, two developers) try different ones first."""
    candidates = [f"127.0.0.{last}" for last in range(2, 255)]
    random.shuffle(candidates)
    free = []
    for address in candidates:
        with socket.socket() as sock:
            try:
                sock.bind((address, PORT))
            except OSError:
                continue
        free.append(address)
    return free


def why_no_private_server() -> str | None:
    if postgres_bindir() is None:
        return "no PostgreSQL server binaries (initdb) to give each worker a server"
    if os.geteuid() == 0 and server_owner() is None:
        return "running as root with no `postgres` user to run each worker's server"
    if not free_addresses():
        return f"port {PORT} is taken on every loopback address"
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_abandoned_directories() -> None:
    """Directories of workers that were killed (each name carries its worker's pid)."""
    for directory in Path(tempfile.gettempdir()).glob(f"{DIRECTORY_PREFIX}*"):
        match = re.match(rf"{DIRECTORY_PREFIX}(\d+)-", directory.name)
        if match and not _alive(int(match.group(1))):
            shutil.rmtree(directory, ignore_errors=True)


class PrivatePostgres:
    """initdb and a postmaster of this process's own, on port 5432 of a free loopback address."""

    def __init__(self) -> None:
        bindir = postgres_bindir()
        assert bindir is not None, why_no_private_server()
        self.bindir = bindir
        self.owner = server_owner()
        self.directory = Path(tempfile.mkdtemp(prefix=f"{DIRECTORY_PREFIX}{os.getpid()}-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.process: subprocess.Popen | None = None
        self.address = ""
        if self.owner:
            os.chown(self.directory, self.owner.pw_uid, self.owner.pw_gid)

    def _as_owner(self) -> None:
        """In the child, before exec: become the owner, and be sent SIGINT (a fast shutdown) when this
        process dies without stopping the server."""
        if self.owner:
            os.setgroups([])
            os.setgid(self.owner.pw_gid)
            os.setuid(self.owner.pw_uid)
        if sys.platform == "linux":  # after setuid, which clears it
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # PR_SET_PDEATHSIG

    def start(self) -> None:
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
        initdb += ["-E", "UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions"]
        result = subprocess.run(initdb, preexec_fn=self._as_owner, capture_output=True, text=True, check=False)  # noqa: PLW1509
        if result.returncode:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")
        for address in free_addresses()[:10]:  # another worker may bind an address first
            if self._listen(address):
                return
        raise RuntimeError(f"the worker's PostgreSQL did not start:\n{self.log.read_text()}")

    def _listen(self, address: str) -> bool:
        settings = {
            **SERVER_SETTINGS,
            "listen_addresses": address,
            "port": str(PORT),
            "unix_socket_directories": str(self.directory),
        }
        command = [str(self.bindir / "postgres"), "-D", str(self.data)]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(  # noqa: PLW1509  (no threads yet: pytest is still configuring)
                command, preexec_fn=self._as_owner, stdin=subprocess.DEVNULL, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection((address, PORT), timeout=1):
                if self._accepts(address):
                    self.address = address
                    return True
            time.sleep(0.1)
        log = self.log.read_text()
        self.stop()
        raise RuntimeError(f"the worker's PostgreSQL did not answer within 60 s:\n{log}")

    def _accepts(self, address: str) -> bool:
        import psycopg

        try:
            psycopg.connect(host=address, port=PORT, user="postgres", dbname="postgres", connect_timeout=2).close()
        except psycopg.OperationalError:  # still starting up
            return False
        return True

    def url(self, database: str) -> str:
        return f"postgres://postgres@{self.address}:{PORT}/{database}"

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # fast shutdown: ends the sessions still open
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def worker_number(worker: str) -> int:
    """gw0 -> 0: xdist names its workers gw<n>."""
    return int(worker.removeprefix("gw")) if worker.removeprefix("gw").isdigit() else 0


def isolate_worker(config: pytest.Config, worker: str) -> None:
    """This worker's own server, Redis prefix and sandbox ports, through the environment: the settings and
    the subprocesses tests start read them from there."""
    from dj_database_url import parse

    remove_abandoned_directories()
    server = PrivatePostgres()
    config.add_cleanup(server.stop)
    server.start()
    named = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/velaops"
    os.environ["DATABASE_URL"] = server.url(parse(named)["NAME"] or "velaops")
    # The controller's settings chose the run's prefix, which every worker inherited.
    prefix = os.environ.get("REDIS_KEY_PREFIX", "velaops-test:").rstrip(":")
    os.environ["REDIS_KEY_PREFIX"] = f"{prefix}-{worker}:"
    base = int(os.environ.get("SANDBOX_PORT") or 5000)
    os.environ["SANDBOX_PORT"] = str(base + SANDBOX_PORTS_PER_WORKER * worker_number(worker))


@pytest.hookimpl(wrapper=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser, args):
    # A wrapper runs before pytest-django's hook, which imports the settings.
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        isolate_worker(early_config, worker)
    return (yield)


class ModulesInOrder(LoadScheduling):
    """-n without --dist: tests go to the workers in collection order, so each worker runs its own in that
    order too (pytest-django's: rollback tests before the transactional ones, which empty the tables and the
    groups the migrations made); and each module goes to one worker, the one that took its first test, as
    a module's tests may count on the ones before them (test_iam_policy judges the calls its first tests
    recorded; test_probes_dsql's restore the stand-in table one of them changes). xdist's `load` splits
    modules; `loadfile` keeps them, but runs one module's transactional tests before another's rollback
    tests; `loadgroup` does not group under pytest 9.2 (pytest-xdist issue #1386)."""

    AHEAD = 2  # tests queued on a worker: xdist's worker runs a test once it knows the next one

    def __init__(self, config: pytest.Config, log=None) -> None:
        super().__init__(config, log)
        self.owner: dict[str, object] = {}  # module -> the worker running it
        self.modules: list[str] = []

    def schedule(self) -> None:
        assert self.collection_is_completed
        if self.collection is None:
            if not self._check_nodes_have_same_collection():
                self.log("**Different tests collected, aborting run**")
                return
            self.collection = next(iter(self.node2collection.values()))
            self.modules = [nodeid.split("::", 1)[0] for nodeid in self.collection]
            self.pending[:] = range(len(self.collection))
        for node in self.nodes:
            self.check_schedule(node)

    def check_schedule(self, node, duration: float = 0) -> None:
        if node.shutting_down:
            return
        queued = self.node2pending[node]
        taken = []
        for index in self.pending:
            if len(queued) + len(taken) >= self.AHEAD:
                break
            if self.owner.setdefault(self.modules[index], node) is node:
                taken.append(index)
        if taken:
            self.pending = [index for index in self.pending if index not in taken]
            queued.extend(taken)
            node.send_runtest_some(taken)
        if not any(self.owner.get(self.modules[index], node) is node for index in self.pending):
            node.shutdown()  # what is left belongs to other workers

    def remove_node(self, node) -> str | None:
        # A worker that died: its modules go to whichever worker takes their next test.
        self.owner = {module: owner for module, owner in self.owner.items() if owner is not node}
        return super().remove_node(node)


@pytest.hookimpl(wrapper=True)
def pytest_cmdline_main(config: pytest.Config):
    # Before xdist's hook, which turns -n into workers (with --dist load unless told otherwise).
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        reason = why_no_private_server()
        if reason:
            config.option.numprocesses = 0
            config.option.dist = "no"
            config.stash[SERIAL_REASON] = reason
        elif config.option.dist == "no":
            config.stash[MODULES_IN_ORDER] = True
    return (yield)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    return ModulesInOrder(config, log) if config.stash.get(MODULES_IN_ORDER, False) else None


def pytest_report_header(config: pytest.Config) -> str | None:
    reason = config.stash.get(SERIAL_REASON, None)
    return f"workers: none, one process on DATABASE_URL ({reason})" if reason else None
