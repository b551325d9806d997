"""Health pages of one environment, under environments/<slug>/health/ (velaops/urls.py)."""

from django.urls import path

from . import health_views

target = "targets/<int:pk>/"

urlpatterns = [
    path("", health_views.health_overview, name="health-overview"),
    path("live", health_views.health_overview_live, name="health-overview-live"),
    path(target, health_views.target_detail, name="target-detail"),
    path(target + "live", health_views.target_detail_live, name="target-detail-live"),
    path(target + "pause", health_views.target_pause, name="target-pause"),
    path(target + "resume", health_views.target_resume, name="target-resume"),
]
