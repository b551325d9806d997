from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission

from dashboard import roles
from dashboard.models import Environment
from dashboard.redis_client import redis_client
from tests.fixtures.botocore_data import share_parsed_data_files
from tests.sandbox.helpers import ready_for_bake

share_parsed_data_files()  # before any boto3 Session of the run

pytest_plugins = ["tests.fixtures.aws", "tests.fixtures.sandbox", "tests.fixtures.outages"]


@pytest.fixture(scope="session", autouse=True)
def _delete_redis_keys_of_this_run():
    yield
    client = redis_client()
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)


def clear_django_cache() -> None:
    """Delete this run's cache entries (Django's RedisCache.clear() would flush the whole Redis database)."""
    client = redis_client()
    keys = list(client.scan_iter(match=f"{settings.REDIS_KEY_PREFIX}cache:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: history a test rewrites must not be read from an earlier one."""
    clear_django_cache()
    yield


def make_user(username: str, role: str | None):
    # Transactional tests truncate every table, the data migration's groups included.
    roles.install_groups(Group, Permission)
    user = get_user_model().objects.create_user(username=username, password="pw-" + username)
    if role == "superuser":
        user.is_superuser = user.is_staff = True
        user.save()
    elif role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db):
    return make_user("vera", "viewer")


@pytest.fixture
def operator(db):
    return make_user("otto", "operator")


@pytest.fixture
def approver(db):
    return make_user("april", "approver")


@pytest.fixture
def outsider(db):
    """Logged in, but holds no role."""
    return make_user("nobody", None)


@pytest.fixture
def superuser(db):
    return make_user("root", "superuser")


@pytest.fixture
def environment(db):
    return Environment.objects.create(
        name="Staging",
        slug="staging",
        region="us-east-1",
        account_id="123456789012",
        lambda_function_name="vela-api",
        aurora_cluster_identifier="vela-aurora",
        dynamodb_tables=["vela-users"],
        # No stack named: the direct-API runbook, chosen without asking AWS (these tests reach no AWS).
        cloudformation_stacks=[],
    )


FRESH_SANDBOX_FIXTURES = {"fresh_sandbox_environment", "fresh_direct_sandbox_environment"}
NEXT_TEST = pytest.StashKey()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item, nextitem):
    # Before the test's fixtures are torn down: they may look at what runs next.
    item.stash[NEXT_TEST] = nextitem


def reseed_sandbox(sandbox) -> None:
    """An empty moto, then Vela as its stacks hold it."""
    from infra.sandbox.seed import seed_account

    sandbox.moto.reset()
    sandbox.moto.configure(sandbox.config.dsql_creating_seconds)
    sandbox.account = seed_account(sandbox.config)


@pytest.fixture
def fresh_direct_sandbox_environment(request, sandbox, db):
    """The sandbox account as seeded, then released from its stacks (every resource retained, the stacks
    deleted): an environment whose resources no stack owns, migrated by the direct-API runbook."""
    from infra.sandbox import stacks
    from infra.sandbox.seed import _client

    reseed_sandbox(sandbox)
    stacks.release(sandbox.config, lambda service: _client(sandbox.config, service))
    environment = sandbox.seed_environment()
    environment.cloudformation_stacks = []
    environment.save(update_fields=["cloudformation_stacks"])
    yield ready_for_bake(environment)
    # The other tests expect Vela as its stacks hold it; a next test that makes a fresh account reseeds anyway
    # (a reseed after a migration takes seconds), and after the last test nothing needs it.
    following = request.node.stash.get(NEXT_TEST, None)
    if following is not None and not FRESH_SANDBOX_FIXTURES.intersection(following.fixturenames):
        reseed_sandbox(sandbox)


@pytest.fixture
def fresh_sandbox_environment(sandbox, db):
    """The sandbox account as seeded, whatever earlier tests did to it (migrations delete Aurora)."""
    reseed_sandbox(sandbox)
    return ready_for_bake(sandbox.seed_environment())
