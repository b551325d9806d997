"""Django's Redis cache, made an optimisation rather than a dependency: while Redis is away, reads miss
and writes are dropped (logged once a minute), so a page that reads through the cache still answers."""

from __future__ import annotations

import functools
import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

_WARN_EVERY = 60.0  # seconds between two warnings about the same outage
_last_warning = 0.0


def _tolerant(fallback):
    """The method answers `fallback()` (a miss, nothing written) when Redis cannot be reached."""

    def decorate(method):
        @functools.wraps(method)
        def tolerant(self, *args, **kwargs):
            global _last_warning
            try:
                return method(self, *args, **kwargs)
            except RedisError as exc:
                if time.monotonic() - _last_warning > _WARN_EVERY:
                    _last_warning = time.monotonic()
                    log.warning("cache unavailable, %s skipped: %s", method.__name__, exc)
                return fallback(*args, **kwargs)

        return tolerant

    return decorate


class TolerantRedisCache(RedisCache):
    get = _tolerant(lambda key, default=None, version=None: default)(RedisCache.get)
    get_many = _tolerant(lambda *a, **k: {})(RedisCache.get_many)
    set = _tolerant(lambda *a, **k: None)(RedisCache.set)
    set_many = _tolerant(lambda *a, **k: [])(RedisCache.set_many)
    add = _tolerant(lambda *a, **k: False)(RedisCache.add)
    delete = _tolerant(lambda *a, **k: False)(RedisCache.delete)
    delete_many = _tolerant(lambda *a, **k: None)(RedisCache.delete_many)
