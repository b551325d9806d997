"""Keeping an environment's probe targets in step with its configuration, and pausing or resuming one."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from dashboard.models import AuditEvent, Environment, HealthMethod, ProbeKind, Target


def desired_targets(environment: Environment) -> list[tuple[str, str, dict]]:
    """(kind, name, defaults) for every resource the environment names."""
    wanted: list[tuple[str, str, dict]] = []
    if environment.dsql_cluster_identifier:
        wanted.append((ProbeKind.DSQL, environment.dsql_cluster_identifier, {}))
    if environment.lambda_function_name:
        wanted.append((ProbeKind.LAMBDA_CONFIG, environment.lambda_function_name, {"interval_seconds": 60}))
    if environment.api_health_url:
        wanted.append((ProbeKind.API_HEALTH, environment.api_health_url, {"health_method": HealthMethod.URL}))
    elif environment.lambda_function_name:
        wanted.append((ProbeKind.API_HEALTH, environment.lambda_function_name, {"health_method": HealthMethod.INVOKE}))
    if environment.aurora_cluster_identifier:
        wanted.append((ProbeKind.AURORA, environment.aurora_cluster_identifier, {"interval_seconds": 60}))
    for table in environment.dynamodb_tables:
        wanted.append((ProbeKind.DYNAMODB, table, {"interval_seconds": 60}))
    return wanted


def targets_sync(environment: Environment) -> dict[str, list[str]]:
    """Create a managed target for each configured resource and pause managed targets whose resource
    the environment no longer names (an old DSQL cluster, a decommissioned Aurora): their history stays.
    Targets added by hand are left alone. Returns the names created and paused."""
    wanted = desired_targets(environment)
    created = []
    for kind, name, defaults in wanted:
        _, was_created = Target.objects.get_or_create(
            environment=environment, kind=kind, name=name, defaults={"managed": True, **defaults}
        )
        if was_created:
            created.append(name)
    keys = {(kind, name) for kind, name, _ in wanted}
    stale = [
        target
        for target in environment.targets.filter(managed=True, paused=False)
        if (target.kind, target.name) not in keys
    ]
    for target in stale:
        target.paused = True
        target.save(update_fields=["paused", "changed_at"])
    return {"created": created, "paused": [target.name for target in stale]}


def set_paused(target: Target, paused: bool, *, user, source_address: str | None) -> bool:
    """Pause or resume probing of `target`, with an audit event. Compare-and-set: of two clicks (or two
    operators) only one changes the target and records it; returns whether this one did. A resumed
    target is due at once (its next_due_at passed while it was paused)."""
    with transaction.atomic():
        changed = Target.objects.filter(pk=target.pk, paused=not paused).update(
            paused=paused, changed_at=timezone.now()
        )
        if changed:
            AuditEvent.objects.create(
                environment=target.environment,
                user=user,
                source_address=source_address or None,
                action="target.pause" if paused else "target.resume",
                details={"target_id": target.pk, "target": target.name, "kind": target.kind},
            )
    return bool(changed)
