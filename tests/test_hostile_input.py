"""Issue #10 item 3: bad input is a field error, never a server error.

A corpus of hostile strings goes to every form field and every query parameter VelaOps accepts, each
input to each field once. Nothing here is a hand list of what to send where:

- views come from walking the URL resolver (velaops/urls.py and everything it includes);
- forms come from rendering each page's GET (as an operator and as a superuser, the login page
  anonymously) and parsing its <form> elements: action, method, and every input, select and textarea
  with the value it was rendered with. The admin's add and change forms of the app's models are pages
  like any other;
- query parameters come from the views' source (`ast`: every `request.GET` read in the view and the
  module's functions it calls, including keys passed to helpers) and from the links, HTMX attributes and
  GET forms of the rendered pages (the admin's search, filters and ordering).

Every other field keeps its rendered value (or a valid-looking default where the page left a required
one empty), so the hostile value is what the view has to cope with. Each request runs in a savepoint that
is rolled back, so every input meets the same state. The test fails on any 5xx and on hostile markup
coming back unescaped in an HTML answer, and prints its counts.
"""

from __future__ import annotations

import ast
import inspect
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urljoin, urlsplit

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from dashboard.models import (
    Alert,
    AlertSettings,
    Attempt,
    AttemptLog,
    MaintenanceWindow,
    ProbeKind,
    ReportSchedule,
    Step,
    Target,
)
from dashboard.periods import Period
from dashboard.reports.generate import build_report, report_store
from dashboard.runbook import service

pytestmark = pytest.mark.django_db

SCRIPT = "<script>alert('hostile')</script>"
IMG = '"><img src=x onerror=alert(1)>'
# Markup that must never come back as markup.
UNESCAPED = [SCRIPT.encode(), b"<img src=x onerror"]

HOSTILE: list[str] = [
    "",
    " ",
    "x" * 100_000,
    SCRIPT,
    IMG,
    "'",  # also the name of an existing schedule: a duplicate
    "' OR '1'='1",
    "1; DROP TABLE dashboard_environment; --",
    "a\x00b",
    "UTC\x00",
    "\u202eevil\u202c",  # right-to-left override
    "e\u0301\u0301\u0301\u0301",  # combining marks
    "🔥👩‍👩‍👧‍👦",
    "²",
    "¹²³",
    "٣",  # Arabic-Indic digit
    "३",  # Devanagari digit
    "１",  # fullwidth digit
    "9" * 400,
    "9" * 5000,  # longer than int()'s default digit limit
    "-1",
    "0",
    "1.5",
    "NaN",
    "1_000",  # int() accepts it
    "* * * * *",
    "61 25 32 13 8",
    "0 0 31 2 *",  # never fires
    "Mars/Olympus_Mons",
    "../../../../etc/passwd",
    "{{ 7|add:7 }}{% debug %}",
    "\r\nSet-Cookie: hostile=1",
    "javascript:alert(1)",
]

# Valid-looking values for fields a page renders empty but needs, so that the field under test is what
# decides the outcome. Keyed by field name; anything else keeps what the page rendered.
LATER = timezone.now() + timedelta(hours=1)
DEFAULTS = {
    "name": "Hostile input",
    "slug": "hostile-input",
    "region": "us-east-1",
    "account_id": "123456789012",
    "reason": "hostile input test",
    "recipients": "ops@example.com",
    "emails": "ops@example.com",
    "starts_at": f"{LATER:%Y-%m-%dT%H:%M}",
    "ends_at": f"{LATER + timedelta(hours=1):%Y-%m-%dT%H:%M}",
    "starts_at_0": f"{LATER:%Y-%m-%d}",
    "starts_at_1": f"{LATER:%H:%M:%S}",
    "ends_at_0": f"{LATER + timedelta(days=1):%Y-%m-%d}",
    "ends_at_1": f"{LATER:%H:%M:%S}",
    "username": "otto",
    "password": "pw-otto",
}
SKIPPED_FIELDS = {"csrfmiddlewaretoken"}


# --- the objects every URL kwarg points at --------------------------------------------------------------


@dataclass
class World:
    objects: dict[str, object]
    operator: object
    superuser: object


