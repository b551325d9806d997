"""The whole probing path with real parts: beat's dispatch task leases due targets, a real Celery
worker process (the probes queue, a thread pool) on the real Redis broker runs the probes against the
sandbox, and the results land in PostgreSQL."""

import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from dashboard.models import ProbeKind, ProbeResult, Target, TargetStatus
from dashboard.monitoring.dispatch import claim_due_targets
from tasks.probes import dispatch_probes, run_probe
from tests.fixtures.workers import running_worker
from tests.sandbox.helpers import create_active_dsql_cluster

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def probe_worker():
    queue = settings.CELERY_TASK_ROUTES["tasks.probes.run_probe"]["queue"]
    with running_worker("--queues", queue, "--pool", "threads", "--concurrency", "8") as worker:
        yield worker


def wait_for(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_dispatched_probes_of_every_kind_are_run_by_a_worker_and_recorded(
    sandbox, fresh_sandbox_environment, probe_worker
):
    environment = fresh_sandbox_environment
    cluster = create_active_dsql_cluster(sandbox)
    environment.dsql_cluster_identifier = cluster["identifier"]
    environment.save()
    targets = {target.kind for target in Target.objects.filter(environment=environment, paused=False)}
    assert targets == {
        ProbeKind.DSQL,
        ProbeKind.LAMBDA_CONFIG,
        ProbeKind.API_HEALTH,
        ProbeKind.AURORA,
        ProbeKind.DYNAMODB,
    }
    active = Target.objects.filter(environment=environment, paused=False)

    # The fixture's own history (a dozen probes of the API route for the bake's baseline) is left aside.
    before = ProbeResult.objects.filter(target__environment=environment).count()
    assert dispatch_probes() == active.count()
    assert dispatch_probes() == 0  # all leased: nothing piles up
    wait_for(lambda: ProbeResult.objects.filter(target__environment=environment).count() == before + active.count())

    dsql = ProbeResult.objects.get(target__kind=ProbeKind.DSQL)
    assert dsql.ok, dsql.error
    assert set(dsql.phases) >= {"token", "connect", "query"}
    assert dsql.latency_ms == pytest.approx(sum(dsql.phases[p] for p in ("token", "connect", "query")), abs=0.01)
    for kind in (ProbeKind.AURORA, ProbeKind.DYNAMODB):
        assert all(result.ok for result in ProbeResult.objects.filter(target__kind=kind))
    assert all(target.lease_until is None for target in active.all())
    assert Target.objects.get(kind=ProbeKind.DSQL, environment=environment).status == TargetStatus.UP


def test_a_missing_resource_opens_an_incident_through_the_worker(sandbox, probe_worker):
    environment = sandbox.seed_environment()
    Target.objects.filter(environment=environment).update(paused=True)
    target = Target.objects.create(
        environment=environment, kind=ProbeKind.DYNAMODB, name="vela-missing", down_after=2, interval_seconds=5
    )
    for expected in (1, 2):
        Target.objects.filter(pk=target.pk).update(next_due_at=None)
        assert dispatch_probes() == 1
        wait_for(lambda expected=expected: ProbeResult.objects.filter(target=target).count() == expected)
    target.refresh_from_db()
    incident = target.incidents.get()
    assert target.status == TargetStatus.DOWN
    assert "vela-missing" in incident.cause and incident.is_open


def test_a_probe_dropped_for_waiting_too_long_frees_its_target_at_once(sandbox, probe_worker):
    environment = sandbox.seed_environment()
    Target.objects.filter(environment=environment).update(paused=True)
    target = Target.objects.create(environment=environment, kind=ProbeKind.DYNAMODB, name="vela-users-2")
    [claim] = claim_due_targets(timezone.now(), max_in_flight=10)
    assert claim.target_id == target.pk
    # As if it had sat in the queue past its interval: the worker drops it instead of running it late.
    run_probe.apply_async((target.pk,), expires=timezone.now() - timedelta(seconds=1))
    wait_for(lambda: Target.objects.get(pk=target.pk).lease_until is None)
    assert not ProbeResult.objects.filter(target=target).exists()
