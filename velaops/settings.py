"""VelaOps settings: everything that differs between machines comes from the environment."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from velaops.env import env_bool, env_int, env_list, env_networks, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY", required=not DEBUG)
if not SECRET_KEY:
    # Only reachable with DEBUG on: a fixed key that is useless outside a laptop.
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "django_celery_beat",
    "ninja",  # the API's browsable docs (/api/v1/docs) from ninja's bundled Swagger UI, not a CDN
    "dashboard",
]
# The offline sandbox (infra/sandbox) is an optional app: `make run` and the tests install it, the image does not.
if env_bool("VELAOPS_SANDBOX", DEBUG):
    INSTALLED_APPS.append("infra.sandbox")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy on every response: see CONTENT_SECURITY_POLICY
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Every page needs a login unless its view is marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "velaops.urls"
WSGI_APPLICATION = "velaops.wsgi.application"
ASGI_APPLICATION = "velaops.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
            "builtins": ["template_partials.templatetags.partials"],
        },
    }
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/velaops"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (VelaOps relies on its locking and constraints).")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
# Prefix for every key VelaOps writes in Redis, so several installs (and test runs) can share one server.
REDIS_KEY_PREFIX = env_str("REDIS_KEY_PREFIX", "velaops:")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "environment-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Security: strict by default; a TLS-terminating proxy in front is assumed in production.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 12 * 3600, minimum=60)
X_FRAME_OPTIONS = "DENY"
# /healthz is probed over plain HTTP by load balancers and compose.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# Content-Security-Policy (django-csp): scripts and styles are files under static/, none inline, no eval
# (htmx's trigger filters and indicator <style> are off: templates/base.html's htmx-config). The one
# exception is a stored report's own <style>, allowed by hash on its pages (dashboard/csp.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
}

# Django's cache, in Redis: shared by every web and worker process, under the same key prefix. It is an
# optimisation only: the backend answers "not cached" when Redis is away (dashboard/cache.py), quickly.
CACHES = {
    "default": {
        "BACKEND": "dashboard.cache.TolerantRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 1},
    }
}

# Celery: Redis broker, schedule in the database (django-celery-beat). No result backend: every task's
# outcome is a row (attempts, probe results, deliveries) or a Redis stamp, and a result backend's
# reconnect loop would hold every publish for 20 s while Redis is away.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": REDIS_KEY_PREFIX,
    # A message unacknowledged this long is handed to another worker: longer than the longest task
    # (a runbook step's hard limit, tasks/runbook.py), or a slow step would be delivered twice.
    "visibility_timeout": 2 * 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 10,
    "socket_keepalive": True,
    "health_check_interval": 10,
    "retry_on_timeout": True,
}
# A worker waits out a broker outage however long it lasts, reconnecting (and at start).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A publish gives up within about a second: the caller records that the work was not queued.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.3, "interval_max": 0.5}
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 360, minimum=1)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A worker keeps its database connections between tasks as a web process keeps them between requests
# (velaops/celery.py applies CONN_MAX_AGE and the health check around each task). Celery's Django fixup
# otherwise closes them around every task: two connects per probe, half the database's CPU per probe.
# It still closes them all after this many tasks; 0 closes them around every task again.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000, minimum=0)
# Probes wait on the network, not the CPU: they get their own queue, served by a thread-pool worker.
CELERY_TASK_ROUTES = {"tasks.probes.run_probe": {"queue": env_str("PROBE_QUEUE", "probes")}}
if CELERY_TASK_SOFT_TIME_LIMIT >= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_SOFT_TIME_LIMIT must be below CELERY_TASK_TIME_LIMIT.")

# A worker counts as alive on /healthz if its heartbeat task ran within this many seconds.
WORKER_HEARTBEAT_MAX_AGE = env_int("WORKER_HEARTBEAT_MAX_AGE", 90, minimum=10)

# boto3: one place for the client behaviour every AWS call shares.
AWS_CONNECT_TIMEOUT = env_int("AWS_CONNECT_TIMEOUT", 5, minimum=1)
AWS_READ_TIMEOUT = env_int("AWS_READ_TIMEOUT", 30, minimum=1)
AWS_MAX_ATTEMPTS = env_int("AWS_MAX_ATTEMPTS", 5, minimum=1)

# Health monitoring: how probes are scheduled and how long history is kept at each resolution.
PROBE_DISPATCH_SECONDS = env_int("PROBE_DISPATCH_SECONDS", 2, minimum=1)
PROBE_MAX_IN_FLIGHT = env_int("PROBE_MAX_IN_FLIGHT", 200, minimum=1)
PROBE_QUEUE = env_str("PROBE_QUEUE", "probes")
PROBE_RAW_RETENTION = timedelta(hours=env_int("PROBE_RAW_RETENTION_HOURS", 48, minimum=1))
ROLLUP_RETENTION = {
    60: timedelta(days=env_int("ROLLUP_MINUTE_RETENTION_DAYS", 8, minimum=2)),
    3600: timedelta(days=env_int("ROLLUP_HOUR_RETENTION_DAYS", 400, minimum=31)),
    86400: timedelta(days=env_int("ROLLUP_DAY_RETENTION_DAYS", 1830, minimum=366)),
}
# /metrics answers a request bearing this token (Authorization: Bearer ...) or a logged-in viewer.
METRICS_TOKEN = env_str("METRICS_TOKEN", "")

# The offline sandbox's control endpoint (infra/sandbox/control.py): the fault page exists only when this
# is set, and only for the environment whose AWS endpoint the sandbox reports. Empty in production.
SANDBOX_CONTROL_URL = env_str(
    "SANDBOX_CONTROL_URL", f"http://127.0.0.1:{env_int('SANDBOX_PORT', 5000, minimum=1) + 3}" if DEBUG else ""
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # botocore at DEBUG would log signed requests; keep it quiet whatever LOG_LEVEL says.
    "loggers": {"botocore": {"level": "WARNING"}, "boto3": {"level": "WARNING"}},
}

# Email, reports and alerts. Email goes through SMTP when EMAIL_HOST is set; otherwise into files under
# var/mail with DEBUG on (make run's local mailbox), or to the log without it. EMAIL_BACKEND overrides both.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20, minimum=1)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "mail"))
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.console.EmailBackend",
)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set at most one of EMAIL_USE_TLS and EMAIL_USE_SSL.")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "VelaOps <velaops@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Links in emails and webhooks point here (scheme, host and port VelaOps is reached at).
VELAOPS_BASE_URL = env_str("VELAOPS_BASE_URL", f"http://127.0.0.1:{env_int('PORT', 8000, minimum=1)}")
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10, minimum=1)
# Webhooks reach public addresses only (dashboard/alerts/outbound.py); these networks (comma-separated CIDRs)
# are allowed besides, e.g. an internal chat server. Cloud metadata addresses are refused even inside them.
WEBHOOK_ALLOWED_NETWORKS = env_networks("WEBHOOK_ALLOWED_NETWORKS")
# A failed email or webhook is retried after 30 s, 2 min, 8 min, 32 min, then hourly, up to this many attempts.
DELIVERY_MAX_ATTEMPTS = env_int("DELIVERY_MAX_ATTEMPTS", 6, minimum=1)
DELIVERY_RETRY_BASE_SECONDS = env_int("DELIVERY_RETRY_BASE_SECONDS", 30, minimum=1)
# The PDF renderer logs every step at INFO.
LOGGING["loggers"].update({"weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}})
