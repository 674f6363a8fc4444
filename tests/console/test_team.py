"""The Team page: members and roles, invitations, inviting people."""

from typing import Any

import pytest
from django.core import mail
from django.urls import reverse

from tenants.models import AuditEvent, Invitation, Membership
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld
from tests.console.conftest import member_client, text

TEAM = reverse("console:team")
INVITE = reverse("console:team-invite")


def role_url(membership: Membership) -> str:
    return reverse("console:team-member-role", kwargs={"id": membership.public_id})


def remove_url(membership: Membership) -> str:
    return reverse("console:team-member-remove", kwargs={"id": membership.public_id})


def test_the_team_lists_members_and_pending_invitations(world: TenantWorld) -> None:
    page = text(member_client(world).get(TEAM))
    assert world.owner.user.email in page
    assert world.member.user.email in page
    assert world.invitation.email in page
    assert 'data-testid="invite-form"' in page
    assert f'aria-label="Role of {world.member.user.email}"' not in page  # a <label>, below
    assert f"Role of {world.member.user.email}" in page
    assert f'aria-label="Remove {world.member.user.email}"' in page


def test_a_viewer_sees_the_team_without_controls(world: TenantWorld) -> None:
    page = text(member_client(world, Role.VIEWER).get(TEAM))
    assert world.member.user.email in page
    assert world.invitation.email in page
    assert 'data-testid="invite-form"' not in page
    assert "<select" not in page
    assert "Remove" not in page and "Revoke" not in page


@pytest.mark.usefixtures("celery_eager")
def test_inviting_emails_a_link_and_lists_the_invitation(
    world: TenantWorld, django_capture_on_commit_callbacks: Any
) -> None:
    client = member_client(world)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(INVITE, {"email": "new.hire@example.com", "role": Role.EDITOR})
    assert response.status_code == 302
    invitation = Invitation.objects.for_tenant(world.tenant).get(email="new.hire@example.com")
    assert invitation.role == Role.EDITOR
    assert [m.to for m in mail.outbox] == [["new.hire@example.com"]]
    page = text(client.get(TEAM))
    assert "Invitation sent to new.hire@example.com" in page
    assert "new.hire@example.com" in page


def test_a_bad_invitation_shows_the_error_next_to_the_field_and_keeps_values(
    world: TenantWorld,
) -> None:
    client = member_client(world)
    response = client.post(INVITE, {"email": world.invitation.email, "role": Role.ADMIN})
    assert response.status_code == 400
    page = text(response)
    assert "is already pending; revoke it to send a new one." in page
    assert f'value="{world.invitation.email}"' in page
    assert '<option value="admin" selected>' in page

    missing = text(client.post(INVITE, {"email": "not an email", "role": Role.ADMIN}))
    assert "Enter a valid email address." in missing
    assert 'value="not an email"' in missing


def test_an_admin_cannot_invite_an_owner_and_is_told_why(world: TenantWorld) -> None:
    response = member_client(world, Role.ADMIN).post(
        INVITE, {"email": "boss@example.com", "role": Role.OWNER}
    )
    assert response.status_code == 400
    assert "members:manage_owners" in text(response)
    assert not Invitation.objects.for_tenant(world.tenant).filter(email="boss@example.com").exists()


def test_changing_a_role(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.post(role_url(world.member), {"role": Role.EDITOR})
    assert response.status_code == 302
    world.member.refresh_from_db()
    assert world.member.role == Role.EDITOR
    assert f"{world.member.user.email} is now editor." in text(client.get(TEAM))
    event = AuditEvent.objects.for_tenant(world.tenant).get(action="membership.update")
    assert event.changes == {"role": [Role.VIEWER, Role.EDITOR]}


def test_the_owner_rules_come_from_the_service_and_are_shown(world: TenantWorld) -> None:
    owner_client = member_client(world)
    refused = owner_client.post(role_url(world.owner), {"role": Role.ADMIN}, follow=True)
    assert "A tenant keeps at least one owner." in text(refused)
    world.owner.refresh_from_db()
    assert world.owner.role == Role.OWNER

    admin = member_client(world, Role.ADMIN)
    promoted = admin.post(role_url(world.member), {"role": Role.OWNER}, follow=True)
    assert "members:manage_owners" in text(promoted)
    world.member.refresh_from_db()
    assert world.member.role == Role.VIEWER


def test_removing_a_member_asks_first(world: TenantWorld) -> None:
    client = member_client(world)
    asked = client.post(remove_url(world.member))
    assert asked.status_code == 200
    assert "Remove member" in text(asked)
    assert 'name="confirmed" value="yes"' in text(asked)
    assert Membership.objects.for_tenant(world.tenant).filter(pk=world.member.pk).exists()

    done = client.post(remove_url(world.member), {"confirmed": "yes"}, follow=True)
    assert f"{world.member.user.email} was removed from the team." in text(done)
    assert not Membership.objects.for_tenant(world.tenant).filter(pk=world.member.pk).exists()


def test_the_last_owner_cannot_be_removed(world: TenantWorld) -> None:
    response = member_client(world).post(remove_url(world.owner), {"confirmed": "yes"}, follow=True)
    assert "The last owner cannot be removed." in text(response)
    assert Membership.objects.for_tenant(world.tenant).filter(pk=world.owner.pk).exists()


def test_revoking_an_invitation_asks_first(world: TenantWorld) -> None:
    client = member_client(world)
    url = reverse("console:team-invitation-revoke", kwargs={"id": world.invitation.public_id})
    asked = client.post(url)
    assert "Revoke invitation" in text(asked)
    assert Invitation.objects.for_tenant(world.tenant).filter(pk=world.invitation.pk).exists()
    done = client.post(url, {"confirmed": "yes"}, follow=True)
    assert f"The invitation to {world.invitation.email} was revoked." in text(done)
    assert not Invitation.objects.for_tenant(world.tenant).filter(pk=world.invitation.pk).exists()


def test_an_editor_cannot_change_the_team(world: TenantWorld) -> None:
    other = factories.MembershipFactory(tenant=world.tenant, role=Role.VIEWER)
    client = member_client(world, Role.EDITOR)
    assert client.post(role_url(other), {"role": Role.ADMIN}).status_code == 403
    assert client.post(INVITE, {"email": "x@example.com", "role": Role.VIEWER}).status_code == 403
    other.refresh_from_db()
    assert other.role == Role.VIEWER
