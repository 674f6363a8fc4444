"""Idempotent POSTs: the first request with a key runs; repeats replay its stored response.

The key is claimed in its own committed row before the work starts, so a concurrent duplicate
sees it and gets 409; the response is stored in the same transaction as the work, so a replay
can never describe work that was rolled back. Only successful (2xx) responses are kept: a
request that failed releases its key and may be retried as it is.
"""

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tenants.errors import Conflict, InvalidInput, Unprocessable
from tenants.models import IdempotencyKey, Tenant

MAX_KEY_LENGTH = 255
# A claim older than this belongs to a request whose process died; a retry may take it over.
ABANDONED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _validate_key(key: str) -> None:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput.field(
            "Idempotency-Key",
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            code="invalid_idempotency_key",
        )


def idempotency_claim(
    *, tenant: Tenant, key: str, method: str, path: str, fingerprint: str
) -> IdempotencyKey | StoredResponse:
    """Claim `key` for a new request, or return the response stored for an earlier identical one.

    Raises Unprocessable (422) when the key was used for a different request and Conflict (409)
    while the first request with this key is still running.
    """
    _validate_key(key)
    now = timezone.now()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                tenant=tenant,
                key=key,
                fingerprint=fingerprint,
                method=method,
                path=path,
                expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS),
            )
    except IntegrityError:
        pass

    existing = IdempotencyKey.objects.for_tenant(tenant).get(key=key)
    if existing.expires_at <= now:
        # Past its retention the key is free again; deleting by fingerprint too keeps a
        # concurrent reclaim from deleting a fresh claim.
        IdempotencyKey.objects.for_tenant(tenant).filter(
            pk=existing.pk, expires_at__lte=now
        ).delete()
        return idempotency_claim(
            tenant=tenant, key=key, method=method, path=path, fingerprint=fingerprint
        )
    if existing.fingerprint != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request.",
            code="idempotency_key_reused",
        )
    if existing.response_status is not None:
        return StoredResponse(
            existing.response_status, existing.response_body, existing.response_headers
        )
    taken_over = (
        IdempotencyKey.objects.for_tenant(tenant)
        .filter(pk=existing.pk, response_status=None, created_at=existing.created_at)
        .filter(created_at__lt=now - ABANDONED_AFTER)
        .update(created_at=now)
    )
    if taken_over:
        existing.created_at = now
        return existing
    raise Conflict(
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        code="idempotency_request_in_progress",
    )


def idempotency_complete(
    claim: IdempotencyKey, *, status: int, body: Any, headers: dict[str, str]
) -> None:
    """Store the response; call inside the transaction that did the work."""
    claim.response_status = status
    claim.response_body = body
    claim.response_headers = headers
    claim.save(update_fields=["response_status", "response_body", "response_headers"])


def idempotency_release(claim: IdempotencyKey) -> None:
    """Free the key after a failed request, so the client can retry with it."""
    IdempotencyKey.objects.for_tenant(claim.tenant).filter(
        pk=claim.pk, response_status=None
    ).delete()


def idempotency_purge_expired() -> int:
    """Delete stored responses past their retention, tenant by tenant (the index leads with it)."""
    now = timezone.now()
    deleted = 0
    for tenant in Tenant.objects.all():
        count, _ = IdempotencyKey.objects.for_tenant(tenant).filter(expires_at__lte=now).delete()
        deleted += count
    return deleted
