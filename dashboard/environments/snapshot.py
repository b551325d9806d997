"""One shared snapshot of an environment's live resources in Redis, so that the AWS calls its page makes depend
on time, not on how many people have it open.

Every viewer's 15 s poll reads the snapshot; the first poll to find it older than MAX_AGE refreshes it from AWS
under a Redis lock (single-flight) while the others keep showing the last one with its age. A lone viewer polls
at least MAX_AGE apart (the page's timer starts after each answer), so it reads AWS on each poll as it did
before, and fifty viewers read AWS no more often than one.

A snapshot is keyed by the environment's whole row (a change of configuration reads afresh) and carries the
generation it was read under: `invalidate` (a runbook attempt ended, the environment was saved) bumps the
generation, so the next poll reads AWS again, and a refresh that was under way when the step ended is ignored
rather than shown. When AWS cannot be read at all, the last good snapshot stays on the page with the error and
its age; with Redis away every poll reads live, as it did before there was a snapshot.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from django.core.cache import cache
from redis.exceptions import LockError, RedisError

from dashboard.aws import AWS_EXCEPTIONS, AwsError, describe_error
from dashboard.environments.resources import ResourceState, environment_resources
from dashboard.models import Environment
from dashboard.redis_client import redis_client, redis_key

log = logging.getLogger(__name__)

POLL_SECONDS = 15  # the page's live refresh (data-poll-every)
MAX_AGE = POLL_SECONDS  # a snapshot this old is read again; the page's own polls are never closer than this
LOCK_SECONDS = 30  # longer than a refresh can take (the health URL's 5 s, AWS's timeouts and retries)
WAIT_SECONDS = 10  # a viewer with no snapshot of this generation waits this long for another viewer's refresh
WAIT_STEP = 0.05
KEEP_SECONDS = 24 * 3600  # the last good snapshot, shown with the error while AWS cannot be read


@dataclass(frozen=True)
class Snapshot:
    resources: list[ResourceState]
    error: AwsError | None  # nothing could be read (e.g. the role cannot be assumed)
    read_at: float  # when the resources shown were read (epoch seconds)
    took_ms: int  # how long that read took
    generation: int
    attempted_at: float  # the latest refresh, successful or not: what freshness counts from
    failure: AwsError | None = None  # the latest refresh could not read AWS: the resources are older ones

    def age_seconds(self, now: float | None = None) -> int:
        return max(0, round((now or time.time()) - self.read_at))

    @property
    def read_time(self) -> datetime:
        return datetime.fromtimestamp(self.read_at, UTC)

    @property
    def attempted_time(self) -> datetime:
        return datetime.fromtimestamp(self.attempted_at, UTC)

    @property
    def unreadable(self) -> bool:
        """Nothing of AWS answered: the session failed, or every resource's check failed."""
        return self.error is not None or (bool(self.resources) and all(r.exists is None for r in self.resources))


def environment_snapshot(environment: Environment) -> Snapshot:
    """The environment's resources as its page shows them: the shared snapshot, refreshed when due."""
    key, generation_key = _keys(environment)
    snapshot, generation = _read(key, generation_key)
    if _fresh(snapshot, generation):
        return snapshot
    lock_key = redis_key(f"environment-resources-lock:{environment.pk}")
    try:
        lock = redis_client().lock(lock_key, timeout=LOCK_SECONDS)
        acquired = lock.acquire(blocking=False)
    except RedisError as exc:  # Redis away: read live, as every poll did before the snapshot
        log.warning("environment %s: no snapshot lock (%s); reading AWS directly", environment.slug, exc)
        return _refreshed(environment, key, snapshot, generation)
    if acquired:
        try:
            # Another viewer may have refreshed between our read and our lock.
            snapshot, generation = _read(key, generation_key)
            if _fresh(snapshot, generation):
                return snapshot
            return _refreshed(environment, key, snapshot, generation)
        finally:
            try:
                lock.release()
            except (LockError, RedisError):
                pass  # expired (a refresh longer than LOCK_SECONDS) or Redis gone: it frees itself
    if snapshot is not None and snapshot.generation == generation:
        return snapshot  # being refreshed by another viewer: this one is at most a poll older
    # None of this generation (the first view, or a step just changed the environment): the older one would
    # show what the step changed as it was before, so wait for the refresh under way.
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(WAIT_STEP)
        snapshot, generation = _read(key, generation_key)
        if snapshot is not None and snapshot.generation == generation:
            return snapshot
    if _held(lock_key):
        # AWS answers slowly (a refresh can take its timeouts and retries): wait no longer and do not pile up
        # reads of our own; say so, over what was read before if anything was. The next poll looks again.
        pending = AwsError("ReadInProgress", f"AWS has been read for over {WAIT_SECONDS} s by another request")
        if snapshot is not None:
            return replace(snapshot, failure=pending)
        return Snapshot([], pending, time.time(), 0, generation, attempted_at=time.time())
    return _refreshed(environment, key, snapshot, generation)  # the refreshing viewer went away


def invalidate(environment_id: int) -> None:
    """The environment changed (a runbook attempt ended, its row was saved): its next poll reads AWS again."""
    generation_key = f"environment-resources-generation:{environment_id}"
    try:
        if not cache.add(generation_key, 1, timeout=None):
            cache.incr(generation_key)
    except (RedisError, ValueError) as exc:  # ValueError: the key expired between add and incr
        log.warning("environment %s: snapshot not invalidated: %s", environment_id, exc)


def _held(lock_key: str) -> bool:
    try:
        return bool(redis_client().exists(lock_key))
    except RedisError:
        return False


def _keys(environment: Environment) -> tuple[str, str]:
    # The whole row: whatever of its configuration changes, the resources are read again.
    row = repr([field.value_from_object(environment) for field in environment._meta.concrete_fields])
    digest = hashlib.sha256(row.encode()).hexdigest()[:16]
    return (
        f"environment-resources:{environment.pk}:{digest}",
        f"environment-resources-generation:{environment.pk}",
    )


def _read(key: str, generation_key: str) -> tuple[Snapshot | None, int]:
    found = cache.get_many([key, generation_key])  # one round trip; {} while Redis is away
    snapshot = found.get(key)
    return (snapshot if isinstance(snapshot, Snapshot) else None), int(found.get(generation_key) or 0)


def _fresh(snapshot: Snapshot | None, generation: int) -> bool:
    return snapshot is not None and snapshot.generation == generation and time.time() - snapshot.attempted_at < MAX_AGE


def _refreshed(environment: Environment, key: str, last: Snapshot | None, generation: int) -> Snapshot:
    """Read AWS now and store the result; when nothing could be read, keep the last good resources and say why."""
    started, at = time.monotonic(), time.time()
    error = None
    try:
        resources = environment_resources(environment)
    except AWS_EXCEPTIONS as exc:  # e.g. the role cannot be assumed: nothing else can be read
        resources, error = [], describe_error(exc)
    took_ms = round((time.monotonic() - started) * 1000)
    snapshot = Snapshot(resources, error, at, took_ms, generation, attempted_at=at)
    if snapshot.unreadable and last is not None and not last.unreadable:
        failure = error or next(
            (AwsError(r.error_code, r.error_message) for r in resources if r.error_code),
            AwsError("Unreadable", "no resource could be read"),
        )
        snapshot = replace(last, generation=generation, attempted_at=at, failure=failure)
    cache.set(key, snapshot, timeout=KEEP_SECONDS)
    return snapshot
