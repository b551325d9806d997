from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.db import OperationalError, connection

from dashboard.models import Incident, ProbeResult, TargetStatus
from dashboard.monitoring.recording import target_status_changed
from tests.monitoring.history import make_target, record

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
STEP = timedelta(seconds=30)


@pytest.fixture
def target(bare_environment):
    return make_target(bare_environment, down_after=3, up_after=2)


def test_first_success_marks_an_unknown_target_up(target):
    recorded = record(target, T0, 12.5, phases={"token": 0.5, "connect": 11.0, "query": 1.0})
    target.refresh_from_db()
    assert (target.status, target.last_latency_ms, target.last_ok) == (TargetStatus.UP, 12.5, True)
    assert recorded.status_changed and recorded.result.phases == {"token": 0.5, "connect": 11.0, "query": 1.0}


def test_down_after_n_failures_opens_an_incident_from_the_first_failure(target):
    record(target, T0)
    record(target, T0 + STEP, ok=False, error="SQLSTATE 08006: first")
    record(target, T0 + 2 * STEP, ok=False, error="second")
    target.refresh_from_db()
    assert target.status == TargetStatus.UP and not Incident.objects.exists()
    record(target, T0 + 3 * STEP, ok=False, error="third")
    target.refresh_from_db()
    incident = Incident.objects.get()
    assert target.status == TargetStatus.DOWN and target.status_since == T0 + STEP
    assert (incident.opened_at, incident.cause, incident.last_error) == (T0 + STEP, "SQLSTATE 08006: first", "third")
    assert incident.failure_count == 3 and incident.is_open


def test_up_after_m_successes_closes_the_incident_with_its_duration(target):
    for index in range(3):
        record(target, T0 + index * STEP, ok=False)
    record(target, T0 + 3 * STEP, ok=False, error="still failing")
    record(target, T0 + 4 * STEP)
    target.refresh_from_db()
    assert target.status == TargetStatus.DOWN  # one success is not enough with up_after=2
    record(target, T0 + 5 * STEP)
    target.refresh_from_db()
    incident = Incident.objects.get()
    assert target.status == TargetStatus.UP
    assert incident.closed_at == T0 + 5 * STEP and incident.duration_seconds() == 150
    assert incident.failure_count == 4 and incident.last_error == "still failing"


def test_status_change_signal_fires_after_commit(target, django_capture_on_commit_callbacks):
    seen = []

    def receiver(sender, target, previous, incident, **kwargs):
        seen.append((previous, target.status, incident.pk if incident else None))

    target_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            record(target, T0)
            for index in range(1, 4):
                record(target, T0 + index * STEP, ok=False)
    finally:
        target_status_changed.disconnect(receiver)
    incident = Incident.objects.get()
    assert seen == [(TargetStatus.UNKNOWN, TargetStatus.UP, None), (TargetStatus.UP, TargetStatus.DOWN, incident.pk)]


def test_recording_clears_the_lease_and_truncates_long_errors(target):
    target.lease_until = T0 + timedelta(minutes=1)
    target.save()
    record(target, T0, ok=False, error="x" * 5000)
    target.refresh_from_db()
    assert target.lease_until is None
    assert len(ProbeResult.objects.get().error) == 2000


def test_a_deleted_target_records_nothing(target):
    pk = target.pk
    target.delete()
    target.pk = pk
    assert record(target, T0) is None
    assert not ProbeResult.objects.exists()


def test_phases_are_stored_to_the_microsecond(target):
    record(target, T0, 12.5, phases={"token": 0.123456789, "connect": 11.0004999, "query": None})
    assert ProbeResult.objects.get().phases == {"token": 0.123, "connect": 11.0}


def test_the_status_change_signal_gets_the_target_as_recorded(target, django_capture_on_commit_callbacks):
    seen = []

    def receiver(sender, target, previous, incident, **kwargs):
        seen.append((target.status, target.last_latency_ms, target.lease_until, target.environment.slug))

    target_status_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            record(target, T0, 12.5)
    finally:
        target_status_changed.disconnect(receiver)
    assert seen == [(TargetStatus.UP, 12.5, None, "bare")]


@pytest.mark.django_db(transaction=True)
def test_recording_locks_the_targets_row_and_not_its_environments(bare_environment):
    target = make_target(bare_environment)
    other = make_target(bare_environment, name="cluster-b")
    settings = connection.settings_dict
    holder = psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname=settings["NAME"],
    )
    try:
        # Another session holds the environment's row (an edit of it, say) and a result of the other target.
        holder.execute("SELECT 1 FROM dashboard_environment WHERE id = %s FOR UPDATE", [bare_environment.pk])
        holder.execute("SELECT 1 FROM dashboard_target WHERE id = %s FOR NO KEY UPDATE", [other.pk])
        with connection.cursor() as cursor:
            cursor.execute("SET lock_timeout = '2s'")
        try:
            assert record(target, T0) is not None  # neither waits for the other session
            with pytest.raises(OperationalError, match="lock timeout"):
                record(other, T0)  # the same target's row: serialised, as two results of one target must be
        finally:
            with connection.cursor() as cursor:
                cursor.execute("RESET lock_timeout")
    finally:
        holder.close()
