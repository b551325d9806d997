"""A migration run's pages and actions (velaops/urls.py)."""

from django.urls import path

from dashboard.runbook import views

migration = "environments/<slug:slug>/migrations/<int:pk>/"
urlpatterns = [
    path("environments/<slug:slug>/migrations/start", views.migration_start, name="migration-start"),
    path(migration, views.migration_detail, name="migration-detail"),
    path(migration + "abandon", views.migration_abandon, name="migration-abandon"),
    path(migration + "export.<str:fmt>", views.migration_export, name="migration-export"),
    path(migration + "dsql-schema.sql", views.schema_script, name="migration-schema-script"),
    path(migration + "steps/<int:step_pk>/<str:action>", views.step_action, name="step-action"),
    path(
        migration + "steps/<int:step_pk>/approval/<str:action>",
        views.approval_request,
        name="approval-request",
    ),
    path(migration + "approvals/<int:approval_pk>/approve", views.approval_grant, name="approval-grant"),
    path(migration + "attempts/<int:attempt_pk>/", views.attempt_detail, name="attempt-detail"),
    path(migration + "attempts/<int:attempt_pk>/cancel", views.attempt_cancel, name="attempt-cancel"),
    path(migration + "attempts/<int:attempt_pk>/bake-stop", views.bake_stop, name="bake-stop"),
    path(migration + "attempts/<int:attempt_pk>/log.txt", views.attempt_log, name="attempt-log"),
]
