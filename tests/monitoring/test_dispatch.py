import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from dashboard.models import Target
from dashboard.monitoring.dispatch import claim_due_targets
from tests.monitoring.history import make_target, record

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_new_targets_are_due_and_get_a_lease_and_their_next_time(bare_environment):
    target = make_target(bare_environment, interval_seconds=30, timeout_seconds=10)
    claims = claim_due_targets(NOW, max_in_flight=10)
    assert [(c.target_id, c.interval_seconds, c.timeout_seconds) for c in claims] == [(target.pk, 30, 10)]
    target.refresh_from_db()
    assert target.next_due_at == NOW + timedelta(seconds=30)
    assert target.lease_until == NOW + timedelta(seconds=40)


def test_a_leased_or_paused_or_not_yet_due_target_is_not_claimed(bare_environment):
    make_target(bare_environment, name="leased", lease_until=NOW + timedelta(seconds=5), next_due_at=NOW)
    make_target(bare_environment, name="paused", paused=True)
    make_target(bare_environment, name="later", next_due_at=NOW + timedelta(seconds=1))
    assert claim_due_targets(NOW, max_in_flight=10) == []


def test_the_cadence_is_kept_when_on_time_and_restarts_after_a_gap(bare_environment):
    on_time = make_target(bare_environment, name="on-time", next_due_at=NOW - timedelta(seconds=1))
    late = make_target(bare_environment, name="late", next_due_at=NOW - timedelta(minutes=10))
    claim_due_targets(NOW, max_in_flight=10)
    on_time.refresh_from_db()
    late.refresh_from_db()
    assert on_time.next_due_at == NOW + timedelta(seconds=29)
    assert late.next_due_at == NOW + timedelta(seconds=30)


def test_the_cap_counts_probes_in_flight(bare_environment):
    for index in range(5):
        make_target(bare_environment, name=f"t{index}")
    make_target(
        bare_environment,
        name="running",
        next_due_at=NOW + timedelta(seconds=20),
        lease_until=NOW + timedelta(seconds=9),
    )
    assert len(claim_due_targets(NOW, max_in_flight=3)) == 2
    assert len(claim_due_targets(NOW, max_in_flight=3)) == 0
    # A recorded result ends the lease and makes room.
    record(Target.objects.get(name="running"), NOW)
    assert len(claim_due_targets(NOW, max_in_flight=3)) == 1


def test_an_expired_lease_makes_the_target_claimable_again(bare_environment):
    target = make_target(bare_environment, interval_seconds=5, timeout_seconds=1)
    claim_due_targets(NOW, max_in_flight=10)
    assert claim_due_targets(NOW + timedelta(seconds=10), max_in_flight=10) == []
    assert [c.target_id for c in claim_due_targets(NOW + timedelta(seconds=31), max_in_flight=10)] == [target.pk]


@pytest.mark.django_db(transaction=True)
def test_concurrent_dispatchers_never_claim_the_same_target(bare_environment):
    for index in range(200):
        make_target(bare_environment, name=f"t{index}")
    claimed: list[list[int]] = []
    barrier = threading.Barrier(4)

    def dispatcher():
        try:
            barrier.wait()
            for _ in range(10):
                claimed.append([c.target_id for c in claim_due_targets(NOW, max_in_flight=1000)])
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [target_id for batch in claimed for target_id in batch]
    assert len(ids) == 200 and len(set(ids)) == 200
