"""Deployment checks, run by `manage.py check` (and before migrate and serve).

Ids are stable so operators can look them up in docs/configuration.md.
"""

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from config.env import UnknownDatabaseScheme, describe_url, parse_database_url


@register("switchboard")
def check_secret_key(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    try:
        configured = bool(settings.SECRET_KEY)
    except Exception:  # Django raises ImproperlyConfigured for an empty key
        configured = False
    if configured:
        return []
    return [
        Error(
            "SECRET_KEY is not set.",
            hint="Set the SECRET_KEY environment variable to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'). "
            "Only DEBUG=1 runs without one.",
            id="switchboard.E001",
        )
    ]


@register("switchboard")
def check_channel_layer(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    if backend.startswith("channels_redis."):
        return []
    return [
        Error(
            f"The channel layer is {backend}, which only works inside one process.",
            hint="Set REDIS_URL: live calls span web and worker processes, "
            "which talk through the Redis channel layer.",
            id="switchboard.E002",
        )
    ]


@register("switchboard")
def check_database_url(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    try:
        parse_database_url(settings.DATABASE_URL)
    except UnknownDatabaseScheme as exc:
        return [
            Error(
                f"DATABASE_URL has an unknown scheme {str(exc)!r}: "
                f"{describe_url(settings.DATABASE_URL)}",
                hint="Use postgres://user:password@host:5432/name, "
                "or sqlite:///path/to/file.sqlite3 for a single-machine trial.",
                id="switchboard.E003",
            )
        ]
    return []


@register("switchboard")
def check_encryption_keys(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    from cryptography.fernet import Fernet

    if not settings.FIELD_ENCRYPTION_KEYS:
        return [
            Error(
                "FIELD_ENCRYPTION_KEYS is not set, so integration and carrier credentials "
                "cannot be stored.",
                hint="Set FIELD_ENCRYPTION_KEYS to a Fernet key: python -c 'from "
                "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'",
                id="switchboard.E004",
            )
        ]
    for key in settings.FIELD_ENCRYPTION_KEYS:
        try:
            Fernet(key.encode())
        except ValueError:
            return [
                Error(
                    "FIELD_ENCRYPTION_KEYS holds a value that is not a Fernet key.",
                    hint="Each key is 32 url-safe base64-encoded bytes, comma-separated.",
                    id="switchboard.E005",
                )
            ]
    return []


@register("switchboard")
def check_background_work(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    if settings.DEBUG or not settings.CELERY_TASK_ALWAYS_EAGER:
        return []
    return [
        Warning(
            "Celery tasks run inside web requests because REDIS_URL is not set.",
            hint="Set REDIS_URL and run a Celery worker and beat (see compose.yaml).",
            id="switchboard.W001",
        )
    ]
