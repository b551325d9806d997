"""Creating, checking and revoking personal API tokens. The clear token exists only in the answer to its
creation: the database keeps its SHA-256, and nothing here logs it."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q
from django.utils import timezone

from dashboard.models import ApiToken

PREFIX = "velaops_"
SHOWN_PREFIX = 12  # "velaops_" and four characters: enough to tell tokens apart, nothing to guess with
LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


class TokenRefused(Exception):
    """A presented token that does not authenticate; `code` is the API's error code."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    clear: str  # shown once, to the user who created it


def digest(clear: str) -> str:
    # A fast unsalted hash suffices: the token carries 256 random bits, so there is nothing to brute-force.
    return hashlib.sha256(clear.encode()).hexdigest()


def token_create(*, user: AbstractBaseUser, name: str, expires_at: datetime | None = None) -> NewToken:
    clear = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip(), prefix=clear[:SHOWN_PREFIX], digest=digest(clear), expires_at=expires_at
    )
    return NewToken(token=token, clear=clear)


def token_revoke(*, user: AbstractBaseUser, token_id: int) -> bool:
    """Revoke one of the user's own tokens; False if it is not theirs or was revoked already."""
    return bool(ApiToken.objects.filter(pk=token_id, user=user, revoked_at=None).update(revoked_at=timezone.now()))


def tokens_of(user: AbstractBaseUser) -> list[ApiToken]:
    return list(ApiToken.objects.filter(user=user))


def authenticate(clear: str, now: datetime | None = None) -> ApiToken:
    """The active token `clear` names, with its user; raises TokenRefused saying why not."""
    now = now or timezone.now()
    if not clear.startswith(PREFIX) or len(clear) > 200:
        raise TokenRefused("invalid_token", "The API token is not valid.")
    token = ApiToken.objects.select_related("user").filter(digest=digest(clear)).first()
    if token is None or not token.user.is_active:
        raise TokenRefused("invalid_token", "The API token is not valid.")
    if token.revoked_at is not None:
        raise TokenRefused("token_revoked", "The API token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise TokenRefused("token_expired", "The API token has expired.")
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_EVERY:
        # Conditional, so concurrent requests write it once; a busy pipeline costs one write a minute.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at=None) | Q(last_used_at__lte=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
        token.last_used_at = now
    return token
