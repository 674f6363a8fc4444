"""Settings for every environment.

Everything that differs between a laptop and production comes from environment variables, read
here and nowhere else; docs/configuration.md lists each one with its default and meaning.
Without DATABASE_URL and REDIS_URL the product runs embedded: SQLite, an in-memory channel
layer and Celery tasks run in-process.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any

from config.env import (
    UnknownDatabaseScheme,
    env_bool,
    env_int,
    env_list,
    env_str,
    parse_database_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core -------------------------------------------------------------------------------------

DEBUG = env_bool("DEBUG", False)

# An empty key is reported by the system check switchboard.E001 rather than crashing at import,
# so `manage.py check` can say what is wrong. Only DEBUG gets a fixed development key.
SECRET_KEY = env_str("SECRET_KEY") or ("django-insecure-development-only-key" if DEBUG else "")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# The address users and carriers reach this deployment at; used for links in emails.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "config.apps.SwitchboardAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "tenants",
    "agents",
    "calls",
    "workers",
    "billing",
    "console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestContextMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "console.context_processors.console",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
try:
    _database = parse_database_url(DATABASE_URL)
except UnknownDatabaseScheme:
    # The dummy engine refuses every query; the system check switchboard.E003 names the problem.
    _database = {"ENGINE": "django.db.backends.dummy"}
# PostgreSQL connections come from a pool per process: under ASGI every concurrent request runs
# in a thread of its own, so a burst of incoming calls would otherwise open a connection each
# and exhaust the server's max_connections. Requests wait (up to the timeout) for a free one.
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 20)
if _database["ENGINE"] == "django.db.backends.postgresql" and DATABASE_POOL_MAX_SIZE > 0:
    _database.setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env_int("DATABASE_POOL_TIMEOUT", 10),
    }
else:
    _database["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 0)
_database["CONN_HEALTH_CHECKS"] = True
DATABASES = {"default": _database}
# PostgreSQL only: the role the application connects as, subject to row-level security. `migrate`
# (run as the tables' owner) creates it when missing and grants it rows; see docs/security.md.
DATABASE_APP_ROLE = env_str("DATABASE_APP_ROLE", "switchboard_app")
DATABASE_APP_PASSWORD = env_str("DATABASE_APP_PASSWORD", "")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker ----------------------------------------------

REDIS_URL = env_str("REDIS_URL")

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 gives every socket a 5 s read timeout, which breaks the layer's
            # blocking receive on quiet channels (channels_redis#422); reads here wait.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": None}],
                "prefix": "switchboard:channels",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "switchboard"),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# https://docs.celeryq.dev/en/stable/userguide/configuration.html
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True  # task state lives in PostgreSQL, not in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 240)
# After-call work queued this long ago and unfinished is queued again (calls/tasks.py).
POST_CALL_REQUEUE_SECONDS = env_int("POST_CALL_REQUEUE_SECONDS", 600)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "purge-expired-idempotency-keys": {
        "task": "tenants.tasks.purge_expired_idempotency_keys",
        "schedule": 3600.0,
    },
    "sweep-abandoned-calls": {
        "task": "calls.tasks.sweep_abandoned_calls",
        "schedule": 30.0,
    },
    "dispatch-post-call": {"task": "calls.tasks.dispatch_post_call", "schedule": 60.0},
    "deliver-due-webhooks": {"task": "tenants.tasks.deliver_due_webhooks", "schedule": 10.0},
    "close-billing-periods": {"task": "billing.tasks.close_due_periods", "schedule": 3600.0},
    "sync-to-stripe": {"task": "billing.tasks.sync_to_stripe", "schedule": 300.0},
    "reconcile-stripe": {"task": "billing.tasks.reconcile_stripe", "schedule": 86400.0},
    # Tenants' retention periods (docs/privacy.md): a day's delay is within any period.
    "apply-retention": {"task": "calls.tasks.apply_retention", "schedule": 86400.0},
}
# acks_late tasks go back to the queue when a worker dies, after the visibility timeout: it must
# be longer than any task's time limit, or a slow task would run twice at once.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}

# SQLite (the embedded default) ignores an index's covering columns; PostgreSQL uses them.
SILENCED_SYSTEM_CHECKS = (
    ["models.W040"] if DATABASES["default"]["ENGINE"].endswith("sqlite3") else []
)

# --- Users, sessions, security ----------------------------------------------------------------

AUTH_USER_MODEL = "tenants.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Cookies are marked Secure unless DEBUG; deployments behind a TLS-terminating proxy set
# TRUST_X_FORWARDED_PROTO so Django knows the original request was HTTPS.
SECURE_COOKIES = env_bool("SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
# Pages hand htmx the CSRF token themselves, so no script needs to read the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 60 * 60 * 12)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Switchboard")

# Fernet keys for secrets stored in the database (integrations, carrier accounts), newest first.
# DEBUG derives one from SECRET_KEY so `make run` works; production must set them (E004).
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS")
if not FIELD_ENCRYPTION_KEYS and DEBUG:
    import base64
    import hashlib

    FIELD_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(SECRET_KEY.encode()).digest()).decode()
    ]

# --- Email ------------------------------------------------------------------------------------

EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_PORT = env_int("EMAIL_PORT", 587)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Switchboard <noreply@localhost>")

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files and call recordings: a local directory unless S3 is configured.
MEDIA_ROOT = env_str("MEDIA_ROOT", str(BASE_DIR / "media"))
MEDIA_URL = "/media/"  # never served directly: recordings go through the API's permission check
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Or an S3-compatible bucket (AWS S3, MinIO, R2…), through django-storages; without keys boto3
# finds credentials itself (the instance's role, its own configuration).
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
if AWS_STORAGE_BUCKET_NAME:
    from botocore.config import Config as BotoConfig

    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env_str("AWS_S3_ENDPOINT_URL") or None,
            "region_name": env_str("AWS_S3_REGION_NAME") or None,
            "access_key": env_str("AWS_ACCESS_KEY_ID") or None,
            "secret_key": env_str("AWS_SECRET_ACCESS_KEY") or None,
            "addressing_style": env_str("AWS_S3_ADDRESSING_STYLE") or None,
            "location": env_str("AWS_S3_PREFIX"),
            "default_acl": None,  # objects stay private; the API streams recordings
            "file_overwrite": True,
            # Checksums only where S3 requires them: many S3-compatible stores reject the rest.
            "client_config": BotoConfig(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        },
    }
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- API --------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.api.authentication.ApiKeyAuthentication",
        "tenants.api.authentication.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "tenants.api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "tenants.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "tenants.api.problems.problem_exception_handler",
    "PAGE_SIZE": 50,
    # The API speaks JSON only; ?format= is free for endpoints' own use (agent export).
    "URL_FORMAT_OVERRIDE": None,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# https://drf-spectacular.readthedocs.io/en/latest/settings.html
SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": (
        "Configure AI phone agents, provision numbers, read calls and usage. "
        "Authenticate with `Authorization: Bearer <api key>`. Errors are RFC 9457 problem details."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
    "ENUM_NAME_OVERRIDES": {
        "TenantStatusEnum": "tenants.models.Tenant.Status",
        "RoleEnum": "tenants.roles.Role",
        "ApiKeyStatusEnum": ["active", "revoked", "expired"],
        "AgentStatusEnum": "agents.models.Agent.Status",
        "VersionStatusEnum": "agents.models.AgentVersion.Status",
        "PhoneNumberStatusEnum": "agents.models.PhoneNumber.Status",
        "ToolKindEnum": "agents.models.Tool.Kind",
        "CarrierKindEnum": "agents.models.CarrierAccount.Kind",
        "CallStatusEnum": "calls.models.Call.Status",
        "EndReasonEnum": "calls.models.Call.EndReason",
        "OutcomeSourceEnum": "calls.models.Outcome.Source",
        "WebhookEndpointStatusEnum": "tenants.models.WebhookEndpoint.Status",
        "WebhookDeliveryStatusEnum": "tenants.models.WebhookDelivery.Status",
    },
}

# Requests per minute for one API key or signed-in user; each tenant also has its own limit.
API_RATE_LIMIT_PER_PRINCIPAL = env_int("API_RATE_LIMIT_PER_PRINCIPAL", 600)
TENANT_DEFAULT_API_RATE_LIMIT = env_int("TENANT_DEFAULT_API_RATE_LIMIT", 1200)
TENANT_DEFAULT_MAX_CONCURRENT_CALLS = env_int("TENANT_DEFAULT_MAX_CONCURRENT_CALLS", 10)
TENANT_DEFAULT_MAX_AGENTS = env_int("TENANT_DEFAULT_MAX_AGENTS", 50)
TENANT_DEFAULT_MAX_PHONE_NUMBERS = env_int("TENANT_DEFAULT_MAX_PHONE_NUMBERS", 20)
TENANT_DEFAULT_MAX_DOCUMENT_BYTES = env_int("TENANT_DEFAULT_MAX_DOCUMENT_BYTES", 10 * 1024 * 1024)
TENANT_DEFAULT_MAX_OUTBOUND_CALLS_PER_MINUTE = env_int(
    "TENANT_DEFAULT_MAX_OUTBOUND_CALLS_PER_MINUTE", 10
)
TENANT_DEFAULT_MAX_NUMBER_PURCHASES_PER_DAY = env_int(
    "TENANT_DEFAULT_MAX_NUMBER_PURCHASES_PER_DAY", 5
)
TENANT_DEFAULT_RECORDING_RETENTION_DAYS = env_int("TENANT_DEFAULT_RECORDING_RETENTION_DAYS", 90)
TENANT_DEFAULT_TRANSCRIPT_RETENTION_DAYS = env_int("TENANT_DEFAULT_TRANSCRIPT_RETENTION_DAYS", 365)
TENANT_DEFAULT_WEBHOOK_BODY_RETENTION_DAYS = env_int(
    "TENANT_DEFAULT_WEBHOOK_BODY_RETENTION_DAYS", 30
)
# Uploads are read whole (documents are parsed in memory); leave room above the largest limit.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 26 * 1024 * 1024)
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)

# Tools' outbound HTTP reaches public addresses only; these hosts or networks (e.g. an internal
# service, "10.0.0.0/8") are let through anyway.
TOOL_HTTP_ALLOWED_PRIVATE_HOSTS = env_list("TOOL_HTTP_ALLOWED_PRIVATE_HOSTS")
# Connector base URLs other than the vendors' own, e.g. "zendesk=https://support.acme.test".
CONNECTOR_BASE_URLS = dict(
    item.split("=", 1) for item in env_list("CONNECTOR_BASE_URLS") if "=" in item
)
# Where the Twilio SDK sends its requests instead of Twilio's hosts (a regional edge, a proxy).
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL")

# The model. Without OPENAI_API_KEY calls run against the built-in Realtime simulator and are
# marked sandbox. The base URLs point the SDK elsewhere (a proxy, a regional endpoint).
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL")
OPENAI_REALTIME_URL = env_str("OPENAI_REALTIME_URL")
OPENAI_TRANSCRIPTION_MODEL = env_str("OPENAI_TRANSCRIPTION_MODEL", "gpt-4o-mini-transcribe")
# After each call this model tags the outcome and writes the summary (with OPENAI_API_KEY);
# empty: rules and a heuristic decide (docs/calls.md).
OUTCOME_MODEL = env_str("OUTCOME_MODEL", "gpt-4.1-mini")
OUTCOME_MODEL_TIMEOUT = env_int("OUTCOME_MODEL_TIMEOUT", 30)
# A caller who hangs up within this many seconds, before the agent replied, abandoned the call.
OUTCOME_ABANDON_SECONDS = env_int("OUTCOME_ABANDON_SECONDS", 15)
# On the OpenAI SIP path, which SIP header names the number called (default: To).
SIP_ROUTING_HEADER = env_str("SIP_ROUTING_HEADER", "To")
INVITATION_TTL_DAYS = env_int("INVITATION_TTL_DAYS", 7)

# Billing (docs/billing.md). A period is invoiced this long after it ends, so the after-call work
# has tagged its last calls; what arrives later is settled by late-usage lines or credit notes.
BILLING_CLOSE_DELAY_SECONDS = env_int("BILLING_CLOSE_DELAY_SECONDS", 3600)
BILLING_DAYS_UNTIL_DUE = env_int("BILLING_DAYS_UNTIL_DUE", 30)
# Without STRIPE_SECRET_KEY billing is internal only: invoices are issued here and not mirrored.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
# How old a signed Stripe webhook may be, in seconds (replayed old deliveries are refused).
STRIPE_WEBHOOK_TOLERANCE_SECONDS = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 300)
# Where the Stripe SDK sends its requests instead of api.stripe.com (a proxy, a test server).
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
# Stripe refuses meter events older than 35 days.
STRIPE_METER_EVENT_MAX_AGE = timedelta(days=34)

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "config.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "config.logging.JsonFormatter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["request_context"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Every request is logged once by config.middleware; these would repeat it as text.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "ERROR"},
        "uvicorn.access": {"level": "WARNING"},
    },
}
