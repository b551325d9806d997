"""Reports and alerts of one environment, under environments/<slug>/reports/."""

from django.urls import path

from . import alert_views, report_views

urlpatterns = [
    path("", report_views.report_archive, name="report-archive"),
    path("generate", report_views.report_generate, name="report-generate"),
    path("<int:pk>/", report_views.report_detail, name="report-detail"),
    path("<int:pk>/report.<str:fmt>", report_views.report_download, name="report-download"),
    path("schedules/new", report_views.schedule_edit, name="report-schedule-new"),
    path("schedules/<int:pk>/", report_views.schedule_edit, name="report-schedule-edit"),
    path("schedules/<int:pk>/delete", report_views.schedule_delete, name="report-schedule-delete"),
    path("alerts/", alert_views.alerts, name="alerts"),
    path("alerts/settings", alert_views.alert_settings_edit, name="alert-settings"),
    path("alerts/maintenance", alert_views.maintenance_add, name="maintenance-add"),
    path("alerts/maintenance/<int:pk>/end", alert_views.maintenance_end, name="maintenance-end"),
]
