"""Run a Procfile's processes under supervisord (used by `make run`): one crashing is restarted, not fatal.

    python -m infra.supervise infra/Procfile.dev

honcho, which `make run` used before, stops every process as soon as one exits: a worker killed or a
beat that lost Redis for a few seconds ended the whole run. supervisord (the `supervisor` package, long
maintained and made for this) restarts each program on its own instead, logs every exit and spawn, and
retries one that keeps failing at startup with a growing delay (1 s, 2 s, 3 s, ...). Chosen over circus
(barely maintained) and over a restart loop of our own under honcho (hand-written supervision, and
honcho would still end everything if that loop died). This module only
turns the Procfile into its configuration: the Procfile stays the one list of processes (honcho's format,
and tests/test_compose.py checks what it names).

Each program runs in a process group of its own (`/bin/sh -c COMMAND`, so shell syntax such as
`${PORT:-8000}` keeps working). Ctrl-C reaches supervisord, which stops each group with SIGTERM, then
SIGKILL after `stopwaitsecs`, and exits when all are gone: no process left holding a port. Output goes
to this terminal, each line prefixed with its program's name as honcho did.

While it runs, `.venv/bin/supervisorctl -c <config> status|restart NAME` (the path is printed at start).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A program that exits within STARTSECS of being spawned counts as failing to start and is retried after
# a delay one second longer each time; STARTRETRIES of them in a row (hours of an outage) and it is given up.
STARTSECS = 3
STARTRETRIES = 200
# Longer than gunicorn's graceful_timeout (infra/gunicorn.conf.py); Celery's warm shutdown fits too.
STOPWAITSECS = 25
SHELL_OPERATORS = re.compile(r"[;&|()`\n]")


def parse_procfile(text: str) -> list[tuple[str, str]]:
    """(name, command) per `name: command` line, as honcho reads it; blank lines and # comments skipped."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip().replace("_", "").replace("-", "").isalnum() or not command.strip():
            raise ValueError(f"Procfile line {number} is not `name: command`: {line!r}")
        entries.append((name.strip(), command.strip()))
    return entries


def _value(text: str) -> str:
    # supervisord expands %(name)s in its configuration: a literal % (celery's `probes@%h`) is %%.
    return text.replace("%", "%%")


def supervisord_config(entries: list[tuple[str, str]], workdir: Path, directory: Path) -> str:
    prefixer = f"{shlex.quote(sys.executable)} -u -m infra.supervise --prefix"
    # The socket is the user's own (0700); the password is there because supervisord insists on one.
    user, password = "velaops", secrets.token_hex(16)
    sections = [
        "[supervisord]",
        "nodaemon = true",
        # Its own events (spawned, exited, gave up) to this terminal, opened like the programs' output
        # (append mode: when stdout is a file, neither writes over the other) rather than nodaemon's echo.
        "logfile = /dev/stdout",
        "logfile_maxbytes = 0",
        "silent = true",
        "loglevel = info",
        f"pidfile = {workdir / 'supervisord.pid'}",
        f"childlogdir = {workdir}",
        f"directory = {_value(str(directory))}",
        *(["user = root"] if os.geteuid() == 0 else []),  # as root on purpose (containers, CI): say so
        "",
        "[unix_http_server]",
        f"file = {workdir / 'supervisor.sock'}",
        "chmod = 0700",
        f"username = {user}",
        f"password = {password}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl = unix://{workdir / 'supervisor.sock'}",
        f"username = {user}",
        f"password = {password}",
        "",
    ]
    width = max(len(name) for name, _ in entries)
    for name, command in entries:
        # The prefixer reads the command's output and writes it labelled. The command stays in the
        # program's process group (the shell execs a simple command), so stopping the group stops both.
        # A single command replaces the shell (exec): its pid is the one to signal, and it dies with the prefixer.
        shell = command if SHELL_OPERATORS.search(command) else f"exec {command}"
        argv = f"{prefixer} {shlex.quote(name.ljust(width))} /bin/sh -c {shlex.quote(shell)}"
        sections += [
            f"[program:{name}]",
            f"command = {_value(argv)}",
            f"directory = {_value(str(directory))}",
            "autostart = true",
            "autorestart = true",
            f"startsecs = {STARTSECS}",
            f"startretries = {STARTRETRIES}",
            "stopsignal = TERM",
            f"stopwaitsecs = {STOPWAITSECS}",
            "stopasgroup = true",
            "killasgroup = true",
            "redirect_stderr = true",
            "stdout_logfile = /dev/stdout",
            "stdout_logfile_maxbytes = 0",
            "",
        ]
    return "\n".join(sections)


