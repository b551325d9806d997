"""Alerts of one environment, under environments/<slug>/reports/alerts/ (velaops/urls.py)."""

from django.urls import path

from dashboard.alerts import views

urlpatterns = [
    path("", views.alerts, name="alerts"),
    path("settings", views.alert_settings_edit, name="alert-settings"),
    path("maintenance", views.maintenance_add, name="maintenance-add"),
    path("maintenance/<int:pk>/end", views.maintenance_end, name="maintenance-end"),
]
