from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.utils import timezone

from tenants.models import AuditEvent
from tests.api_routes import Call, Route, call_id, calls, send, target_of
from tests.conftest import TenantWorld
from tests.factories import ApiKeyFactory, AuditEventFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("route_call", calls(mutating=True), ids=call_id)
@pytest.mark.parametrize("credential", ["api_key", "session"])
def test_every_mutating_endpoint_writes_an_audit_event(
    world: TenantWorld, route_call: tuple[Route, Call], credential: str
) -> None:
    route, call = route_call
    assert call.audit_action, f"{call.method} {route.name} must name the audit action it records"
    client = world.client if credential == "api_key" else world.session_client()
    target = target_of(route, call, world)
    before = set(AuditEvent.objects.for_tenant(world.tenant).values_list("pk", flat=True))

    response = send(
        client,
        route,
        call,
        world=world,
        target=target,
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_REQUEST_ID="req-audit-1234",
    )
    assert response.status_code < 300, response.content

    new = AuditEvent.objects.for_tenant(world.tenant).exclude(pk__in=before)
    assert call.audit_action in [event.action for event in new]
    event = new.filter(action=call.audit_action).first()
    assert event is not None
    assert event.ip_address == "203.0.113.9"
    assert event.request_id == "req-audit-1234"
    if credential == "api_key":
        assert (event.actor_type, event.actor_id) == ("api_key", world.api_key.public_id)
    else:
        assert (event.actor_type, event.actor_id) == ("user", world.owner.user.public_id)


@pytest.mark.parametrize("route_call", calls(mutating=False), ids=call_id)
def test_reads_write_no_audit_event(world: TenantWorld, route_call: tuple[Route, Call]) -> None:
    route, call = route_call
    before = AuditEvent.objects.for_tenant(world.tenant).count()
    response = send(world.client, route, call, world=world)
    assert response.status_code < 300, response.content
    assert AuditEvent.objects.for_tenant(world.tenant).count() == before


def test_a_role_change_records_before_and_after(world: TenantWorld) -> None:
    world.client.patch(f"/v1/members/{world.member.public_id}", {"role": "editor"}, format="json")
    event = AuditEvent.objects.for_tenant(world.tenant).get(action="membership.update")
    assert event.target_id == world.member.public_id
    assert event.changes == {"role": ["viewer", "editor"]}


def test_audit_rows_cannot_be_changed_or_deleted(world: TenantWorld) -> None:
    event = world.audit_event
    event.action = "forged"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.for_tenant(world.tenant).update(action="forged")
    with pytest.raises(TypeError):
        AuditEvent.all_tenants.filter(pk=event.pk).delete()
    # Below the ORM, the database refuses too.
    for statement in (
        "UPDATE tenants_auditevent SET action = 'forged'",
        "DELETE FROM tenants_auditevent",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            from django.db import connection

            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert AuditEvent.all_tenants.get(pk=event.pk).action == "tenant.update"


def test_audit_events_filter_by_actor_action_target_and_time(world: TenantWorld) -> None:
    old = AuditEventFactory(
        tenant=world.tenant,
        action="api_key.create",
        actor_id="usr_a",
        target_id="key_a",
        created_at=timezone.now() - timedelta(days=3),
    )
    new = AuditEventFactory(
        tenant=world.tenant, action="api_key.revoke", actor_id="usr_b", target_id="key_a"
    )

    def ids(query: str) -> list[str]:
        response = world.client.get(f"/v1/audit-events?{query}")
        assert response.status_code == 200, response.content
        return [e["id"] for e in response.json()["results"]]

    assert ids("action=api_key.create") == [old.public_id]
    assert ids("actor=usr_b") == [new.public_id]
    assert ids("target=key_a") == [new.public_id, old.public_id]
    since = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert old.public_id not in ids(f"since={since}")
    assert ids(f"until={since}&target=key_a") == [old.public_id]


def test_an_audit_event_reads_as_who_did_what_to_what(world: TenantWorld) -> None:
    target = ApiKeyFactory(tenant=world.tenant, name="old laptop")
    world.client.post(f"/v1/api-keys/{target.public_id}/revoke")
    body = world.client.get("/v1/audit-events?action=api_key.revoke").json()["results"][0]
    assert body["actor"] == {
        "type": "api_key",
        "id": world.api_key.public_id,
        "label": f"{world.api_key.name} ({world.api_key.prefix}…)",
    }
    assert body["target"] == {"type": "api_key", "id": target.public_id, "label": "old laptop"}
    assert body["changes"]["revoked_at"][0] is None
