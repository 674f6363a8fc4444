from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from tenants import keys
from tenants.models import ApiKey
from tests.conftest import TenantWorld, key_client
from tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


def test_create_returns_the_secret_once_and_stores_only_its_hash(world: TenantWorld) -> None:
    response = world.client.post(
        "/v1/api-keys", {"name": "CI", "scopes": ["members:read"]}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    secret = body["key"]
    assert keys.is_well_formed(secret)
    assert body["prefix"] == secret[:12]
    assert body["scopes"] == ["members:read"]

    # The plaintext appears in no column of any table.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN ('text', 'character varying', 'jsonb')"
        )
        for table, column in cursor.fetchall():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE %s',  # noqa: S608
                [f"%{secret[4:]}%"],
            )
            assert cursor.fetchone() == (0,), f"{table}.{column} holds the key"

    detail = world.client.get(f"/v1/api-keys/{body['id']}").json()
    assert "key" not in detail
    listed = world.client.get("/v1/api-keys").json()["results"]
    assert all("key" not in item for item in listed)


def test_the_new_key_works_with_exactly_its_scopes(world: TenantWorld) -> None:
    secret = world.client.post(
        "/v1/api-keys", {"name": "read members", "scopes": ["members:read"]}, format="json"
    ).json()["key"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert client.get("/v1/members").status_code == 200
    assert client.get("/v1/").json()["principal"]["permissions"] == ["members:read"]
    refused = client.get("/v1/api-keys")
    assert refused.status_code == 403
    assert refused.json()["detail"] == "This action needs the api_keys:read permission."


def test_write_scope_includes_read(world: TenantWorld) -> None:
    api_key = ApiKeyFactory(tenant=world.tenant, scopes=["members:write"])
    assert key_client(api_key).get("/v1/members").status_code == 200


def test_revoked_key_is_refused_on_the_next_request(world: TenantWorld) -> None:
    victim = ApiKeyFactory(tenant=world.tenant)
    client = key_client(victim)
    assert client.get("/v1/").status_code == 200

    assert world.client.post(f"/v1/api-keys/{victim.public_id}/revoke").status_code == 200

    refused = client.get("/v1/")
    assert refused.status_code == 401
    assert refused.json()["code"] == "revoked_api_key"
    assert refused["WWW-Authenticate"] == 'Bearer realm="api"'


def test_revoking_twice_changes_nothing_the_second_time(world: TenantWorld) -> None:
    first = world.client.post(f"/v1/api-keys/{world.api_key.public_id}/revoke")
    assert first.status_code == 200  # a key may revoke itself
    other = ApiKeyFactory(tenant=world.tenant)
    second = key_client(other).post(f"/v1/api-keys/{world.api_key.public_id}/revoke")
    assert second.json()["revoked_at"] == first.json()["revoked_at"]


def test_a_malformed_or_mistyped_key_is_refused_without_a_query(world: TenantWorld) -> None:
    good = world.api_key.secret
    typo = good[:10] + ("A" if good[10] != "A" else "B") + good[11:]
    for presented in (typo, "sbk_short", "not-a-key", good + "x"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {presented}")
        with CaptureQueriesContext(connection) as queries:
            response = client.get("/v1/")
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_api_key"
        assert len(queries) == 0, [q["sql"] for q in queries]


def test_a_well_formed_unknown_key_is_refused(db: None) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {keys.generate_key()}")
    response = client.get("/v1/")
    assert response.status_code == 401
    assert response.json()["detail"] == "This API key does not exist."


def test_an_expired_key_is_refused(world: TenantWorld) -> None:
    expired = ApiKeyFactory(tenant=world.tenant, expires_at=timezone.now() - timedelta(seconds=1))
    response = key_client(expired).get("/v1/")
    assert response.status_code == 401
    assert response.json()["code"] == "expired_api_key"


def test_expiry_must_be_in_the_future(world: TenantWorld) -> None:
    response = world.client.post(
        "/v1/api-keys",
        {
            "name": "old",
            "scopes": ["tenant:read"],
            "expires_at": (timezone.now() - timedelta(days=1)).isoformat(),
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "expires_at"


def test_last_used_is_recorded_at_most_once_a_minute(world: TenantWorld) -> None:
    api_key = ApiKeyFactory(tenant=world.tenant)
    client = key_client(api_key)
    client.get("/v1/")
    first = ApiKey.all_tenants.get(pk=api_key.pk).last_used_at
    assert first is not None
    client.get("/v1/")
    assert ApiKey.all_tenants.get(pk=api_key.pk).last_used_at == first


def test_unknown_scopes_are_listed(world: TenantWorld) -> None:
    response = world.client.post(
        "/v1/api-keys", {"name": "x", "scopes": ["calls:fly", "tenant:read"]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "scopes.0"


def test_a_key_cannot_mint_a_stronger_key(world: TenantWorld) -> None:
    weak = ApiKeyFactory(tenant=world.tenant, scopes=["api_keys:write"])
    response = key_client(weak).post(
        "/v1/api-keys", {"name": "escalate", "scopes": ["members:write"]}, format="json"
    )
    assert response.status_code == 403
    assert "members:write" in response.json()["detail"]
    same = key_client(weak).post(
        "/v1/api-keys", {"name": "peer", "scopes": ["api_keys:read"]}, format="json"
    )
    assert same.status_code == 201


def test_list_filters_revoked_keys(world: TenantWorld) -> None:
    revoked = ApiKeyFactory(tenant=world.tenant, revoked_at=timezone.now())
    ids = [k["id"] for k in world.client.get("/v1/api-keys?revoked=true").json()["results"]]
    assert ids == [revoked.public_id]
    statuses = {k["id"]: k["status"] for k in world.client.get("/v1/api-keys").json()["results"]}
    assert statuses[revoked.public_id] == "revoked"
    assert statuses[world.api_key.public_id] == "active"
