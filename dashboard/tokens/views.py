"""The user's own API tokens: list (with last use), create (the clear token shown on that one answer),
revoke. Only ever the signed-in user's tokens; no role is needed to hold one, since a token acts with its
user's roles and nothing more."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from dashboard.tokens import service
from dashboard.tokens.forms import TokenForm


def _page(request: HttpRequest, form: TokenForm, created=None, status: int = 200) -> HttpResponse:
    context = {"tokens": service.tokens_of(request.user), "form": form, "created": created}
    return render(request, "tokens/token_list.html", context, status=status)


@never_cache
@require_GET
def token_list(request: HttpRequest) -> HttpResponse:
    return _page(request, TokenForm())


@never_cache  # the answer holds the clear token: no cache may keep it
@require_POST
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return _page(request, form, status=400)
    created = service.token_create(user=request.user, name=form.cleaned_data["name"], expires_at=form.expires_at)
    # Rendered, not redirected: the clear token is in this answer only, never in the session or a message.
    return _page(request, TokenForm(), created=created, status=201)


@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    if service.token_revoke(user=request.user, token_id=pk):
        messages.success(request, "Token revoked: it no longer authenticates.")
    else:
        messages.info(request, "That token was revoked already.")
    return redirect("token-list")
