"""Schemathesis against a live server (pytest-django's live_server): property-based requests generated from the
API's OpenAPI document, sent with a superuser's API token (so writes act, not only refusals). Zero server
errors, and every response conforms to the document: its status is documented, its content type and body
match. Bounded: a few examples per operation, so the whole run stays well under a minute.

The summary line (operations, examples, failures) is printed; docs/api.md quotes it.
"""

import itertools
from collections import Counter
from datetime import timedelta

import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from dashboard.api.app import api
from dashboard.models import (
    Environment,
    Incident,
    MaintenanceWindow,
    ProbeResult,
    ReportRequest,
    ReportSchedule,
    Target,
)
from dashboard.runbook import service
from tests.api.conftest import token_for
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True)

# Examples per operation: valid requests (positive), then requests the document says are invalid (negative).
MODES = ((GenerationMode.POSITIVE, 12), (GenerationMode.NEGATIVE, 6))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# The alert settings' webhook URL is resolved (DNS) when saved: no generated host name leaves this machine.
# tests/api/test_resources.py saves the settings with fixed values instead.
NOT_FUZZED = {"alert_settings_update"}


@pytest.fixture
def world(db):
    """Something for every operation to find: an environment (its AWS endpoint a closed local port, so reading
    its resources fails fast and offline), an open migration with an attempt, a target with results and an
    incident, a report request."""
    root = make_user("root", "superuser")
    environment = Environment.objects.create(
        name="Staging",
        slug="staging",
        region="us-east-1",
        account_id="123456789012",
        aws_endpoint_url="http://127.0.0.1:9",
        lambda_function_name="vela-api",
        cloudformation_stacks=[],
    )
    migration = service.migration_start(environment=environment, user=root, source_address="127.0.0.1")
    first = migration.steps.order_by("position").first()
    service.attempt_request(step=first, action="skip", user=root, source_address=None, reason="fuzz")
    target = Target.objects.filter(environment=environment).first() or Target.objects.create(
        environment=environment, kind="lambda_config", name="vela-api"
    )
    now = timezone.now()
    ProbeResult.objects.create(target=target, at=now, ok=False, latency_ms=12.5, error="boom")
    Incident.objects.create(target=target, opened_at=now, cause="boom", failure_count=2)
    report = ReportRequest.objects.create(environment=environment, kind="daily", period_start=now, period_end=now)
    schedule = ReportSchedule.objects.create(environment=environment, name="weekly", frequency="weekly")
    window = MaintenanceWindow.objects.create(
        environment=environment, starts_at=now, ends_at=now + timedelta(hours=1), reason="fuzz"
    )
    known = {
        "slug": environment.slug,
        "migration_id": migration.pk,
        "key": first.key,
        "attempt_id": first.attempts.first().pk,
        "target_id": target.pk,
        "report_id": report.pk,
        "schedule_id": schedule.pk,
        "window_id": window.pk,
    }
    return root, known


def test_schemathesis(live_server, world, capsys):
    schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
    user, known = world
    headers = {"Authorization": f"Bearer {token_for(user)}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    examples, failures, statuses = 0, [], Counter()
    fuzzed = [op for op in operations if op.definition.raw.get("operationId") not in NOT_FUZZED]

    for (mode, max_examples), operation in itertools.product(MODES, fuzzed):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=max_examples,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            nonlocal examples
            examples += 1
            if mode == GenerationMode.POSITIVE and examples % 2 and case.path_parameters:  # noqa: B023 - run() is called in its iteration
                # Every other valid request names objects that exist, so operations act, not only 404.
                case.path_parameters = {name: known.get(name, value) for name, value in case.path_parameters.items()}
            response = case.call(base_url=live_server.url, headers=headers, timeout=30)
            statuses[response.status_code // 100 * 100] += 1
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - collected: every operation runs
            failures.append(f"{mode.value} {operation.method.upper()} {operation.path}: {failure}")

    answered = ", ".join(f"{status // 100}xx: {n}" for status, n in sorted(statuses.items()))
    summary = f"schemathesis: {len(fuzzed)} operations, {examples} examples ({answered}), {len(failures)} failures"
    with capsys.disabled():
        print("\n" + summary)
        for failure in failures:
            print(failure[:3000])
    assert len(fuzzed) == len(operations) - len(NOT_FUZZED)
    assert statuses[200] > len(fuzzed)  # not only refusals: most operations also answered successfully
    assert not failures, summary
