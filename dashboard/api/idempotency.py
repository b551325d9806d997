"""Idempotency-Key on writes: a pipeline's retry of a write returns the first answer and acts once.

The first request with a key inserts a record (user, key) holding a fingerprint of what it asked
(method, path, body); the unique constraint makes a concurrent twin fail to insert, and it is told the
first is still in progress (409) rather than acting too. The first request's answer (its status and
body, errors included) is stored and replayed. A server error is not stored, so a retry may try again.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from ninja.responses import Response

from dashboard.api.errors import ApiError, error_response, to_response
from dashboard.models import IdempotencyRecord

HEADER = "Idempotency-Key"
# How long a key is remembered: a pipeline retries within minutes; Stripe's API, whose header this follows,
# keeps keys 24 hours (docs.stripe.com/api/idempotent_requests). The hourly job deletes older records.
RETENTION = timedelta(hours=24)
MAX_KEY = IdempotencyRecord._meta.get_field("key").max_length


def fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256(f"{request.method} {request.path}\n".encode())
    digest.update(request.body)
    return digest.hexdigest()


def _answer(request: HttpRequest, func, args, kwargs) -> HttpResponse:
    """The operation's answer as a response: (status, data) or data, or the error shape of what it raised."""
    try:
        result = func(request, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every exception has its API answer (errors.HANDLERS)
        return to_response(request, exc)
    if isinstance(result, HttpResponse):
        return result
    status, data = result if isinstance(result, tuple) else (200, result)
    return Response(data, status=status)


def idempotent(func):
    """Wrap a write operation (request first). Its answer is returned as a finished response."""

    @functools.wraps(func)
    def wrapper(request: HttpRequest, *args, **kwargs):
        key = request.headers.get(HEADER)
        if key is None:
            return _answer(request, func, args, kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY or not key.isprintable():
            raise ApiError(
                400, "bad_idempotency_key", f"The {HEADER} header takes 1 to {MAX_KEY} printable characters."
            )
        asked = fingerprint(request)
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(user=request.user, key=key, fingerprint=asked)
        except IntegrityError:
            return _replay(request, key, asked)
        response = _answer(request, func, args, kwargs)
        if response.status_code >= 500:
            record.delete()
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                status_code=response.status_code,
                content_type=response.get("Content-Type", ""),
                body=response.content,
            )
        return response

    return wrapper


def _replay(request: HttpRequest, key: str, asked: str) -> HttpResponse:
    record = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
    if record is None:  # the first one failed with a server error meanwhile: nothing was stored
        return error_response(409, "idempotency_in_progress", "A request with this key is in progress; retry.")
    if record.fingerprint != asked:
        return error_response(
            422, "idempotency_mismatch", f"This {HEADER} was used for another request (method, path or body)."
        )
    if record.status_code is None:
        return error_response(409, "idempotency_in_progress", "A request with this key is still in progress.")
    response = HttpResponse(bytes(record.body), status=record.status_code, content_type=record.content_type)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotency_prune(now: datetime | None = None) -> int:
    """Forget keys older than RETENTION; returns how many records went."""
    cutoff = (now or timezone.now()) - RETENTION
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
