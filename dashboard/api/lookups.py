"""The objects an operation names, found the way the pages find them: through dashboard.access, so a user
who may not see the environment is refused (403, audited) and what does not exist is a 404."""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404, HttpRequest
from django.shortcuts import get_object_or_404

from dashboard.access import environment_for_operator, environment_for_viewer, require_operator
from dashboard.api.errors import ApiError
from dashboard.models import Attempt, Environment, MigrationRun, Step

MAX_LIMIT = 500


def source(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def environment(request: HttpRequest, slug: str, *, operate: str = "") -> Environment:
    if operate:
        return environment_for_operator(request, slug, event=operate)
    return environment_for_viewer(request, slug)


def migration(request: HttpRequest, pk: int, *, operate: str = "") -> MigrationRun:
    found = get_object_or_404(MigrationRun.objects.select_related("environment", "started_by"), pk=pk)
    environment_for_viewer(request, found.environment.slug)
    if operate:
        require_operator(request, found.environment, event=operate, migration=found)
    return found


def step(migration: MigrationRun, key: str) -> Step:
    found = Step.objects.filter(migration=migration, key=key).select_related("migration__environment").first()
    if found is None:
        raise Http404(f"Migration {migration.pk} has no step “{key}”.")
    return found


def attempts() -> QuerySet[Attempt]:
    return Attempt.objects.select_related("step", "requested_by", "migration__environment")


def attempt(request: HttpRequest, pk: int) -> Attempt:
    found = get_object_or_404(attempts(), pk=pk)
    environment_for_viewer(request, found.migration.environment.slug)
    return found


def page(queryset, limit: int, offset: int) -> tuple[list, int]:
    """One page of `queryset` and the total count (limit/offset, as the list operations document). An offset
    past the end is an empty page, however large (PostgreSQL's OFFSET takes a bigint: schemathesis sent more)."""
    count = queryset.count()
    return (list(queryset[offset : offset + limit]) if offset < count else []), count


def validated(form):
    """The page's own form, bound to the request's JSON: its cleaned data, or a 422 with its field errors."""
    if not form.is_valid():
        fields = {name: [str(m) for m in messages] for name, messages in form.errors.items()}
        raise ApiError(422, "validation", "The request is not valid: see the fields.", fields)
    return form.cleaned_data
