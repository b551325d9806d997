import pytest

from dashboard.models import Step
from dashboard.runbook import service


@pytest.fixture
def migration(environment, operator):
    return service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")


def step(migration, key) -> Step:
    return migration.steps.get(key=key)


def mark(migration, *keys, state=Step.State.SUCCEEDED):
    migration.steps.filter(key__in=keys).update(state=state)
