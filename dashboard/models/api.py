"""The JSON API's own records: personal API tokens (stored as a digest only) and idempotency records."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A user's personal API token. The clear token is shown once at creation; only its SHA-256 is kept.

    A plain (unsalted, fast) hash is enough because the token is 256 bits of randomness: nothing to guess
    or precompute, and a lookup by digest stays one indexed query per request (docs/api.md).
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What the token is for, e.g. the pipeline that holds it.")
    # The first characters of the clear token ("velaops_ab12"), so a user can tell tokens apart on the page.
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)  # sha256 hex of the clear token
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"API token {self.prefix}… of {self.user}"


class IdempotencyRecord(models.Model):
    """The first response to a write sent with an Idempotency-Key, replayed for a retry with the same key.

    `status_code` is null while the first request is still being handled, so a concurrent retry is told
    to wait instead of acting a second time.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)  # sha256 of method, path and body
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    body = models.BinaryField(default=bytes, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_user_key")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_created")]

    def __str__(self) -> str:
        return f"idempotency key {self.key!r} of {self.user}"