@pytest.fixture
def world(environment, operator, superuser, approver, moto_url, settings) -> World:
    environment.requires_approval = True
    environment.aws_endpoint_url = moto_url  # the environment page reads AWS live: from moto, quickly
    environment.save()
    migration = service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
    first = migration.steps.order_by("position").first()
    service.attempt_request(step=first, action="run", user=operator, source_address="127.0.0.1")
    attempt = first.attempts.get()
    # Finished, so the next steps offer their actions (and the migration can be abandoned).
    Attempt.objects.filter(pk=attempt.pk).update(status=Attempt.Status.SUCCEEDED, finished_at=timezone.now())
    first.state = Step.State.SUCCEEDED
    first.save(update_fields=["state"])
    AttemptLog.objects.create(attempt=attempt, message=f"a line with {SCRIPT}")
    destructive = migration.steps.get(key="decommission_aurora")
    approval = service.approval_request(step=destructive, action="run", user=operator, source_address="127.0.0.1")
    target = Target.objects.create(environment=environment, kind=ProbeKind.DSQL, name="vela-dsql")
    Target.objects.create(environment=environment, kind=ProbeKind.DYNAMODB, name="vela-paused", paused=True)
    start = timezone.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    report = report_store(
        environment=environment,
        period=Period(start, start + timedelta(days=1), kind="daily"),
        rendered=build_report(environment, Period(start, start + timedelta(days=1), kind="daily")),
    )
    schedule = ReportSchedule.objects.create(environment=environment, name="Daily", recipients=["a@example.com"])
    ReportSchedule.objects.create(environment=environment, name="'", frequency="weekly")
    AlertSettings.objects.create(environment=environment, emails=["oncall@example.com"])
    now = timezone.now()
    window = MaintenanceWindow.objects.create(
        environment=environment, starts_at=now - timedelta(hours=1), ends_at=now + timedelta(hours=1), reason="db"
    )
    MaintenanceWindow.objects.create(
        environment=environment, starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2), reason="later"
    )
    Alert.objects.create(environment=environment, kind="target_down", created_at=now, subject="down", body=SCRIPT)
    # The sandbox's fault page exists only beside a running sandbox: a stand-in control server answers.
    settings.SANDBOX_CONTROL_URL = "http://sandbox-control.invalid"
    return World(
        objects={
            "environment": environment,
            "migration": migration,
            "step": destructive,
            "attempt": attempt,
            "approval": approval,
            "target": target,
            "report": report,
            "schedule": schedule,
            "window": window,
        },
        operator=operator,
        superuser=superuser,
    )


@pytest.fixture(autouse=True)
def _sandbox_control(monkeypatch, moto_url):
    from infra.sandbox import views as sandbox_views

    state = {
        "aws_endpoint_url": moto_url,
        "faults": {"dsql_down": False, "dsql_latency_ms": 0},
        "descriptions": {"dsql_down": "DSQL refuses connections", "dsql_latency_ms": "extra latency"},
    }
    monkeypatch.setattr(sandbox_views, "get_state", lambda url: state)
    monkeypatch.setattr(sandbox_views, "set_faults", lambda url, faults: state["faults"].update(faults))


# --- views, from the resolver ---------------------------------------------------------------------------


@dataclass
class View:
    name: str  # namespaced URL name
    route: str  # the full route, for reading which object a kwarg means
    callback: object
    kwargs: list[str]


def walk(patterns, prefix: str = "", namespace: str = "", outer: tuple = ()) -> Iterator[View]:
    for entry in patterns:
        kwargs = (*outer, *entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner, kwargs)
        elif isinstance(entry, URLPattern) and entry.name:
            yield View(namespace + entry.name, prefix + str(entry.pattern), entry.callback, list(kwargs))


def all_views() -> list[View]:
    return list(walk(get_resolver().url_patterns))


ADMIN_OWN_APP = "dashboard"


