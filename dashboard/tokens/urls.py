"""The user's API tokens page, under account/tokens/ (velaops/urls.py)."""

from django.urls import path

from dashboard.tokens import views

urlpatterns = [
    path("", views.token_list, name="token-list"),
    path("new", views.token_create, name="token-create"),
    path("<int:pk>/revoke", views.token_revoke, name="token-revoke"),
]
