"""Reports of one environment, under environments/<slug>/reports/."""

from django.urls import path

from dashboard.reports import views

urlpatterns = [
    path("", views.report_archive, name="report-archive"),
    path("generate", views.report_generate, name="report-generate"),
    path("<int:pk>/", views.report_detail, name="report-detail"),
    path("<int:pk>/report.<str:fmt>", views.report_download, name="report-download"),
    path("schedules/new", views.schedule_edit, name="report-schedule-new"),
    path("schedules/<int:pk>/", views.schedule_edit, name="report-schedule-edit"),
    path("schedules/<int:pk>/delete", views.schedule_delete, name="report-schedule-delete"),
]
