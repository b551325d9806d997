"""Health pages of one environment, under environments/<slug>/health/ (velaops/urls.py)."""

from django.urls import path

from dashboard.monitoring import views

target = "targets/<int:pk>/"

urlpatterns = [
    path("", views.health_overview, name="health-overview"),
    path("live", views.health_overview_live, name="health-overview-live"),
    path(target, views.target_detail, name="target-detail"),
    path(target + "live", views.target_detail_live, name="target-detail-live"),
    path(target + "pause", views.target_pause, name="target-pause"),
    path(target + "resume", views.target_resume, name="target-resume"),
]
