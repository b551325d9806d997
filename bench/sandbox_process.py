"""The sandbox in a process of its own for the probe benchmarks: its DSQL proxy and health route then use
a core of their own instead of sharing one interpreter (and its lock) with the bench's dispatcher.

    python -m bench.sandbox_process CONFIG_JSON

CONFIG_JSON holds infra.sandbox.config.SandboxConfig's fields. Prints "sandbox: ready" once serving,
stops (moto included) on SIGTERM.
"""

from __future__ import annotations

import json
import sys


def main(config_json: str) -> None:
    import django

    django.setup()
    from infra.sandbox.config import SandboxConfig
    from infra.sandbox.runner import Sandbox, run_forever

    config = SandboxConfig(**json.loads(config_json))
    run_forever(Sandbox(config), reset=True, out=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main(sys.argv[1])