def url_kwargs(view: View, world: World) -> dict | None:
    """Real objects for every kwarg; None when the view cannot be named (an admin page of another app)."""
    objects = world.objects
    route = view.route
    values: dict = {}
    for kwarg in view.kwargs:
        if kwarg == "slug":
            values[kwarg] = objects["environment"].slug
        elif kwarg == "pk":
            before = route.split("<int:pk>")[0]
            if before.endswith("migrations/"):
                values[kwarg] = objects["migration"].pk
            elif before.endswith("targets/"):
                values[kwarg] = objects["target"].pk
            elif before.endswith("schedules/"):
                values[kwarg] = objects["schedule"].pk
            elif before.endswith("maintenance/"):
                values[kwarg] = objects["window"].pk
            else:
                values[kwarg] = objects["report"].pk
        elif kwarg == "step_pk":
            values[kwarg] = objects["step"].pk
        elif kwarg == "attempt_pk":
            values[kwarg] = objects["attempt"].pk
        elif kwarg == "approval_pk":
            values[kwarg] = objects["approval"].pk
        elif kwarg == "fmt":
            values[kwarg] = "json" if "migrations" in route else "html"
        elif kwarg == "action":
            values[kwarg] = "run"
        elif kwarg == "app_label":
            values[kwarg] = ADMIN_OWN_APP
        elif kwarg == "object_id":
            model = admin_model(view)
            if model is None:
                return None
            instance = admin_instance(model, world)
            if instance is None:
                return None
            values[kwarg] = str(instance.pk)
        elif kwarg == "content_type_id":
            values[kwarg] = ContentType.objects.get_for_model(type(objects["environment"])).pk
        elif kwarg == "url":
            values[kwarg] = "nowhere/"
        else:
            values[kwarg] = "x"  # e.g. the password reset's user id
    return values


def admin_model(view: View):
    for model in admin.site._registry:
        if view.name.startswith(f"admin:{model._meta.app_label}_{model._meta.model_name}_"):
            return model
    return None


def admin_instance(model, world: World):
    for instance in world.objects.values():
        if isinstance(instance, model):
            return instance
    return model._default_manager.order_by("pk").first()


def wanted(view: View) -> bool:
    """Every view of VelaOps; of the admin, the pages of this app's models and the site's own pages."""
    if view.route.startswith("api/v1/"):
        return False  # the JSON API: fuzzed from its OpenAPI document by tests/api/test_schemathesis.py
    if not view.name.startswith("admin:"):
        return True
    model = admin_model(view)
    return model is None and "password" not in view.name or (model is not None and model._meta.app_label == "dashboard")


# --- query parameters, from the views' source ------------------------------------------------------------


def _is_request_get(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "GET" and isinstance(node.value, ast.Name)


def _module_functions(module) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(inspect.getsource(module))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


@dataclass
class SourceFacts:
    params: set[str] = field(default_factory=set)
    htmx: bool = False
    htmx_targets: set[str] = field(default_factory=set)


def source_facts(callback) -> SourceFacts:
    """What a view function (and the module-level functions it calls) reads from request.GET, whether it
    branches on HTMX, and the HX-Target values it compares with."""
    function = inspect.unwrap(callback)
    module = sys.modules.get(getattr(function, "__module__", ""))
    facts = SourceFacts()
    if module is None or not module.__name__.startswith("dashboard") or not inspect.isfunction(function):
        return facts
    functions = _module_functions(module)
    # Functions whose GET key is a variable: the string literals their callers pass are parameter names.
    key_by_argument = set()
    for name, node in functions.items():
        for inner in ast.walk(node):
            if _get_key(inner) is not None and not isinstance(_get_key(inner), ast.Constant):
                key_by_argument.add(name)
    seen, todo = set(), [function.__name__]
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            key = _get_key(node)
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                facts.params.add(key.value)
            if isinstance(node, ast.Attribute) and node.attr == "htmx":
                facts.htmx = True
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.Attribute) and node.left.attr == "target":
                facts.htmx_targets.update(
                    c.value for c in node.comparators if isinstance(c, ast.Constant) and isinstance(c.value, str)
                )
            if isinstance(node, ast.Call):
                called = node.func.id if isinstance(node.func, ast.Name) else None
                if called:
                    todo.append(called)
                    if called in key_by_argument:
                        facts.params.update(
                            a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                        )
            # Functions passed by name, e.g. (environment_for_operator if operate else ...)(request, slug).
            if isinstance(node, ast.Name) and node.id in functions:
                todo.append(node.id)
    return facts


