import pytest
from django.test import Client

from dashboard.runbook import service
from dashboard.tokens.service import token_create


def token_for(user, **kwargs) -> str:
    return token_create(user=user, name="test", **kwargs).clear


def api_client(user, **kwargs) -> Client:
    """A client that sends `user`'s new API token, and no session cookie."""
    return Client(HTTP_AUTHORIZATION=f"Bearer {token_for(user, **kwargs)}")


@pytest.fixture
def as_operator(operator):
    return api_client(operator)


@pytest.fixture
def as_viewer(viewer):
    return api_client(viewer)


@pytest.fixture
def as_approver(approver):
    return api_client(approver)


@pytest.fixture
def migration(environment, operator):
    return service.migration_start(environment=environment, user=operator, source_address="127.0.0.1")
