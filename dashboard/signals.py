"""Model signal receivers, connected in DashboardConfig.ready()."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from dashboard.alerts import events  # noqa: F401  (alerts listen to target and attempt events)
from dashboard.environments import receivers  # noqa: F401  (the resources' snapshot follows attempts)
from dashboard.models import Environment


@receiver(post_save, sender=Environment, dispatch_uid="environment_targets_sync")
def environment_saved(sender, instance: Environment, raw: bool = False, **kwargs) -> None:
    # Every way an environment changes (admin, sandbox seed, the runbook provisioning or
    # retiring a DSQL cluster) keeps its probe targets in step.
    if raw:
        return
    from dashboard.monitoring.targets import targets_sync

    targets_sync(instance)