def _get_key(node: ast.AST):
    """The key of request.GET.get(key) / .getlist(key) / request.GET[key] / key in request.GET."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _is_request_get(node.func.value):
        if node.func.attr in ("get", "getlist") and node.args:
            return node.args[0]
    if isinstance(node, ast.Subscript) and _is_request_get(node.value):
        return node.slice
    if isinstance(node, ast.Compare) and any(_is_request_get(c) for c in node.comparators):
        return node.left
    return None


# --- forms and links, from the rendered pages ------------------------------------------------------------


@dataclass
class Form:
    page: str
    action: str
    method: str
    fields: dict[str, list[str]]  # name -> the values a browser would send (several for checkboxes)
    kinds: dict[str, str]  # name -> input type / select / textarea


class PageParser(HTMLParser):
    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.page = page
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._form: Form | None = None
        self._select: tuple[str, list[str], list[str]] | None = None  # name, options, selected
        self._option: str | None = None
        self._textarea: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for attribute in ("href", "hx-get", "hx-post", "data-url", "data-live-url", "hx-vals"):
            if a.get(attribute) and attribute != "hx-vals":
                self.links.append(a[attribute])
        if tag == "form":
            action = urljoin(self.page, a.get("action") or self.page)
            self._form = Form(self.page, action, (a.get("method") or "get").lower(), {}, {})
            self.forms.append(self._form)
        form = self._form
        if form is None or not a.get("name"):
            if tag == "option" and self._select is not None:
                self._option_attrs(a)
            return
        name = a["name"]
        if tag == "input":
            kind = (a.get("type") or "text").lower()
            form.kinds.setdefault(name, kind)
            if kind in ("checkbox", "radio"):
                form.fields.setdefault(name, [])
                if "checked" in a:
                    form.fields[name].append(a.get("value", "on"))
            elif kind in ("submit", "button", "image", "reset"):
                form.kinds[name] = kind
            else:
                form.fields[name] = [a.get("value", "")]
        elif tag == "select":
            form.kinds[name] = "select"
            self._select = (name, [], [])
        elif tag == "textarea":
            form.kinds[name] = "textarea"
            self._textarea = (name, [])
        elif tag == "button":
            form.kinds.setdefault(name, "submit")

    def _option_attrs(self, a):
        name, options, selected = self._select
        value = a.get("value", "")
        options.append(value)
        if "selected" in a:
            selected.append(value)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1].append(data)

    def handle_endtag(self, tag):
        if tag == "select" and self._select is not None and self._form is not None:
            name, options, selected = self._select
            # A browser sends the first option when none is selected; a required one is better filled.
            self._form.fields[name] = selected or [next((o for o in options if o), options[0] if options else "")]
            self._select = None
        elif tag == "textarea" and self._textarea is not None and self._form is not None:
            name, parts = self._textarea
            self._form.fields[name] = ["".join(parts).removeprefix("\n")]
            self._textarea = None
        elif tag == "form":
            self._form = None


def parse_page(url: str, html: str) -> PageParser:
    parser = PageParser("http://testserver" + url)
    parser.feed(html)
    return parser


def path_of(url: str) -> str:
    return urlsplit(url).path


# --- sending ---------------------------------------------------------------------------------------------


class Rollback(Exception):
    pass


@dataclass
class Tally:
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    spent: dict = field(default_factory=dict)
    admin_form_classes: dict = field(default_factory=dict)

    def send(self, client: Client, method: str, path: str, data, headers=None, sent: str = "") -> object:
        self.requests += 1
        response = None
        began = time.monotonic()
        try:
            with transaction.atomic():
                response = getattr(client, method)(path, data, headers=headers or {})
                raise Rollback
        except Rollback:
            pass
        key = f"{method} {_route_of(path, ())}"
        spent, count = self.spent.get(key, (0.0, 0))
        self.spent[key] = (spent + time.monotonic() - began, count + 1)
        where = f"{method.upper()} {path} {sorted(data)[:6] if isinstance(data, dict) else data} {sent[:40]!r}"
        if response.status_code >= 500:
            exc = getattr(response, "exc_info", None)
            cause = f"{exc[0].__name__}: {str(exc[1])[:160]}" if exc else response.content[:160]
            self.failures.append(f"{response.status_code} {where}: {cause}")
        elif "html" in response.get("Content-Type", "") and not response.streaming:
            for marker in UNESCAPED:
                if marker in response.content:
                    self.failures.append(f"unescaped markup echoed by {where}")
        return response


def _check_admin_form(self, model_admin, instance, data, user, sent: str) -> None:
    """What the admin's add/change view does with a POST, without rendering the page again."""
    from django.test import RequestFactory

    self.admin_forms += 1
    request = RequestFactory().post("/admin/", data)
    request.user = user
    change = instance is not None
    # The form class depends on the user and the instance, not on the data: built once per admin form (building
    # it was a fifth of these submissions' time).
    key = (type(model_admin), change)
    try:
        with transaction.atomic():
            if key not in self.admin_form_classes:
                self.admin_form_classes[key] = model_admin.get_form(request, instance, change=change)
            form_class = self.admin_form_classes[key]
            form = form_class(request.POST, request.FILES, instance=instance)
            if form.is_valid():
                obj = model_admin.save_form(request, form, change=change)
                model_admin.save_model(request, obj, form, change)
                model_admin.save_related(request, form, [], change)
            raise Rollback
    except Rollback:
        pass
    except Exception as exc:  # the admin would answer 500
        self.failures.append(f"admin {type(model_admin).__name__} {sent[:40]!r}: {type(exc).__name__}: {exc}"[:300])


