"""`manage.py sandbox`: run the offline sandbox in the foreground, or flip its fault switches.

manage.py sandbox [--reset] [--port 5000] [--fault dsql_latency_ms=300 ...]
manage.py sandbox --set-fault dsql_refuse=on [--set-fault ...]     (against the running sandbox)
manage.py sandbox --show-faults
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from infra.sandbox.config import SandboxConfig
from infra.sandbox.control import ControlError, get_network_path, get_state, set_faults
from infra.sandbox.faults import DESCRIPTIONS, FaultError, Faults, parse_assignment
from infra.sandbox.runner import Sandbox, run_forever


class Command(BaseCommand):
    help = "Start the offline sandbox (moto, DSQL endpoint, Aurora contents, API health route) and seed it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--reset", action="store_true", help="Start from an empty account and databases.")
        parser.add_argument("--port", type=int, help="moto's port; the other parts take the next three.")
        parser.add_argument(
            "--fault",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"Start with a fault on. Names: {', '.join(DESCRIPTIONS)}.",
        )
        parser.add_argument(
            "--set-fault",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="Change a fault of the running sandbox (through its control endpoint) and exit.",
        )
        parser.add_argument("--show-faults", action="store_true", help="Print the running sandbox's faults.")
        parser.add_argument(
            "--control-url", default="", help="The running sandbox's control endpoint (default: SANDBOX_CONTROL_URL)."
        )
        parser.add_argument("--verbose", action="store_true", help="Show moto's request log.")

    def handle(self, *args, **options) -> None:
        try:
            if options["set_fault"] or options["show_faults"]:
                return self._control(options)
            faults = dict(parse_assignment(text) for text in options["fault"])
        except FaultError as exc:
            raise CommandError(str(exc)) from None
        config = SandboxConfig.from_env(settings.DATABASES["default"])
        if options["port"]:
            config = config.with_ports(options["port"])
        logging.basicConfig(level=logging.INFO, format="sandbox: %(message)s")
        sandbox = Sandbox(config, Faults(**faults), verbose=options["verbose"])
        try:
            run_forever(sandbox, reset=options["reset"], out=self.stdout.write)
        except (RuntimeError, OSError) as exc:
            raise CommandError(str(exc)) from None

    def _control(self, options: dict) -> None:
        url = options["control_url"] or settings.SANDBOX_CONTROL_URL
        if not url:
            raise CommandError("No control endpoint: set SANDBOX_CONTROL_URL or pass --control-url.")
        try:
            changes = dict(parse_assignment(text) for text in options["set_fault"])
            state = set_faults(url, changes) if changes else get_state(url)
            path = get_network_path(url)
        except ControlError as exc:
            raise CommandError(str(exc)) from None
        for name, value in state["faults"].items():
            self.stdout.write(f"{name} = {value}")
        if path.get("checked"):
            verdict = "reachable" if path["reachable"] else "UNREACHABLE"
            self.stdout.write(f"network path: {path['function']} -> DSQL {verdict} ({path['reason']})")