def prefix(label: str, argv: list[str]) -> int:
    """Run argv with its output labelled `label | line`; exit with its status (a signal: 128 + number)."""
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
    # supervisord signals the whole group: the command gets SIGTERM itself, and this process waits for it.
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    # Should supervisord itself be killed outright, stop the command rather than leave it running unsupervised.
    signal.signal(signal.SIGUSR1, lambda *_: os.killpg(os.getpgrp(), signal.SIGTERM))
    _set_parent_death_signal(signal.SIGUSR1)
    if os.getppid() == 1:
        os.killpg(os.getpgrp(), signal.SIGTERM)
    head = label.encode() + b" | "

    def relay() -> None:
        out = sys.stdout.buffer
        for line in iter(child.stdout.readline, b""):
            out.write(head + line if line.endswith(b"\n") else head + line + b"\n")
            out.flush()

    # The output in a thread: the command's own children may hold the pipe open after it died.
    reader = threading.Thread(target=relay, daemon=True)
    reader.start()
    code = child.wait()
    reader.join(timeout=1)
    _stop_leftovers()
    return 128 - code if code < 0 else code


def _group_members() -> list[int]:
    """The other processes of this process group (Linux's /proc): what the command left behind."""
    pgid, me, found = os.getpgrp(), os.getpid(), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and int(stat.parent.name) != me and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _stop_leftovers(grace: float = 5.0) -> None:
    """The command died but its children (gunicorn's or Celery's workers) may not have: stop them before
    supervisord starts the command again, or they would keep its port or its queue."""
    if not _group_members():
        return
    os.killpg(os.getpgrp(), signal.SIGTERM)  # this process ignores it
    deadline = time.monotonic() + grace
    while _group_members() and time.monotonic() < deadline:
        time.sleep(0.1)
    if _group_members():
        os.killpg(os.getpgrp(), signal.SIGKILL)  # this process too: supervisord restarts the program all the same


def _set_parent_death_signal(sig: int) -> None:
    # Linux only (prctl PR_SET_PDEATHSIG): the kernel sends sig when the parent process dies.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)
    except OSError:
        pass


def _die_with_parent() -> None:
    # Should this prefixer be killed on its own, the kernel stops the command too (no orphan on a port).
    _set_parent_death_signal(signal.SIGTERM)


def run(procfile: Path, directory: Path) -> int:
    entries = parse_procfile(procfile.read_text())
    if not entries:
        print(f"{procfile}: no processes", file=sys.stderr)
        return 2
    supervisord = Path(sys.executable).with_name("supervisord")
    if not supervisord.exists():
        print(f"{supervisord} is missing: install the requirements (make install)", file=sys.stderr)
        return 2
    # A directory per run: two `make run`s side by side each have their own socket and pid file.
    workdir = Path(tempfile.mkdtemp(prefix="velaops-run-"))
    try:
        config = workdir / "supervisord.conf"
        config.write_text(supervisord_config(entries, workdir, directory))
        print(f"supervisord: {', '.join(name for name, _ in entries)}; a process that exits is restarted", flush=True)
        print(f"supervisord: {supervisord.with_name('supervisorctl')} -c {config} status", flush=True)
        process = subprocess.Popen([str(supervisord), "--nodaemon", "--configuration", str(config)])
        # Ctrl-C reaches supervisord itself (same process group); SIGTERM to this process is passed on.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, lambda *_: process.send_signal(signal.SIGTERM))
        signal.signal(signal.SIGHUP, lambda *_: process.send_signal(signal.SIGTERM))
        while True:
            try:
                return process.wait()
            except InterruptedError:  # pragma: no cover (PEP 475 retries; kept for clarity)
                continue
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("procfile", nargs="?", type=Path, default=ROOT / "infra" / "Procfile.dev")
    parser.add_argument("--directory", type=Path, default=Path.cwd(), help="where the commands run")
    args = parser.parse_args(argv)
    if args.prefix:
        label, *command = args.prefix
        return prefix(label, command)
    return run(args.procfile, args.directory.resolve())


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
