"""Surviving a dropped database connection (a PostgreSQL restart, a failover, a proxy timing out).

Django reconnects on the next query once a broken connection is closed, but not by itself: code that
must not lose its write (a running attempt's heartbeat, its log, its outcome) closes it and tries
again, with backoff, for a bounded time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

T = TypeVar("T")
CONNECTION_ERRORS = (OperationalError, InterfaceError)


def reconnecting(operation: Callable[[], T], *, what: str, within: float = 60.0) -> T:
    """Run `operation` (which opens its own transaction, if any); after a connection error, reconnect and
    run it again until `within` seconds have passed, then raise the last error."""
    deadline = time.monotonic() + within
    delay = 0.1
    while True:
        try:
            return operation()
        except CONNECTION_ERRORS as exc:
            if connection.in_atomic_block:
                raise  # the caller's transaction is lost with the connection: only the caller can redo it
            connection.close()
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database connection lost while %s (%s); reconnecting in %.1f s", what, exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
