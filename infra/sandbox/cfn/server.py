"""`python -m infra.sandbox.cfn.server -H HOST -p PORT`: moto's own server, with the sandbox's extensions."""

from __future__ import annotations

import sys

from infra.sandbox.cfn import install


def main(argv: list[str] | None = None) -> None:
    install()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
