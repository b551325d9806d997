"""The environment pages (velaops/urls.py)."""

from django.urls import path

from dashboard.environments import views

urlpatterns = [
    path("", views.environment_list, name="environment-list"),
    path("environments/<slug:slug>/", views.environment_detail, name="environment-detail"),
]
