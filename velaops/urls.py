from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard import metrics, migration_views, views

migration = "environments/<slug:slug>/migrations/<int:pk>/"

urlpatterns = [
    path("", views.environment_list, name="environment-list"),
    path("environments/<slug:slug>/", views.environment_detail, name="environment-detail"),
    path("environments/<slug:slug>/migrations/start", migration_views.migration_start, name="migration-start"),
    path(migration, migration_views.migration_detail, name="migration-detail"),
    path(migration + "abandon", migration_views.migration_abandon, name="migration-abandon"),
    path(migration + "export.<str:fmt>", migration_views.migration_export, name="migration-export"),
    path(migration + "steps/<int:step_pk>/<str:action>", migration_views.step_action, name="step-action"),
    path(
        migration + "steps/<int:step_pk>/approval/<str:action>",
        migration_views.approval_request,
        name="approval-request",
    ),
    path(migration + "approvals/<int:approval_pk>/approve", migration_views.approval_grant, name="approval-grant"),
    path(migration + "attempts/<int:attempt_pk>/", migration_views.attempt_detail, name="attempt-detail"),
    path(migration + "attempts/<int:attempt_pk>/cancel", migration_views.attempt_cancel, name="attempt-cancel"),
    path("environments/<slug:slug>/health/", include("dashboard.health_urls")),
    path("environments/<slug:slug>/reports/", include("dashboard.report_urls")),
    path("sandbox/", include("dashboard.sandbox_urls")),
    path("healthz", views.healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
