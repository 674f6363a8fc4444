"""Public identifiers: a type prefix and 20 random base62 characters, e.g. `ten_3kTq…`.

Database ids never leave the database; every object the API or UI shows carries one of these.
"""

import secrets
import string
from typing import Any

from django.db import models

ALPHABET = string.digits + string.ascii_letters
RANDOM_LENGTH = 20  # about 119 bits, so ids can be neither guessed nor enumerated


def random_base62(length: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{random_base62(RANDOM_LENGTH)}"


def has_prefix(value: str, prefix: str) -> bool:
    return value.startswith(f"{prefix}_") and len(value) == len(prefix) + 1 + RANDOM_LENGTH


class PublicIdField(models.CharField):
    """A read-only public id, generated when the object is instantiated."""

    def __init__(self, prefix: str, **kwargs: Any) -> None:
        self.prefix = prefix
        kwargs.setdefault("max_length", len(prefix) + 1 + RANDOM_LENGTH)
        kwargs.setdefault("editable", False)
        super().__init__(**kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["prefix"] = self.prefix
        if kwargs.get("max_length") == len(self.prefix) + 1 + RANDOM_LENGTH:
            del kwargs["max_length"]
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def get_default(self) -> str:
        return new_public_id(self.prefix)
