import pytest

from tests.reports.history import make_environment


@pytest.fixture
def env_a(db):
    return make_environment("alpha")


@pytest.fixture
def env_b(db):
    return make_environment("beta")
