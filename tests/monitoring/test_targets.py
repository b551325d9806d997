from dashboard.models import HealthMethod, ProbeKind, Target
from dashboard.monitoring.targets import targets_sync


def kinds(environment):
    return sorted((t.kind, t.name, t.paused) for t in environment.targets.all())


def test_configuring_an_environment_creates_a_target_per_resource(environment):
    assert kinds(environment) == [
        (ProbeKind.API_HEALTH, "vela-api", False),
        (ProbeKind.AURORA, "vela-aurora", False),
        (ProbeKind.DYNAMODB, "vela-users", False),
        (ProbeKind.LAMBDA_CONFIG, "vela-api", False),
    ]
    health = environment.targets.get(kind=ProbeKind.API_HEALTH)
    assert health.health_method == HealthMethod.INVOKE and health.managed


def test_a_health_url_is_probed_by_url_and_a_new_dsql_cluster_gets_its_target(environment):
    environment.api_health_url = "https://api.example.com/health/dsql"
    environment.dsql_cluster_identifier = "abcdefghijklmnopqrstuvwxyz"
    environment.save()
    health = environment.targets.get(kind=ProbeKind.API_HEALTH, paused=False)
    assert (health.name, health.health_method) == ("https://api.example.com/health/dsql", HealthMethod.URL)
    assert environment.targets.get(kind=ProbeKind.DSQL).name == "abcdefghijklmnopqrstuvwxyz"
    # The invoke target it replaces is paused, not deleted: its history stays.
    assert environment.targets.get(kind=ProbeKind.API_HEALTH, name="vela-api").paused


def test_retired_resources_pause_their_targets_and_hand_made_targets_stay(environment):
    Target.objects.create(environment=environment, kind=ProbeKind.DYNAMODB, name="vela-extra")
    environment.aurora_cluster_identifier = ""
    environment.save()
    assert environment.targets.get(kind=ProbeKind.AURORA).paused
    assert not environment.targets.get(name="vela-extra").paused
    assert targets_sync(environment) == {"created": [], "paused": []}
