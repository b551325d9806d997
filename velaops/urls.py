from django.apps import apps
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from dashboard.api.app import urls as api_urls
from dashboard.monitoring import metrics
from dashboard.system.views import healthz

urlpatterns = [
    path("", include("dashboard.environments.urls")),
    path("", include("dashboard.runbook.urls")),
    path("environments/<slug:slug>/health/", include("dashboard.monitoring.urls")),
    path("environments/<slug:slug>/readiness/", include("dashboard.readiness.urls")),
    path("environments/<slug:slug>/reports/", include("dashboard.reports.urls")),
    path("environments/<slug:slug>/reports/alerts/", include("dashboard.alerts.urls")),
    path("api/v1/", api_urls),
    path("account/tokens/", include("dashboard.tokens.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
# A bad Host header and other requests Django refuses before any view: JSON under /api/.
handler400 = "dashboard.api.errors.bad_request"

# The sandbox is an optional part: its pages exist only where its app is installed (VELAOPS_SANDBOX).
if apps.is_installed("infra.sandbox"):
    urlpatterns.append(path("sandbox/", include("infra.sandbox.urls")))
