import pytest

from dashboard.models import Environment


@pytest.fixture
def bare_environment(db):
    """An environment that names no resources, so it has no managed targets of its own."""
    return Environment.objects.create(name="Bare", slug="bare", region="us-east-1", account_id="123456789012")


@pytest.fixture
def viewer_client(client, viewer):
    """The test client logged in as a viewer: the health pages' reader."""
    client.force_login(viewer)
    return client
