"""Health-history figures (issue #5) over the seeded year (bench/seed_history.py). WIP."""

from __future__ import annotations

import os
import sys

from . import seed_history
from .results import write_figures


def main(out: str) -> None:
    quick = os.environ.get("BENCH_QUICK") == "1"
    info = seed_history.ensure_seeded(quick, os.environ.get("BENCH_RESEED") == "1")
    write_figures(out, [], {"seed": info})


if __name__ == "__main__":
    main(sys.argv[1])