Tally.check_admin_form = _check_admin_form
Tally.admin_forms = 0


def logged_in(user) -> Client:
    client = Client(enforce_csrf_checks=False, raise_request_exception=False)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def _fast_requests(monkeypatch):
    """Thousands of requests: no log line per 4xx (5xx are the test's own report), and templates render
    without the test client's instrumentation (a copy of every context of every template, unused here)."""
    from django.template.base import Template
    from django.test.utils import _TestState

    monkeypatch.setattr(Template, "_render", _TestState.saved_data.template_render)
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


# Thousands of requests: about 100 s alone, up to 300 s beside two other xdist workers on two cores.
@pytest.mark.timeout(900)
def test_hostile_input_is_never_a_server_error(world, capsys, _fast_requests):
    started = time.monotonic()
    tally = Tally()
    clients = {
        "operator": logged_in(world.operator),
        "superuser": logged_in(world.superuser),
        "anonymous": logged_in(None),
    }
    named: list[tuple[View, str]] = []
    for view in all_views():
        kwargs = url_kwargs(view, world) if wanted(view) else None
        if kwargs is not None:
            named.append((view, reverse(view.name, kwargs=kwargs)))

    # 1. Render every page as the role that uses it; collect its forms and the parameters its links use.
    forms: dict[tuple, tuple[str, Form]] = {}
    link_params: dict[str, set[str]] = {}
    pages = {url: view for view, url in named}
    gettable = set()
    for view, url in named:
        role = role_for(view)
        response = tally.send(clients[role], "get", url, {})
        if response.status_code < 400:
            gettable.add(url)
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        page = parse_page(url, response.content.decode())
        for form in page.forms:
            forms.setdefault(form_key(form), (role, form))
            if form.method == "get" and path_of(form.action) in pages:
                link_params.setdefault(path_of(form.action), set()).update(set(form.fields) - SKIPPED_FIELDS)
        for link in page.links:
            absolute = urljoin(page.page, link)
            if path_of(absolute) in pages:
                names = {name for name, _ in parse_qsl(urlsplit(absolute).query, keep_blank_values=True)}
                link_params.setdefault(path_of(absolute), set()).update(names)

    # 2. Query parameters: each input in each parameter a view reads; views that branch on HTMX get
    # the inputs alternately as a page and as each HTMX swap they answer.
    param_count = 0
    seen_admin_params: set[str] = set()
    for view, url in named:
        if url not in gettable:
            continue
        facts = source_facts(view.callback)
        params = facts.params | link_params.get(url, set())
        if view.name.startswith("admin:"):
            params -= seen_admin_params  # the admin's parameters are one piece of code for every model
            seen_admin_params |= params
        variants: list[dict] = [{}]
        if facts.htmx:
            variants += [{"HX-Request": "true", "HX-Target": t} for t in sorted(facts.htmx_targets) or [""]]
        for param in sorted(params):
            param_count += 1
            for index, value in enumerate(HOSTILE):
                headers = variants[index % len(variants)]
                tally.send(clients[role_for(view)], "get", url, {param: value}, headers=headers, sent=value)

    # 3. Forms: each input in each field, the others as rendered (or a default where left empty). The
    # admin's model forms meet the whole corpus in process (validation, then the save the admin does,
    # in a savepoint): rendering its change page thousands of times would add minutes and no coverage;
    # each of their fields still goes through the real page with the script input.
    field_count = 0
    posted = set()
    for (method, route, _), (role, form) in sorted(forms.items(), key=lambda item: str(item[0])):
        posted.add(route.partition(":")[0] if not route.startswith("admin:") else route)
        base = form_defaults(form)
        model_admin, instance = admin_form_of(form, world)
        for name in base:
            if not under_test(form, name):
                continue
            field_count += 1
            if model_admin is not None:
                for value in HOSTILE:
                    tally.check_admin_form(model_admin, instance, {**base, name: value}, world.superuser, value)
                inputs = [SCRIPT, "a\x00b"]
            else:
                inputs = HOSTILE
            for value in inputs:
                tally.send(clients[role], method, path_of(form.action), {**base, name: value}, sent=value)

    # 4. POST-only views no rendered form reached take no fields, but must not fail either.
    for view, url in named:
        if url not in gettable and view.name not in posted and not view.name.startswith("admin:"):
            tally.send(clients[role_for(view)], "post", url, {})

    line = (
        f"hostile input: {len(named)} views, {field_count} form fields, {param_count} query parameters, "
        f"{len(HOSTILE)} inputs, {tally.requests} requests, {len(tally.failures)} server errors"
    )
    with capsys.disabled():
        print(f"\n{line} ({tally.admin_forms} admin form submissions in process, {time.monotonic() - started:.0f} s)")
        if os.environ.get("HOSTILE_PROFILE"):
            print(sorted(forms), file=sys.stderr)
            for key, (spent, count) in sorted(tally.spent.items(), key=lambda item: -item[1][0])[:25]:
                print(f"{spent:6.1f} s {count:5d} {key}", file=sys.stderr)
    assert field_count > 50 and param_count > 10
    assert not tally.failures, "\n".join(tally.failures[:60])


