"""Settings for the test suite: production settings (DEBUG off) with test-only conveniences.

Values go through os.environ so that subprocesses the tests start (a Celery
worker, a web server) inherit exactly the same configuration.
"""

import os
import uuid

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("VELAOPS_SANDBOX", "1")  # the sandbox app and its pages, as `make run` has them
os.environ.setdefault("SECRET_KEY", "test-" + uuid.uuid4().hex * 2)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
# Every Redis key of this run carries its own prefix; the suite deletes them at the end.
os.environ.setdefault("REDIS_KEY_PREFIX", f"velaops-test-{uuid.uuid4().hex[:12]}:")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_MAX_ATTEMPTS", "2")

from velaops.settings import *  # noqa: E402,F403

# The manifest storage needs collectstatic; tests render templates without it.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
# Hashing cost is irrelevant to what the tests check and dominates their run time.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Subprocesses (worker, web server) must see the test database, not the development one.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
