"""`python -m infra.sandbox.cfn.server -H HOST -p PORT`: moto's own server, with the sandbox's extensions."""

from __future__ import annotations

import sys

from infra.sandbox.cfn import install


def _static_module_list() -> None:
    """moto's server looks for a request's backend among its own package folders by listing them again, with a
    stat per folder, for every AWS API request (`list_of_moto_modules`, under the dispatcher's lock): about a
    millisecond of CPU a request. The folders are fixed while the server runs, so they are listed once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def main(argv: list[str] | None = None) -> None:
    install()
    _static_module_list()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
