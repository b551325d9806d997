"""Django's Redis cache, made an optimisation rather than a dependency: while Redis is away, reads miss
and writes are dropped (logged once a minute), so a page that reads through the cache still answers."""

from __future__ import annotations

import logging
import time

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_WARN_EVERY = 60.0  # seconds between two warnings about the same outage


class TolerantRedisCache(RedisCache):
    _last_warning = 0.0

    def _tolerate(self, operation: str, exc: Exception, fallback):
        now = time.monotonic()
        if now - TolerantRedisCache._last_warning > _WARN_EVERY:
            TolerantRedisCache._last_warning = now
            log.warning("cache unavailable, %s skipped: %s", operation, exc)
        return fallback

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            return self._tolerate("get", exc, default)

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            return self._tolerate("get_many", exc, {})

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            super().set(key, value, timeout, version)
        except RedisError as exc:
            self._tolerate("set", exc, None)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set_many(data, timeout, version)
        except RedisError as exc:
            return self._tolerate("set_many", exc, [])

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            return self._tolerate("add", exc, False)

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except RedisError as exc:
            return self._tolerate("delete", exc, False)

    def delete_many(self, keys, version=None):
        try:
            super().delete_many(keys, version)
        except RedisError as exc:
            self._tolerate("delete_many", exc, None)
