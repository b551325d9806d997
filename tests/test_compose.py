"""docker-compose.yml, infra/Dockerfile and infra/Procfile.dev name only things that exist.

No Docker engine runs here, so instead of starting the stack these tests parse the files and check
every executable, Python module, manage.py subcommand, Celery subcommand, file and environment
variable they name against this checkout and its virtualenv (the image installs the same lock).
They also check that the image can do without the sandbox: moto is no runtime requirement, nothing
of the product imports it, and the product loads with the sandbox off and moto missing.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import runpy
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "infra" / "Dockerfile"
PROCFILE = ROOT / "infra" / "Procfile.dev"
VENV_BIN = Path(sys.executable).parent

SERVICES = {"postgres", "redis", "web", "worker", "probes", "beat"}
APP_SERVICES = {"migrate", "web", "worker", "probes", "beat"}
# Top-level directories that are not part of the running product and stay out of the image.
NOT_IN_IMAGE = {"tests", "bench", "docs"}
# The offline sandbox: development only (moto is in requirements/dev.txt, not base.txt).
SANDBOX = "infra/sandbox"
# What the image runs: its packages must not import moto or the sandbox.
PRODUCT_PACKAGES = ("velaops", "dashboard", "tasks")


def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def split(command: str | list[str]) -> list[str]:
    """A compose command (list or shell string) as argv; `$$` is compose's escape for `$`."""
    if isinstance(command, str):
        return shlex.split(command.replace("$$", "$"))
    return [str(part).replace("$$", "$") for part in command]


def healthcheck_argv(test: str | list[str]) -> list[str]:
    if isinstance(test, str):
        return split(test)
    kind, *rest = test
    if kind == "CMD-SHELL":
        (line,) = rest
        return split(line)
    assert kind == "CMD", f"unexpected healthcheck form {kind!r}"
    return split(rest)


# --- checking one command line --------------------------------------------------------------------


def option_value(argv: list[str], *names: str) -> str | None:
    for index, arg in enumerate(argv):
        for name in names:
            if arg == name:
                return argv[index + 1]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg.split("=", 1)[1]
    return None


def check_module_exists(dotted: str) -> None:
    assert importlib.util.find_spec(dotted) is not None, f"module {dotted} does not exist"


def check_python_code(code: str) -> None:
    """`python -c CODE`: it compiles, and every module and name it imports exists."""
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check_module_exists(alias.name)
        elif isinstance(node, ast.ImportFrom):
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name) or importlib.util.find_spec(f"{node.module}.{alias.name}"), (
                    f"{node.module} has no {alias.name}"
                )


def check_manage_py(args: list[str]) -> None:
    from django.core.management import get_commands

    assert (ROOT / "manage.py").is_file()
    subcommand = args[0]
    assert subcommand in get_commands(), f"manage.py has no subcommand {subcommand!r}"
    code = option_value(args, "-c", "--command")
    if subcommand == "shell" and code is not None:
        check_python_code(code)


def check_python(args: list[str]) -> None:
    if args[0] == "-m":
        check_module_exists(args[1])
    elif args[0] == "-c":
        check_python_code(args[1])
    elif args[0] == "manage.py":
        check_manage_py(args[1:])
    else:
        script = ROOT / args[0]
        assert script.is_file(), f"python script {args[0]} does not exist"


def check_gunicorn(args: list[str]) -> None:
    config = option_value(args, "-c", "--config")
    assert config, "gunicorn runs without infra/gunicorn.conf.py"
    path = ROOT / config
    assert path.is_file(), f"gunicorn config {config} does not exist"
    settings = runpy.run_path(str(path))
    assert "bind" in settings and "workers" in settings
    app = args[-1]
    module, _, attribute = app.partition(":")
    loaded = importlib.import_module(module)
    assert callable(getattr(loaded, attribute or "application")), f"{app} is not a WSGI application"


def check_celery(args: list[str]) -> None:
    from celery.bin.celery import celery as celery_cli

    app_name = option_value(args, "-A", "--app")
    assert app_name, "celery runs without -A"
    module = importlib.import_module(app_name.partition(":")[0])
    assert hasattr(module, "app") or hasattr(module, "celery"), f"{app_name} has no Celery app"
    rest = list(args)
    while rest[0].startswith("-"):
        # Options before the subcommand: -A/--app take a value (unless written --app=...).
        option = rest.pop(0)
        if option in {"-A", "--app", "-b", "--broker", "--workdir", "--config"}:
            rest.pop(0)
    subcommand = rest[0]
    assert subcommand in celery_cli.commands, f"celery has no subcommand {subcommand!r}"


CHECKERS = {"python": check_python, "gunicorn": check_gunicorn, "celery": check_celery}


def check_command(argv: list[str], *, where: str) -> None:
    executable = Path(argv[0]).name
    assert (VENV_BIN / executable).exists(), f"{where}: {executable} is not installed in the virtualenv"
    checker = CHECKERS.get(executable)
    assert checker, f"{where}: no check for {executable}; teach tests/test_compose.py about it"
    checker(argv[1:])