def role_for(view: View) -> str:
    if view.name == "login":
        return "anonymous"
    if view.name.startswith("admin:") or view.name.startswith("sandbox"):
        return "superuser"
    return "operator"


def under_test(form: Form, name: str) -> bool:
    """Fields of a formset's later rows run the code of its first row's."""
    if form.kinds.get(name) in ("submit", "button", "reset", "image"):
        return False
    return not re.match(r"form-[1-9][0-9]*-", name)


def form_defaults(form: Form) -> dict[str, list[str]]:
    base = {name: list(values) for name, values in form.fields.items() if name not in SKIPPED_FIELDS}
    for name, values in base.items():
        if not any(values) and name in DEFAULTS and form.kinds.get(name) not in ("checkbox", "radio"):
            base[name] = [DEFAULTS[name]]
    return base


def admin_form_of(form: Form, world: World):
    """The ModelAdmin and instance behind an admin add or change form, else (None, None)."""
    route = _route_of(path_of(form.action), ())
    for model, model_admin in admin.site._registry.items():
        prefix = f"admin:{model._meta.app_label}_{model._meta.model_name}_"
        if route == prefix + "add":
            return model_admin, None
        if route == prefix + "change":
            return model_admin, admin_instance(model, world)
    return None, None


def form_key(form: Form) -> tuple:
    """Forms that run the same code count once: a page's form once however many rows repeat it; the
    admin's add form where its change form has the same fields, and its changelist action and delete
    confirmation forms (one piece of Django code for every model) once."""
    route = _route_of(path_of(form.action), ())
    fields = frozenset(form.fields) - SKIPPED_FIELDS
    if route.startswith("admin:dashboard_"):
        model, _, page = route.removeprefix("admin:dashboard_").rpartition("_")
        if page == "add":
            page = "change"
        if page == "changelist" and "action" in fields:
            model = "*"
        if page in ("delete", "history"):
            model = "*"
        route = f"admin:{model}:{page}"
    return (form.method, route, fields)


def _route_of(path: str, fields) -> str:
    from django.urls import resolve

    try:
        match = resolve(path)
    except Exception:
        return path
    action = match.kwargs.get("action", "")
    return f"{match.view_name}{':' + action if action else ''}"


