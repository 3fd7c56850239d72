"""One settings module, driven by the environment (django-environ's FileAwareEnv, so `X_FILE` works).

Development defaults need no server: SQLite and an embedded Celery broker under `var/`.
Production reads `DATABASE_URL`, `REDIS_URL`, `SECRET_KEY`, `FERNET_KEYS` and `ALLOWED_HOSTS`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.FileAwareEnv()
# `ENV_FILE=none` lets tests and containers ignore a developer's .env.
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if _env_file != "none" and Path(_env_file).is_file():
    env.read_env(_env_file)
# Read after .env, so .env may set it too; empty means the default.
VAR_DIR = Path(env.str("VAR_DIR", default="") or BASE_DIR / "var")

# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
FERNET_KEYS = env.list("FERNET_KEYS", default=[])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])

if not DEBUG:
    missing = [
        name
        for name, value in (
            ("SECRET_KEY", SECRET_KEY),
            ("FERNET_KEYS", FERNET_KEYS),
            ("ALLOWED_HOSTS", ALLOWED_HOSTS),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"Refusing to start with DEBUG off: {', '.join(missing)} not set. "
            "Set them in the environment (or NAME_FILE pointing at a secret file); see README › Production."
        )
elif not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is not set. Run `make run` once to write a development .env.")

if any(key == SECRET_KEY for key in FERNET_KEYS):
    raise ImproperlyConfigured(
        "FERNET_KEYS must be separate from SECRET_KEY (rotating one must not lose the other)."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_guid",
    "django_celery_beat",
    "ninja",  # django-ninja's bundled Swagger UI files: the API docs page needs no CDN
    "axes",
    "csp",
    "accounts",
    "integrations",
    "projects",
    "webhooks",
    "tickets",
    "api",
]

MIDDLEWARE = [
    "django_guid.middleware.guid_middleware",  # first: every later log line carries the request id
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "accounts.middleware.RejectNulMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "api.auth.BadTokenThrottleMiddleware",
    "accounts.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "accounts.middleware.SessionTimeoutMiddleware",
    "accounts.notices.NoticeMiddleware",  # after messages and the session timeout: a notice shows once
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.FirstRunMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the lockout page
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

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
        },
    },
]

# ---------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # IMMEDIATE transactions queue on the busy handler instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---------------------------------------------------------------------------
# Passwords, i18n, static files
# ---------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "uploads"

# Uploaded .nessus files are streamed to disk; this caps their size (bytes).
NESSUS_UPLOAD_MAX_BYTES = env.int("NESSUS_UPLOAD_MAX_BYTES", default=512 * 1024 * 1024)
# A Tenable.io export is decoded (gunzipped) under this cap (bytes): a decompression bomb stops here. Exports
# stream through the parser in flat memory, and a million findings are ~1.8 GB, so it is far above the upload cap.
TENABLE_EXPORT_MAX_BYTES = env.int("TENABLE_EXPORT_MAX_BYTES", default=16 * 1024**3)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# ---------------------------------------------------------------------------
# Security (production hardening applies whenever DEBUG is off)
# ---------------------------------------------------------------------------
# A session ends SESSION_MAX_HOURS after sign-in, or after SESSION_IDLE_MINUTES without a request
# (accounts.middleware.SessionTimeoutMiddleware), whichever comes first.
SESSION_COOKIE_AGE = env.int("SESSION_MAX_HOURS", default=12) * 60 * 60
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_MINUTES", default=30) * 60
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Browser features no page here uses are switched off (django-permissions-policy); copying a new API token
# to the clipboard is the one feature the app needs.
PERMISSIONS_POLICY = {
    **{
        feature: []
        for feature in (
            "accelerometer",
            "autoplay",
            "bluetooth",
            "browsing-topics",
            "camera",
            "display-capture",
            "encrypted-media",
            "geolocation",
            "gyroscope",
            "hid",
            "idle-detection",
            "magnetometer",
            "microphone",
            "midi",
            "payment",
            "publickey-credentials-get",
            "screen-wake-lock",
            "serial",
            "usb",
            "xr-spatial-tracking",
        )
    },
    "clipboard-write": ["self"],
}
# Content-Security-Policy (django-csp), development included: everything comes from this site, with no inline
# script, event handler or style and no eval (htmx is configured for that in base.html). The browser reports a
# violation in its console. The API docs (Swagger UI) and the Django admin work under it (one django-celery-beat
# admin template is overridden in templates/admin/djcelery/ for its inline script).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    },
}
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    if env.bool("BEHIND_TLS_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# Sign-in throttling (django-axes): after LOGIN_FAILURE_LIMIT failures a username and a client address are
# each locked for LOGIN_COOLOFF_MINUTES (admins unlock them in Settings › Users). Failures are audited.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_LOCKOUT_CALLABLE = "accounts.throttling.lockout_response"
AXES_CLIENT_IP_CALLABLE = "accounts.network.client_ip"
AXES_DISABLE_ACCESS_LOG = True  # the audit log is the record of sign-ins
# Reverse proxies in front of the app that append to X-Forwarded-For; the client's address is taken from
# there (never trusting entries the client sent). 0 means REMOTE_ADDR is the client.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
# Bad API tokens one address may send within LOGIN_COOLOFF_MINUTES before its API calls get 429.
API_TOKEN_FAILURE_LIMIT = env.int("API_TOKEN_FAILURE_LIMIT", default=10)

# Webhook destinations that would otherwise be refused (private/loopback), e.g. "127.0.0.1/32".
WEBHOOK_ALLOWED_PRIVATE = env.list("WEBHOOK_ALLOWED_PRIVATE", default=[])
WEBHOOK_ALLOW_HTTP = env.bool("WEBHOOK_ALLOW_HTTP", default=False)
# Webhooks: seconds one delivery attempt may take, and attempts before a delivery is marked failed.
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=15.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
# The console's own address, for absolute links in webhook payloads (no trailing slash).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# API URL hosts allowed besides Tenable's own (*.tenable.com over https), e.g. a proxy or the simulator's
# 127.0.0.1; loopback is also allowed while DEBUG is on. Stored keys only ever go to the URL saved with them.
TENABLE_API_HOSTS = env.list("TENABLE_API_HOSTS", default=[])
# Jira Cloud sites are *.atlassian.net over https; other hosts (a proxy, the simulator's 127.0.0.1) must be listed
# here (loopback is also allowed while DEBUG is on). A stored API token only ever goes to the site saved with it.
JIRA_SITE_HOSTS = env.list("JIRA_SITE_HOSTS", default=[])
# After a ticket create whose answer was lost, Jira's search may not show the ticket yet: wait this many seconds
# before concluding it was never created (and creating it again).
TICKETS_SEARCH_SETTLE_SECONDS = env.int("TICKETS_SEARCH_SETTLE_SECONDS", default=30)
# Test Connection answers within this many seconds even if Tenable hangs.
TENABLE_TIMEOUT = (
    env.float("TENABLE_CONNECT_TIMEOUT", default=5.0),
    env.float("TENABLE_READ_TIMEOUT", default=30.0),
)
TENABLE_INTERACTIVE_BUDGET = env.float("TENABLE_INTERACTIVE_BUDGET", default=20.0)
# Background runs: how long to wait for a launched scan, for an export, and how often to poll.
TENABLE_SCAN_WAIT_SECONDS = env.int("TENABLE_SCAN_WAIT_SECONDS", default=6 * 60 * 60)
TENABLE_EXPORT_DEADLINE = env.float("TENABLE_EXPORT_DEADLINE", default=30 * 60.0)
TENABLE_POLL_INITIAL = env.float("TENABLE_POLL_INITIAL", default=5.0)
TENABLE_POLL_MAX = env.float("TENABLE_POLL_MAX", default=60.0)
# Transient failures retry after RUN_RETRY_BASE * 2**attempt seconds; silent runs fail after RUN_STALE_AFTER.
RUN_RETRY_BASE = env.float("RUN_RETRY_BASE", default=30.0)
RUN_STALE_AFTER = env.int("RUN_STALE_AFTER", default=15 * 60)
# Vulnerability-data syncs (Tenable's bulk exports): chunk downloads at once per connection (Tenable asks for
# few requests per key: 1–4), assets per chunk (memory per chunk), database connections merging chunks side by
# side, the overlap taken off the cursor, the longest wait between status polls, the overall deadline (then the
# export job is cancelled), the connection lease's lifetime without a heartbeat, and how long a run waits
# before asking again for a busy connection.
EXPORT_CHUNK_DOWNLOADS = env.int("EXPORT_CHUNK_DOWNLOADS", default=3)
if not 1 <= EXPORT_CHUNK_DOWNLOADS <= 4:
    raise ImproperlyConfigured(
        "EXPORT_CHUNK_DOWNLOADS must be 1 to 4 (Tenable asks for few requests per key)."
    )
EXPORT_NUM_ASSETS = env.int("EXPORT_NUM_ASSETS", default=50)
EXPORT_MERGE_CONNECTIONS = env.int("EXPORT_MERGE_CONNECTIONS", default=2)  # PostgreSQL; SQLite merges on one
EXPORT_CURSOR_OVERLAP = env.int("EXPORT_CURSOR_OVERLAP", default=60 * 60)
EXPORT_POLL_MAX = env.float("EXPORT_POLL_MAX", default=30.0)
EXPORT_SYNC_DEADLINE = env.int("EXPORT_SYNC_DEADLINE", default=90 * 60)
EXPORT_LEASE_SECONDS = env.int("EXPORT_LEASE_SECONDS", default=5 * 60)
EXPORT_LEASE_WAIT = env.float("EXPORT_LEASE_WAIT", default=20.0)

# ---------------------------------------------------------------------------
# Connection keys: rotation reminder, scheduled check, and e-mail to admins
# ---------------------------------------------------------------------------
# Remind admins (card and dashboard) to rotate a connection's keys once they are this many days old; 0 = never.
KEY_ROTATION_DAYS = env.int("KEY_ROTATION_DAYS", default=90)
# Hours between scheduled re-tests of every active connection; one that starts failing is told to each admin once.
CONNECTION_CHECK_HOURS = env.float("CONNECTION_CHECK_HOURS", default=24.0)
# E-mail is sent (to admins, when a connection starts failing) only when EMAIL_HOST is set; otherwise the console
# backend, so nothing leaves the machine.
EMAIL_HOST = env.str("EMAIL_HOST", default="")
EMAIL_PORT = env.int("EMAIL_PORT", default=587)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=True)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tenable Console <tenable-console@localhost>")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_TIMEOUT = 10

# ---------------------------------------------------------------------------
# Celery (cookiecutter-django style: CELERY_ namespace, JSON only)
# ---------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
# A hung or unreachable Redis must not hold a web request (RELIABILITY C4): each publish gives up after
# BROKER_TIMEOUT seconds, once. Run now may publish twice (the run, then the webhook event of its failure),
# so it answers within ~5 s.
BROKER_TIMEOUT = 2
REDIS_TRANSPORT_OPTIONS = {
    "socket_timeout": BROKER_TIMEOUT,
    "socket_connect_timeout": BROKER_TIMEOUT,
    # Publishing gives up on the first connection failure or timeout instead of retrying for seconds.
    "max_retries": 0,
    "retry_on_timeout": False,
    # Must exceed the hard time limit, or long imports get redelivered mid-run (C3).
    "visibility_timeout": 4 * 60 * 60,
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 10,
}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = REDIS_TRANSPORT_OPTIONS
else:
    CELERY_BROKER_URL = "filesystem://localhost//"  # a host name only to quiet kombu's warning
    (CELERY_BROKER_DIR / "out").mkdir(parents=True, exist_ok=True)
    (CELERY_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "out"),
        "data_folder_out": str(CELERY_BROKER_DIR / "out"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=2 * 60 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=2 * 60 * 60 + 300)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-stale-runs": {"task": "projects.tasks.sweep_stale_runs", "schedule": 300.0},
    "expire-risk-acceptances": {"task": "projects.tasks.expire_risk_acceptances", "schedule": 3600.0},
    "sweep-webhooks": {"task": "projects.webhook_tasks.sweep_webhooks", "schedule": 60.0},
    "sweep-ticket-syncs": {"task": "tickets.tasks.sweep_ticket_syncs", "schedule": 60.0},
    "check-connections": {
        "task": "integrations.tasks.check_connections",
        "schedule": CONNECTION_CHECK_HOURS * 3600,
    },
}
# Long imports and short deliveries on separate queues, so a big import never delays a webhook.
CELERY_TASK_ROUTES = {
    "projects.tasks.run_scan": {"queue": "imports"},
    "projects.tasks.import_uploaded_file": {"queue": "imports"},
    "projects.webhook_tasks.deliver_webhook": {"queue": "celery"},
}
CELERY_TASK_DEFAULT_QUEUE = "celery"

# ---------------------------------------------------------------------------
# Logging: secrets never reach a log line (see accounts.logging)
# ---------------------------------------------------------------------------
# Each request gets an id (a sane incoming X-Request-ID, i.e. a UUID, is kept): it is returned in the
# X-Request-ID header, shown on the 500 page and written on every log line, so a report can be traced.
DJANGO_GUID = {"GUID_HEADER_NAME": "X-Request-ID", "VALIDATE_GUID": True, "EXPOSE_HEADER": False}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact": {"()": "accounts.logging.RedactSecretsFilter"},
        "request_id": {"()": "accounts.logging.RequestIdFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "django_guid": {"level": "WARNING"}},
}