# --- docker-compose.yml ---------------------------------------------------------------------------


def test_services_exist_with_healthchecks():
    services = compose()["services"]
    assert SERVICES <= services.keys()
    for name in SERVICES:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert healthcheck_argv(services["postgres"]["healthcheck"]["test"])[0] == "pg_isready"
    assert healthcheck_argv(services["redis"]["healthcheck"]["test"]) == ["redis-cli", "ping"]


def test_app_services_build_from_the_dockerfile():
    services = compose()["services"]
    assert DOCKERFILE.is_file()
    for name in APP_SERVICES:
        build = services[name]["build"]
        assert (ROOT / build["context"]).resolve() == ROOT
        assert (ROOT / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE


def test_app_services_wait_for_what_they_need():
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "probes", "beat"):
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    for name, service in services.items():
        targets = service.get("depends_on", {})
        for target in targets:
            assert target in services, f"{name} depends on unknown service {target}"


def one_shot_services(services: dict) -> set[str]:
    """Services something waits on to have exited successfully (migrate): run once, not kept running."""
    return {
        target
        for service in services.values()
        for target, spec in (service.get("depends_on") or {}).items()
        if isinstance(spec, dict) and spec.get("condition") == "service_completed_successfully"
    }


def test_every_long_running_service_is_restarted():
    services = compose()["services"]
    one_shot = one_shot_services(services)
    assert one_shot == {"migrate"}
    for name, service in services.items():
        policy = str(service.get("restart", "no"))
        if name in one_shot:
            # Restarting a finished one-shot would run it again forever; a failed one stops what waits on it.
            assert policy in {"no", "on-failure"} or policy.startswith("on-failure:"), f"{name}: restart {policy}"
            continue
        assert policy in {"unless-stopped", "always", "on-failure"} or policy.startswith("on-failure:"), (
            f"{name} runs for good but has no restart policy (restart: {policy}): a crash would leave it down"
        )
    assert SERVICES <= services.keys() - one_shot


def app_commands() -> list[tuple[str, list[str]]]:
    found = []
    for name, service in compose()["services"].items():
        if name not in APP_SERVICES:
            continue
        found.append((f"{name}.command", split(service["command"])))
        if "healthcheck" in service:
            found.append((f"{name}.healthcheck", healthcheck_argv(service["healthcheck"]["test"])))
    return found


@pytest.mark.parametrize(("where", "argv"), app_commands(), ids=[where for where, _ in app_commands()])
def test_compose_command_names_what_exists(where, argv):
    check_command(argv, where=where)


def test_compose_runs_the_expected_processes():
    services = compose()["services"]
    assert split(services["migrate"]["command"])[:3] == ["python", "manage.py", "migrate"]
    assert split(services["web"]["command"])[0] == "gunicorn"
    assert split(services["worker"]["command"])[:4] == ["celery", "-A", "velaops", "worker"]
    assert split(services["beat"]["command"])[:4] == ["celery", "-A", "velaops", "beat"]
    probes = split(services["probes"]["command"])
    assert probes[:4] == ["celery", "-A", "velaops", "worker"]
    assert probes[probes.index("--queues") + 1] == settings.CELERY_TASK_ROUTES["tasks.probes.run_probe"]["queue"]
    assert "/healthz" in " ".join(healthcheck_argv(services["web"]["healthcheck"]["test"]))


def settings_variables() -> set[str]:
    sources = (ROOT / "velaops" / "settings.py").read_text() + (ROOT / "infra" / "gunicorn.conf.py").read_text()
    return set(re.findall(r"""(?:env_\w+|os\.environ\.get)\(\s*["']([A-Z0-9_]+)["']""", sources))


def test_environment_names_are_read_by_settings():
    known = settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "DEBUG", "ALLOWED_HOSTS"} <= known
    for name, service in compose()["services"].items():
        if name not in APP_SERVICES:
            continue
        environment = service["environment"]
        unknown = set(environment) - known
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
        assert str(environment["DEBUG"]) == "0"
        # DEBUG is off, so settings refuse to start without a key; compose must insist on one.
        assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")


def test_database_url_matches_the_postgres_service():
    services = compose()["services"]
    postgres = services["postgres"]["environment"]
    url = services["web"]["environment"]["DATABASE_URL"]
    assert url.startswith(f"postgres://{postgres['POSTGRES_USER']}:")
    assert url.endswith(f"@postgres:5432/{postgres['POSTGRES_DB']}")
    assert services["web"]["environment"]["REDIS_URL"].startswith("redis://redis:6379/")


# --- infra/Dockerfile -----------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_dockerfile_copies_files_that_exist():
    copies = [args for instruction, args in dockerfile_instructions() if instruction == "COPY"]
    sources = []
    for args in copies:
        parts = args.split()
        if any(part.startswith("--from=") for part in parts):
            continue
        sources += [part for part in parts[:-1] if not part.startswith("--")]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which does not exist"
    # Every top-level Python package of the product is in the image (whole, or the files it needs).
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")} - NOT_IN_IMAGE
    missing = packages - {source.rstrip("/").split("/")[0] for source in sources}
    assert not missing, f"the Dockerfile does not copy {sorted(missing)}"
    # ... and the sandbox is not: neither copied itself nor inside a copied directory.
    for source in sources:
        path = source.rstrip("/")
        assert not (path == SANDBOX or path.startswith(SANDBOX + "/") or SANDBOX.startswith(path + "/")), (
            f"the Dockerfile copies {source}, which brings the sandbox (a development tool) into the image"
        )


