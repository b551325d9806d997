"""Absolute links back into VelaOps for emails and webhooks (VELAOPS_BASE_URL + the page's path)."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse


def absolute(path: str) -> str:
    return settings.VELAOPS_BASE_URL.rstrip("/") + path


def link_to(name: str, *args, fallback: tuple[str, tuple] | None = None) -> str:
    try:
        return absolute(reverse(name, args=args))
    except NoReverseMatch:
        if fallback is None:
            return ""
        return link_to(fallback[0], *fallback[1])
