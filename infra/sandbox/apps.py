from django.apps import AppConfig


class SandboxConfig(AppConfig):
    """The offline sandbox as an optional Django app: its fault page, its templates and `manage.py sandbox`
    exist only where it is installed (VELAOPS_SANDBOX; on by default with DEBUG, off in the image)."""

    name = "infra.sandbox"
    label = "sandbox"
    verbose_name = "Offline sandbox"
