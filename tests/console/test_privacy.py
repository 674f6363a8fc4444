"""Settings, Privacy: the retention periods and erasures, for owners and admins."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, Erasure
from tenants.models import AuditEvent, Tenant
from tenants.roles import Role
from tests.calls.lifecycle_data import PERSONAL, conversation_kept, personal_call
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text

pytestmark = pytest.mark.django_db

PRIVACY = reverse("console:settings-privacy")
RETENTION = reverse("console:settings-privacy-retention")
ERASE = reverse("console:settings-privacy-erase")
PERIODS = {
    "recording_retention_days": "30",
    "transcript_retention_days": "180",
    "webhook_body_retention_days": "7",
}


def test_the_page_shows_periods_and_erasures_to_owners_and_admins(world: TenantWorld) -> None:
    page = text(member_client(world, Role.ADMIN).get(PRIVACY))
    assert 'name="recording_retention_days"' in page and 'value="90"' in page
    assert 'data-testid="erasure-form"' in page
    assert world.erasure.public_id in page
    assert ">Privacy</a>" in text(member_client(world).get(reverse("console:settings")))
    viewer = member_client(world, Role.VIEWER)
    assert ">Privacy</a>" not in text(viewer.get(reverse("console:settings")))
    assert viewer.get(PRIVACY).status_code == 403


def test_retention_periods_are_saved_and_audited(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(RETENTION, PERIODS)
    assert response.status_code == 302
    tenant = Tenant.objects.get(pk=world.tenant.pk)
    assert (
        tenant.recording_retention_days,
        tenant.transcript_retention_days,
        tenant.webhook_body_retention_days,
    ) == (30, 180, 7)
    audit = AuditEvent.objects.for_tenant(world.tenant).filter(action="tenant.update").latest("pk")
    assert audit.changes["transcript_retention_days"] == [365, 180]
    assert "The retention periods were saved." in text(client.get(PRIVACY))


def test_a_period_out_of_range_is_explained_next_to_its_field(world: TenantWorld) -> None:
    response = member_client(world).post(RETENTION, {**PERIODS, "recording_retention_days": "0"})
    assert response.status_code == 400
    page = text(response)
    assert "Keep recordings between 1 and 3650 days" in page
    assert 'value="180"' in page  # what was typed stays
    assert Tenant.objects.get(pk=world.tenant.pk).transcript_retention_days == 365


def test_an_erasure_asks_first_then_erases(world: TenantWorld) -> None:
    call = personal_call(world, started_at=timezone.now() - timedelta(days=2))
    client = member_client(world)

    asked = client.post(ERASE, {"phone_number": f" {PERSONAL['number']} "})
    assert asked.status_code == 200
    assert "Erase personal data" in text(asked) and PERSONAL["number"] in text(asked)
    assert 'name="confirmed" value="yes"' in text(asked)
    conversation_kept(call)

    done = client.post(ERASE, {"phone_number": PERSONAL["number"], "confirmed": "yes"})
    assert done.status_code == 302
    erasure = Erasure.objects.for_tenant(world.tenant).exclude(pk=world.erasure.pk).get()
    assert erasure.counts["calls"] == 1
    assert Call.objects.for_tenant(world.tenant).get(pk=call.pk).caller == "[erased]"
    page = text(client.get(PRIVACY))
    assert f"Erased the personal data of 1 call(s) ({erasure.public_id})." in page
    assert erasure.public_id in page and PERSONAL["number"] not in page


def test_a_bad_number_is_explained_and_nothing_is_asked(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(ERASE, {"phone_number": "555-0111"})
    assert response.status_code == 400
    assert "E.164" in text(response)
    own = client.post(ERASE, {"phone_number": world.phone_number.e164, "confirmed": "yes"})
    assert own.status_code == 400
    assert "one of your own numbers" in text(own)
    assert not Erasure.objects.for_tenant(world.tenant).exclude(pk=world.erasure.pk).exists()
