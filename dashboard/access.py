"""One place that decides who may see or act on what."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from . import roles
from .models import Environment


def environment_for_viewer(request: HttpRequest, slug: str) -> Environment:
    """The environment named by `slug` if the user may read it; 404 if it does not exist, 403 if not allowed."""
    environment = get_object_or_404(Environment, slug=slug)
    if not roles.can_view(request.user):
        raise PermissionDenied("You need the viewer role to see environments.")
    return environment


def environment_for_operator(request: HttpRequest, slug: str) -> Environment:
    environment = environment_for_viewer(request, slug)
    if not roles.can_operate(request.user):
        raise PermissionDenied("You need the operator role to act on an environment.")
    return environment