# --- each fix, on its own ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("42", 42),
        ("0", 0),
        ("²", 7),  # isdigit() says yes, int() raises
        ("٣", 7),  # int() says 3
        ("१", 7),
        ("１", 7),
        ("1_000", 7),  # int() says 1000
        (" 5", 7),
        ("5\n", 7),
        ("-1", 7),
        ("+5", 7),
        ("9" * 400, 7),
        ("9" * 5000, 7),  # int() raises past 4300 digits
        ("", 7),
        (None, 7),
    ],
)
def test_int_param_takes_ascii_digits_only(raw, expected):
    from django.http import QueryDict

    from dashboard.params import int_param

    query = QueryDict(mutable=True)
    if raw is not None:
        query["n"] = raw
    assert int_param(query, "n", 7) == expected


def test_int_param_bounds():
    from django.http import QueryDict

    from dashboard.params import int_param

    assert int_param(QueryDict("page=0"), "page", 1, minimum=1) == 1
    assert int_param(QueryDict("page=51"), "page", 1, maximum=50) == 1
    assert int_param(QueryDict("page=50"), "page", 1, maximum=50) == 50
    assert int_param(QueryDict(""), "after", None) is None


@pytest.mark.parametrize("value", ["²", "¹²³", "9" * 5000])
def test_poll_parameters_with_unicode_digits_are_no_server_error(world, value):
    client = logged_in(world.operator)
    environment, target, migration, attempt = (
        world.objects[name] for name in ("environment", "target", "migration", "attempt")
    )
    htmx = {"HX-Request": "true"}
    overview = client.get(reverse("health-overview-live", args=[environment.slug]), {"n": value}, headers=htmx)
    detail = client.get(reverse("target-detail-live", args=[environment.slug, target.pk]), {"after": value})
    tail = client.get(
        reverse("attempt-detail", args=[environment.slug, migration.pk, attempt.pk]), {"after": value}, headers=htmx
    )
    assert overview.status_code in (200, 204) and detail.status_code in (200, 204)
    assert tail.status_code == 200 and b"a line with" in tail.content  # a bad `after` is the first line on


# The form checks the (environment, name) constraint; a name saved by someone else since that check passed
# (the form check skipped here) meets the database's constraint, and that is a field error too.
@pytest.mark.parametrize("form_checks", [True, False], ids=["checked-by-the-form", "saved-meanwhile"])
def test_a_duplicate_schedule_name_is_a_field_error(world, monkeypatch, form_checks):
    from dashboard.reports.forms import ScheduleForm

    if not form_checks:
        monkeypatch.setattr(ScheduleForm, "clean_name", lambda form: form.cleaned_data["name"])
    environment = world.objects["environment"]
    client = logged_in(world.operator)
    data = {"name": "Daily", "frequency": "daily", "hour": "7", "timezone": "UTC", "recipients": "a@example.com"}
    response = client.post(reverse("report-schedule-new", args=[environment.slug]), data)
    assert response.status_code == 400
    assert "has a schedule of that name already" in response.content.decode()
    assert ReportSchedule.objects.filter(environment=environment, name="Daily").count() == 1
    # Renaming a schedule to its own name is no duplicate.
    schedule = world.objects["schedule"]
    response = client.post(reverse("report-schedule-edit", args=[environment.slug, schedule.pk]), data)
    assert response.status_code == 302


@pytest.mark.parametrize("reason", ["a\x00b", "\x00"])
def test_nul_in_an_action_reason_is_an_error_message(world, reason):
    environment, migration = world.objects["environment"], world.objects["migration"]
    client = logged_in(world.operator)
    step = migration.steps.exclude(state=Step.State.SUCCEEDED).order_by("position").first()
    skip_url = reverse("step-action", args=[environment.slug, migration.pk, step.pk, "skip"])
    skip = client.post(skip_url, {"reason": reason})
    assert skip.status_code == 302 and not step.attempts.exists()
    abandon = client.post(reverse("migration-abandon", args=[environment.slug, migration.pk]), {"reason": reason})
    assert abandon.status_code == 302
    migration.refresh_from_db()
    assert migration.status == "open"
    page = client.get(abandon["Location"])
    assert "Null characters are not allowed" in page.content.decode()


