"""The environment page's readiness check: asked for by an operator, run by a worker, kept with its findings.

Read-only like the runbook's step (`service.assess`), for the environment's current DSQL cluster. One check at
a time per environment; a check whose worker never finished it is marked failed when the next is asked for.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from dashboard import queue, roles
from dashboard.aws import AWS_EXCEPTIONS, client, describe_error
from dashboard.dsql import cluster_endpoint
from dashboard.models import AuditEvent, Environment, ReadinessCheck
from dashboard.readiness import service

TASK = "tasks.readiness.run_check"
STALE_AFTER = timedelta(minutes=20)  # longer than the check's own waits (a cluster waking, settling)


class CheckRefused(Exception):
    pass


def request_check(environment: Environment, user: AbstractBaseUser, source_address: str | None) -> ReadinessCheck:
    if not roles.can_operate(user):
        raise CheckRefused("You need the operator role to run a readiness check.")
    with transaction.atomic():
        Environment.objects.select_for_update().get(pk=environment.pk)  # one request at a time per environment
        now = timezone.now()
        environment.readiness_checks.filter(
            status__in=ReadinessCheck.ACTIVE, requested_at__lt=now - STALE_AFTER
        ).update(status=ReadinessCheck.Status.FAILED, finished_at=now, error="The check stopped without finishing.")
        if environment.readiness_checks.filter(status__in=ReadinessCheck.ACTIVE).exists():
            raise CheckRefused("A readiness check of this environment is already queued or running.")
        check = ReadinessCheck.objects.create(environment=environment, requested_by=user)
        AuditEvent.objects.create(
            environment=environment,
            user=user,
            source_address=source_address,
            action="readiness.check",
            details={"check": check.pk},
        )
        queue.send_on_commit(TASK, check.pk)
    return check


def run_check(check_id: int) -> str:
    claimed = ReadinessCheck.objects.filter(pk=check_id, status=ReadinessCheck.Status.QUEUED).update(
        status=ReadinessCheck.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return "not queued"
    check = ReadinessCheck.objects.select_related("environment").get(pk=check_id)
    environment = check.environment
    try:
        if not environment.dsql_cluster_identifier:
            raise CheckRefused("The environment has no DSQL cluster yet: provisioning comes first.")
        cluster = client(environment, "dsql").get_cluster(identifier=environment.dsql_cluster_identifier)
        target = service.Target(
            cluster["identifier"],
            cluster["arn"],
            cluster_endpoint(cluster["identifier"], environment.region),
        )
        stacks = bool(environment.cloudformation_stacks)
        found = service.assess(
            environment,
            target,
            mode="stacks" if stacks else "direct",
            log=lambda message: None,
            sleep=time.sleep,
            # Through the stacks the Lambda's grant comes with the API stack's change; say which one.
            policy_change="the API stack's point_lambda change"
            if stacks and environment.stack_changes.get("point_lambda")
            else "",
        )
    except (CheckRefused, *AWS_EXCEPTIONS) as exc:
        message = str(exc) if isinstance(exc, CheckRefused) else str(describe_error(exc))
        ReadinessCheck.objects.filter(pk=check_id).update(
            status=ReadinessCheck.Status.FAILED, finished_at=timezone.now(), error=message
        )
        return "failed"
    ReadinessCheck.objects.filter(pk=check_id).update(
        status=ReadinessCheck.Status.DONE,
        finished_at=timezone.now(),
        findings=[f.as_dict() for f in found],
        summary=service.summary(found),
    )
    return "done"


def latest(environment: Environment) -> ReadinessCheck | None:
    return environment.readiness_checks.select_related("requested_by").first()