def test_dockerfile_installs_the_lock_and_runs_gunicorn_unprivileged():
    instructions = dockerfile_instructions()
    text = " ".join(args for _, args in instructions)
    assert "--require-hashes" in text and "requirements/base.txt" in text
    assert instructions[0][0] == "ARG" and "python:3.11-slim" in instructions[0][1]
    users = [args for instruction, args in instructions if instruction == "USER"]
    assert users and not users[-1].startswith(("root", "0"))
    run = " ".join(args for instruction, args in instructions if instruction == "RUN")
    assert "collectstatic" in run
    (cmd,) = [args for instruction, args in instructions if instruction == "CMD"]
    check_command(split(ast.literal_eval(cmd)), where="Dockerfile CMD")


def test_the_image_runs_with_the_sandbox_off():
    env = dict(
        args.split("=", 1)
        for instruction, line in dockerfile_instructions()
        if instruction == "ENV"
        for args in line.split()
    )
    assert env.get("VELAOPS_SANDBOX") == "0"


# --- the image without the sandbox ----------------------------------------------------------------


def locked_packages(path: Path) -> set[str]:
    """The package names a pip-compile lock pins (`name==version` lines)."""
    names = set()
    for line in path.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==", line)
        if match:
            names.add(re.sub(r"[-_.]+", "-", match.group(1)).lower())
    return names


def test_the_images_requirements_have_no_moto():
    base = locked_packages(ROOT / "requirements" / "base.txt")
    assert {"django", "boto3", "psycopg"} <= base  # the parse found the lock's pins
    assert "moto" not in base, "moto is in requirements/base.txt: the image would install the sandbox's emulator"
    assert "moto" in locked_packages(ROOT / "requirements" / "dev.txt")


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_no_product_module_imports_moto_or_the_sandbox():
    sources = [path for package in PRODUCT_PACKAGES for path in (ROOT / package).rglob("*.py")]
    sources += [path for path in (ROOT / "infra").glob("*.py")]  # infra/ itself, not infra/sandbox
    assert sources
    offending = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in sources
        for module in imported_modules(path)
        if module.split(".")[0] == "moto" or module == "infra.sandbox" or module.startswith("infra.sandbox.")
    }
    assert not offending, f"the product imports what the image does not have: {sorted(offending)}"


# Run as `python -c` in a fresh interpreter: moto and the sandbox unimportable, as in the image, then
# `manage.py check` and an import of every product module.
WITHOUT_SANDBOX = textwrap.dedent(
    """
    import importlib, pkgutil, sys

    class Missing:
        # Any import of moto or the sandbox fails, as in the image where neither is installed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "moto" or name == "infra.sandbox" or name.startswith("infra.sandbox."):
                raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)

    sys.meta_path.insert(0, Missing())
    for name in [name for name in sys.modules if name.split(".")[0] == "moto" or name.startswith("infra.sandbox")]:
        del sys.modules[name]

    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", "check"])
    from django.conf import settings

    assert "infra.sandbox" not in settings.INSTALLED_APPS, settings.INSTALLED_APPS
    for package in sys.argv[1:]:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            importlib.import_module(info.name)
    print("imported without the sandbox")
    """
)


def test_the_product_loads_without_moto_and_the_sandbox():
    env = {
        **{name: value for name, value in os.environ.items() if not name.startswith(("DJANGO_", "SANDBOX_"))},
        "DJANGO_SETTINGS_MODULE": "velaops.settings",
        "DEBUG": "0",
        "VELAOPS_SANDBOX": "0",
        "SECRET_KEY": "compose-test-only-" + "x" * 40,
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_SANDBOX, *PRODUCT_PACKAGES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "System check identified no issues" in result.stdout
    assert "imported without the sandbox" in result.stdout


def test_dockerignore_keeps_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".env"} <= set(ignored)


# --- infra/Procfile.dev ---------------------------------------------------------------------------


def procfile_entries() -> list[tuple[str, list[str]]]:
    entries = []
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, command = line.split(":", 1)
        entries.append((name.strip(), shlex.split(command)))
    return entries


@pytest.mark.parametrize(("name", "argv"), procfile_entries(), ids=[name for name, _ in procfile_entries()])
def test_procfile_names_what_exists(name, argv):
    assert argv[0].startswith(".venv/bin/"), f"{name} does not run from the project's virtualenv"
    assert (ROOT / argv[0]).exists(), f"Procfile.dev {name}: {argv[0]} does not exist"
    check_command(argv, where=f"Procfile.dev {name}")


def test_procfile_runs_web_worker_probes_and_beat():
    assert {"web", "worker", "probes", "beat"} <= {name for name, _ in procfile_entries()}
