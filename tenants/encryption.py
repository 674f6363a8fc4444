"""Secrets at rest: a model field that stores JSON encrypted with MultiFernet.

FIELD_ENCRYPTION_KEYS lists Fernet keys, newest first. New values are encrypted with the first;
any listed key decrypts, so keys rotate by prepending a new key, running
`manage.py rotate_encryption_keys` (re-encrypts every row with the new key), then dropping the
old one.
"""

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@lru_cache(maxsize=4)
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is not set: secrets cannot be stored "
            "(see docs/configuration.md)."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64-encoded bytes)."
        ) from None


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_json(value: Any) -> str:
    return cipher().encrypt(json.dumps(value, sort_keys=True).encode()).decode()


def decrypt_json(token: str) -> Any:
    try:
        return json.loads(cipher().decrypt(token.encode()))
    except InvalidToken:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEYS: was a key removed "
            "before `manage.py rotate_encryption_keys` ran?"
        ) from None


if TYPE_CHECKING:
    _TextField = models.TextField[dict[str, Any] | None, dict[str, Any]]
else:
    _TextField = models.TextField


class EncryptedJSONField(_TextField):
    """A dict of secrets, encrypted in the database and plain in Python."""

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        return None if value is None else decrypt_json(value)

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else encrypt_json(value)


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedJSONField]]:
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.get_fields()
        if isinstance(field, EncryptedJSONField)
    ]
