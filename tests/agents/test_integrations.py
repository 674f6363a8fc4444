import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.test import Client

from agents.models import Integration
from tests.conftest import TenantWorld, verified_login
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cr3t-value-that-must-not-leak"


def create(world: TenantWorld) -> dict:
    response = world.client.post(
        "/v1/integrations",
        {
            "kind": "basic_auth",
            "name": "Backoffice",
            "config": {"username": "bot"},
            "secrets": {"password": SECRET},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return dict(response.json())


def raw_column(integration_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secrets FROM agents_integration WHERE public_id = %s", [integration_id]
        )
        return str(cursor.fetchone()[0])


def test_secrets_are_write_only(world: TenantWorld) -> None:
    created = create(world)
    assert created["secrets_set"] == ["password"]
    for response in (
        world.client.get(f"/v1/integrations/{created['id']}"),
        world.client.get("/v1/integrations"),
    ):
        assert SECRET not in response.content.decode()
    events = world.client.get("/v1/audit-events?action=integration.create").content.decode()
    assert SECRET not in events
    assert "password" in events  # which secret fields were set is recorded, never their value


def test_secrets_are_encrypted_at_rest(world: TenantWorld) -> None:
    created = create(world)
    stored = raw_column(created["id"])
    assert SECRET not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert Integration.objects.for_tenant(world.tenant).get(public_id=created["id"]).secrets == {
        "password": SECRET
    }


def test_updating_one_secret_keeps_the_others(world: TenantWorld) -> None:
    created = create(world)
    world.client.patch(
        f"/v1/integrations/{created['id']}", {"config": {"username": "robot"}}, format="json"
    )
    integration = Integration.objects.for_tenant(world.tenant).get(public_id=created["id"])
    assert integration.secrets == {"password": SECRET}
    assert integration.config == {"username": "robot"}


def test_unknown_or_missing_fields_are_named(world: TenantWorld) -> None:
    response = world.client.post(
        "/v1/integrations",
        {
            "kind": "basic_auth",
            "name": "x",
            "config": {"user": "bot"},
            "secrets": {"password": "p", "pin": "1"},
        },
        format="json",
    )
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"config.user", "config.username", "secrets.pin"}
    unknown_kind = world.client.post(
        "/v1/integrations", {"kind": "salesforce", "name": "x"}, format="json"
    )
    assert unknown_kind.json()["errors"][0]["field"] == "kind"


def test_keys_rotate(world: TenantWorld, settings) -> None:
    created = create(world)
    old_token = raw_column(created["id"])
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()

    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_encryption_keys", stdout=open("/dev/null", "w"))  # noqa: PTH123, SIM115
    assert raw_column(created["id"]) != old_token

    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old key is gone: rows still decrypt
    assert Integration.objects.for_tenant(world.tenant).get(public_id=created["id"]).secrets == {
        "password": SECRET
    }


def test_the_admin_masks_secrets(world: TenantWorld) -> None:
    created = create(world)
    integration = Integration.objects.for_tenant(world.tenant).get(public_id=created["id"])
    client = verified_login(Client(), UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/agents/integration/{integration.pk}/change/").content.decode()
    assert SECRET not in page
    assert "password: ••••••" in page


def test_credentials_cannot_carry_line_breaks_or_non_ascii(world: TenantWorld) -> None:
    for token in ("abc\r\nX-Admin: yes", "tökén"):
        response = world.client.post(
            "/v1/integrations",
            {"kind": "bearer_token", "name": "x", "secrets": {"token": token}},
            format="json",
        )
        assert response.status_code == 400
        assert response.json()["errors"][0] == {
            "field": "secrets.token",
            "code": "invalid",
            "message": "Use plain ASCII characters, without line breaks.",
        }
