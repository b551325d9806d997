from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "VelaOps"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dashboard import signals  # noqa: F401  (connects the receivers)
