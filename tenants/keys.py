"""API key format: `sbk_` + 32 random base62 characters + a 6-character CRC32 checksum.

The fixed prefix makes a leaked key recognisable to secret scanners; the checksum lets us refuse
a mistyped or made-up key without touching the database. Only the SHA-256 of a key is stored.
"""

import hashlib
import zlib

from tenants.ids import ALPHABET, random_base62

KEY_PREFIX = "sbk_"
SECRET_LENGTH = 32
CHECKSUM_LENGTH = 6
KEY_LENGTH = len(KEY_PREFIX) + SECRET_LENGTH + CHECKSUM_LENGTH
DISPLAY_LENGTH = len(KEY_PREFIX) + 8
_ALPHABET_SET = frozenset(ALPHABET)


def _checksum(secret: str) -> str:
    value = zlib.crc32(secret.encode("ascii"))
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, remainder = divmod(value, len(ALPHABET))
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def generate_key() -> str:
    secret = random_base62(SECRET_LENGTH)
    return f"{KEY_PREFIX}{secret}{_checksum(secret)}"


def is_well_formed(key: str) -> bool:
    if len(key) != KEY_LENGTH or not key.startswith(KEY_PREFIX):
        return False
    body = key[len(KEY_PREFIX) :]
    if not _ALPHABET_SET.issuperset(body):
        return False
    secret, checksum = body[:SECRET_LENGTH], body[SECRET_LENGTH:]
    return _checksum(secret) == checksum


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_LENGTH]
