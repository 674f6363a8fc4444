import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.idempotency import idempotency_purge_expired
from tenants.models import ApiKey, AuditEvent, IdempotencyKey, Invitation
from tests.conftest import TenantWorld, make_world, verified_login
from tests.factories import IdempotencyKeyFactory

pytestmark = pytest.mark.django_db

INVITE = {"email": "pat@example.com", "role": "editor"}


def invite(client: APIClient, key: str, body: dict[str, str] = INVITE):
    return client.post("/v1/invitations", body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_a_repeat_replays_the_response_with_one_side_effect(world: TenantWorld) -> None:
    first = invite(world.client, "invite-pat-1")
    second = invite(world.client, "invite-pat-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Invitation.objects.for_tenant(world.tenant).filter(email="pat@example.com").count() == 1
    assert (
        AuditEvent.objects.for_tenant(world.tenant).filter(action="invitation.create").count() == 1
    )


def test_without_a_key_a_repeat_acts_again(world: TenantWorld) -> None:
    body = {"name": "twice", "scopes": ["tenant:read"]}
    world.client.post("/v1/api-keys", body, format="json")
    world.client.post("/v1/api-keys", body, format="json")
    assert ApiKey.objects.for_tenant(world.tenant).filter(name="twice").count() == 2


def test_the_same_key_with_another_body_is_refused(world: TenantWorld) -> None:
    invite(world.client, "invite-1")
    response = invite(world.client, "invite-1", {"email": "sam@example.com", "role": "viewer"})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert not Invitation.objects.for_tenant(world.tenant).filter(email="sam@example.com").exists()


def test_keys_are_per_tenant(world: TenantWorld, other_world: TenantWorld) -> None:
    invite(world.client, "shared-key")
    theirs = invite(other_world.client, "shared-key")
    assert theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs
    assert (
        Invitation.objects.for_tenant(other_world.tenant).filter(email="pat@example.com").exists()
    )


def test_a_failed_request_releases_its_key(world: TenantWorld) -> None:
    bad = invite(world.client, "retry-me", {"email": "not-an-email", "role": "editor"})
    assert bad.status_code == 400
    assert not IdempotencyKey.objects.for_tenant(world.tenant).filter(key="retry-me").exists()
    # The client fixes nothing and retries: it runs again (and fails again), it is not replayed.
    again = invite(world.client, "retry-me", {"email": "not-an-email", "role": "editor"})
    assert again.status_code == 400


def test_a_replayed_key_creation_does_not_repeat_the_secret(world: TenantWorld) -> None:
    body = {"name": "deploy", "scopes": ["tenant:read"]}
    first = world.client.post("/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    second = world.client.post("/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="k1")
    assert first.json()["key"].startswith("sbk_")
    assert second.json()["key"] is None
    assert second.json()["id"] == first.json()["id"]
    assert ApiKey.objects.for_tenant(world.tenant).filter(name="deploy").count() == 1


def test_an_invalid_key_header_is_a_clear_error(world: TenantWorld) -> None:
    response = invite(world.client, "x" * 256)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_an_expired_key_can_be_used_again(world: TenantWorld) -> None:
    invite(world.client, "old-key")
    IdempotencyKey.objects.for_tenant(world.tenant).filter(key="old-key").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = invite(world.client, "old-key", {"email": "new@example.com", "role": "viewer"})
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response


def test_a_claim_abandoned_by_a_dead_process_is_taken_over(world: TenantWorld) -> None:
    first = invite(world.client, "crashed")
    assert first.status_code == 201
    Invitation.all_tenants.filter(email="pat@example.com").delete()
    IdempotencyKey.objects.for_tenant(world.tenant).filter(key="crashed").update(
        response_status=None, response_body=None, created_at=timezone.now() - timedelta(hours=1)
    )
    retried = invite(world.client, "crashed")
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried


def test_expired_records_are_purged(world: TenantWorld) -> None:
    IdempotencyKeyFactory(tenant=world.tenant, expires_at=timezone.now() - timedelta(minutes=1))
    live = IdempotencyKeyFactory(tenant=world.tenant)
    assert idempotency_purge_expired() >= 1
    assert list(IdempotencyKey.objects.for_tenant(world.tenant)) == [live]


@pytest.mark.django_db(transaction=True)
def test_a_concurrent_duplicate_gets_409_while_the_first_runs(fake_twilio) -> None:
    world = make_world("Concurrent", fake_twilio)
    client = APIClient()
    verified_login(client, world.owner.user)  # a session: API-key auth would write to the table
    body = {"name": "slow", "scopes": ["tenant:read"]}

    # Another connection holds a lock that makes the first request's INSERT wait.
    db = settings.DATABASES["default"]
    blocker = psycopg.connect(
        host=db["HOST"],
        port=db["PORT"] or 5432,
        user=db["USER"],
        dbname=connection.settings_dict["NAME"],
    )
    blocker.execute("LOCK TABLE tenants_apikey IN EXCLUSIVE MODE")
    results = {}

    def first_request() -> None:
        try:
            results["first"] = client.post(
                "/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="concurrent"
            )
        finally:
            connection.close()

    thread = threading.Thread(target=first_request)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not IdempotencyKey.objects.for_tenant(world.tenant).filter(key="concurrent").exists():
            assert time.monotonic() < deadline, "the first request never claimed its key"
            time.sleep(0.02)
        duplicate = client.post(
            "/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="concurrent"
        )
    finally:
        blocker.rollback()
        blocker.close()
        thread.join()

    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "idempotency_request_in_progress"
    assert results["first"].status_code == 201
    replay = client.post("/v1/api-keys", body, format="json", HTTP_IDEMPOTENCY_KEY="concurrent")
    assert replay.status_code == 201
    assert replay.json()["id"] == results["first"].json()["id"]
    assert ApiKey.objects.for_tenant(world.tenant).filter(name="slow").count() == 1
