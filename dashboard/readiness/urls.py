"""The readiness card of an environment (velaops/urls.py)."""

from django.urls import path

from dashboard.readiness import views

urlpatterns = [
    path("", views.readiness_card, name="readiness-card"),
    path("check", views.readiness_check, name="readiness-check"),
]