@pytest.mark.parametrize(
    "validator,value",
    [
        ("account_id_validator", "١٢٣٤٥٦٧٨٩٠١٢"),  # Arabic-Indic digits
        ("account_id_validator", "１２３４５６７８９０１２"),  # fullwidth
        ("account_id_validator", "123456789012\n"),  # $ matched before a trailing newline
        ("role_arn_validator", "arn:aws:iam::१२३४५६७८९०१२:role/Ops"),
        ("role_arn_validator", "arn:aws:iam::123456789012:role/Opé"),  # \w took any letter
        ("resource_name_validator", "vela-api\n"),
    ],
)
def test_identifier_validators_are_ascii(validator, value):
    from django.core.exceptions import ValidationError

    from dashboard import validators

    with pytest.raises(ValidationError):
        getattr(validators, validator)(value)


def test_identifier_validators_still_take_ascii():
    from dashboard import validators

    validators.account_id_validator("123456789012")
    validators.role_arn_validator("arn:aws:iam::123456789012:role/path/VelaOps_Operator+=,.@-")
    validators.resource_name_validator("arn:aws:lambda:us-east-1:123456789012:function:vela-api")
    validators.validate_region("us-east-1")


@pytest.mark.parametrize("region", ["us-east-١", "us-east-1\n"])
def test_region_shape_is_ascii(region):
    from django.core.exceptions import ValidationError

    from dashboard.validators import validate_region

    with pytest.raises(ValidationError, match="not an AWS region name"):
        validate_region(region)


@pytest.mark.parametrize("port,ok", [("0", False), ("65536", False), ("70000", False), ("1", True), ("65535", True)])
def test_the_admin_range_checks_the_dsql_port(world, port, ok):
    environment = world.objects["environment"]
    client = logged_in(world.superuser)
    url = reverse("admin:dashboard_environment_change", args=[environment.pk])
    form = next(f for f in parse_page(url, client.get(url).content.decode()).forms if "dsql_port" in f.fields)
    data = {**form_defaults(form), "dsql_port": port}
    response = client.post(url, data)
    environment.refresh_from_db()
    if ok:
        assert response.status_code == 302 and environment.dsql_port == int(port)
    else:
        assert response.status_code == 200 and "A port is a number from 1 to 65535." in response.content.decode()
        assert environment.dsql_port == 5432


def test_nul_in_an_admin_filter_is_the_admins_bad_filter_answer(world):
    client = logged_in(world.superuser)
    response = client.get(reverse("admin:dashboard_migrationrun_changelist"), {"status__exact": "a\x00b"})
    assert response.status_code == 302 and response["Location"].endswith("?e=1")


def test_a_bad_field_re_renders_the_form_escaped_with_every_other_value_kept(world):
    environment = world.objects["environment"]
    client = logged_in(world.operator)
    data = {
        "name": SCRIPT,
        "frequency": "cron",
        "cron_expression": "61 25 32 13 8",
        "hour": "7",
        "timezone": "Europe/Berlin",
        "recipients": "a@example.com, b@example.com",
        "formats": ["csv"],
    }
    response = client.post(reverse("report-schedule-new", args=[environment.slug]), data)
    html = response.content.decode()
    assert response.status_code == 400 and "Not a valid cron expression" in html
    assert SCRIPT not in html and "&lt;script&gt;alert(&#x27;hostile&#x27;)&lt;/script&gt;" in html
    form = next(f for f in parse_page("/", html).forms if "cron_expression" in f.fields)
    assert form.fields["name"] == [SCRIPT]  # the parser unescapes: the value came back whole
    assert form.fields["cron_expression"] == ["61 25 32 13 8"]
    assert form.fields["timezone"] == ["Europe/Berlin"]
    assert form.fields["recipients"] == ["a@example.com, b@example.com"]
    assert form.fields["frequency"] == ["cron"] and form.fields["formats"] == ["csv"]


def test_a_bad_maintenance_window_keeps_the_reason(world):
    environment = world.objects["environment"]
    client = logged_in(world.operator)
    data = {"starts_at": DEFAULTS["starts_at"], "ends_at": "not a time", "reason": "failover drill"}
    response = client.post(reverse("maintenance-add", args=[environment.slug]), data)
    assert response.status_code == 400
    form = next(f for f in parse_page("/", response.content.decode()).forms if "reason" in f.fields)
    assert form.fields["reason"] == ["failover drill"] and form.fields["starts_at"] == [DEFAULTS["starts_at"]]
