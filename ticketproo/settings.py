"""TicketProo settings: flat, read from the environment with safe defaults.

Environment variables: DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, TIME_ZONE,
SCHEDULED_TASKS_EMBEDDED, SANDBOX_DATABASE_URL. Scheduler settings live in the one
``SCHEDULED_TASKS`` dict below;
its defaults and documentation are in ``scheduled_tasks/conf.py``.
"""

from pathlib import Path

import dj_database_url

from ticketproo.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
# The fallback key is only good for local development; deployments must set SECRET_KEY.
SECRET_KEY = env_str("SECRET_KEY", "dev-insecure-ticketproo-key-change-me-in-production")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ticketproo.crm",
    "scheduled_tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the static files itself, so they work with DEBUG off behind gunicorn alone.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Keeps the scheduler-down check running in each serving process (no database work).
    "scheduled_tasks.alerts.middleware.AlertMonitorMiddleware",
]

ROOT_URLCONF = "ticketproo.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "ticketproo" / "templates"],
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

WSGI_APPLICATION = "ticketproo.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=0,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's SQLite backend with each SQLite call under the sandbox's fork gate: a snippet's
    # process forked while another thread was inside SQLite would hang on SQLite's locks.
    DATABASES["default"]["ENGINE"] = "scheduled_tasks.db.sqlite3"
    # WAL lets the web server read while a runner writes; a busy timeout makes concurrent
    # runners wait for the write lock instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# WhiteNoise serves STATIC_ROOT (filled by ``collectstatic``; scripts/start.sh runs it when
# DEBUG is off) with gzip/brotli copies. Plain names rather than hashed ones: a manifest
# storage would make every page fail until ``collectstatic`` has run (a fresh checkout, tests).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "scheduled_tasks:task_list"
LOGOUT_REDIRECT_URL = "login"

LOG_DIR = BASE_DIR / "logs"

# The scheduler's settings: one dict, merged over the defaults in scheduled_tasks/conf.py.
SCHEDULED_TASKS = {
    "LOG_FILE": LOG_DIR / "scheduled_tasks.log",
    "EMBEDDED": env_bool("SCHEDULED_TASKS_EMBEDDED", False),
    # "inline" (one machine) or "celery" (workers run the executions: docs/deployment.md).
    "BACKEND": env_str("SCHEDULED_TASKS_BACKEND", "inline"),
    "CELERY_APP": "ticketproo.celery.app",
    "LEASE_SECONDS": env_int("SCHEDULED_TASKS_LEASE_SECONDS", 60),
    # PostgreSQL: the role snippets connect as (``manage.py sync_sandbox_role`` prints it).
    "SANDBOX_DATABASE_URL": env_str("SANDBOX_DATABASE_URL", "") or None,
}

# Celery (ticketproo/celery.py), used when SCHEDULED_TASKS["BACKEND"] is "celery": workers
# run the executions the scheduler claims. The execution row is the truth, so a message may be
# delivered twice or lost: acknowledged late (after the run), one message at a time per worker
# process, and re-delivered if its worker dies. On Redis an unacknowledged message comes back
# after the visibility timeout: it must exceed the longest run (the timeout's upper bound, a
# day) or a long run would be delivered again while it goes on (the row would refuse it, but
# the message would keep coming back).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 25 * 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "scheduled_tasks"
# JSON only: a pickled message is code a broker could make a worker run.
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "scheduler": {"format": "%(asctime)s %(levelname)s [%(name)s] %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        # WatchedFileHandler reopens the file when logrotate moves it away.
        "scheduled_tasks_file": {
            "class": "logging.handlers.WatchedFileHandler",
            "filename": str(SCHEDULED_TASKS["LOG_FILE"]),
            "formatter": "scheduler",
            "delay": True,
        },
    },
    "loggers": {
        "scheduled_tasks": {
            "handlers": ["scheduled_tasks_file"],
            "level": "INFO",
            "propagate": False,
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
}

REST_FRAMEWORK = {
    # Token first: an anonymous request is told how to authenticate (401, not 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "TicketProo scheduler API",
    "DESCRIPTION": "Scheduled tasks, their runs, alerts and statistics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page's scripts come from the installed sidecar package, never from a CDN.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scheduled_tasks.api.schema.add_error_responses",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models have a "status": name each set of choices after its model.
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "scheduled_tasks.models.Execution.Status",
        "AlertStatusEnum": "scheduled_tasks.models.Alert.Status",
        "RunStatusEnum": ["completed", "failed", "timeout"],
    },
}
