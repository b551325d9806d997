"""The sandbox in a process of its own for the probe benchmarks: its DSQL proxy and health route then use
a core of their own instead of sharing one interpreter (and its lock) with the bench's dispatcher.

    python -m bench.sandbox_process CONFIG_JSON

CONFIG_JSON holds infra.sandbox.config.SandboxConfig's fields. Prints "sandbox: ready" once serving,
stops (moto included) on SIGTERM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict, replace


def bench_config(name: str):
    """The sandbox's config for a bench section (Django set up): free ports, its own databases
    (velaops_<name>_aurora/_dsql), clusters ACTIVE after 1 s, its environment `<name>-sandbox`."""
    from django.conf import settings

    from bench import http
    from infra.sandbox.config import SandboxConfig

    return replace(
        SandboxConfig.from_env(settings.DATABASES["default"]),
        moto_port=http.free_port(),
        dsql_port=http.free_port(),
        health_port=http.free_port(),
        control_port=http.free_port(),
        aurora_database=f"velaops_{name.replace('-', '_')}_aurora",
        dsql_database=f"velaops_{name.replace('-', '_')}_dsql",
        dsql_creating_seconds=1,
        environment_slug=f"{name}-sandbox",
    )


def start(url: str, config, redis_prefix: str) -> subprocess.Popen:
    """This module in a process of its own with `config`; returns once it serves."""
    from bench import http

    process = subprocess.Popen(
        [sys.executable, "-m", "bench.sandbox_process", json.dumps(asdict(config))],
        cwd=http.ROOT,
        env=http.app_environ(url, REDIS_KEY_PREFIX=redis_prefix),
        stdout=subprocess.PIPE,
        stderr=None if os.environ.get("BENCH_VERBOSE") else subprocess.DEVNULL,
        text=True,
    )
    for line in process.stdout:
        if "sandbox: ready" in line:
            # Keep reading what it prints, so that a full pipe never blocks it.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return process
    raise RuntimeError(f"the sandbox exited with {process.wait()}; BENCH_VERBOSE=1 shows why")


def main(config_json: str) -> None:
    import django

    django.setup()
    from infra.sandbox.config import SandboxConfig
    from infra.sandbox.runner import Sandbox, run_forever

    config = SandboxConfig(**json.loads(config_json))
    run_forever(Sandbox(config), reset=True, out=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main(sys.argv[1])
