"""An owner invites someone; they follow the emailed link, create an account, enrol TOTP, join."""

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenants.models import AuditEvent, Invitation, Membership
from tests.conftest import TenantWorld, verified_login
from tests.factories import InvitationFactory, UserFactory
from tests.tenants.test_sign_in import code, password_step

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("celery_eager")]


def invite(world: TenantWorld, email: str, role: str, capture) -> str:
    with capture(execute=True):
        response = world.session_client().post(
            "/v1/invitations", {"email": email, "role": role}, format="json"
        )
    assert response.status_code == 201, response.content
    message = mail.outbox[-1]
    assert message.to == [email]
    assert world.tenant.name in message.subject
    match = re.search(r"http://\S+/accounts/invitations/\S+/", message.body)
    assert match, message.body
    return urlsplit(match.group(0)).path


def test_a_new_person_joins_through_the_link(
    world: TenantWorld,
    django_capture_on_commit_callbacks,
) -> None:
    path = invite(world, "newcomer@example.com", "editor", django_capture_on_commit_callbacks)
    client = Client()

    form = client.get(path)
    assert form.status_code == 200
    assert f"Join {world.tenant.name}" in form.content.decode()

    weak = client.post(path, {"name": "New", "password": "short", "password_again": "short"})
    assert "This password is too short" in weak.content.decode()
    assert 'value="New"' in weak.content.decode()  # what was typed is kept

    strong = "a long and unusual passphrase"
    created = client.post(path, {"name": "New", "password": strong, "password_again": strong})
    assert created["Location"] == "/accounts/login/enroll/"
    client.get("/accounts/login/enroll/")
    device = TOTPDevice.objects.get(user__email="newcomer@example.com")
    enrolled = client.post("/accounts/login/enroll/", {"token": code(device)})
    assert enrolled["Location"] == path

    accept_page = client.get(path)
    assert "Accept and join" in accept_page.content.decode()
    accepted = client.post(path)
    assert accepted["Location"] == "/"

    membership = Membership.objects.for_tenant(world.tenant).get(user__email="newcomer@example.com")
    assert membership.role == "editor"
    assert (
        not Invitation.objects.for_tenant(world.tenant)
        .filter(email="newcomer@example.com")
        .exists()
    )
    events = AuditEvent.objects.for_tenant(world.tenant).order_by("created_at")
    joined = list(events.filter(action__in=["membership.create", "invitation.accept"]))
    assert [(e.action, e.actor_id) for e in joined] == [
        ("membership.create", membership.user.public_id),
        ("invitation.accept", membership.user.public_id),
    ]
    assert joined[0].target_id == membership.public_id
    assert client.get("/v1/").json()["principal"]["role"] == "editor"

    assert client.get(path).status_code == 404  # the link works once


def test_an_existing_user_signs_in_to_accept(
    world: TenantWorld,
    django_capture_on_commit_callbacks,
) -> None:
    user = UserFactory(email="known@example.com")
    path = invite(world, "known@example.com", "viewer", django_capture_on_commit_callbacks)
    page = Client().get(path).content.decode()
    assert "Sign in as known@example.com" in page
    assert f"/accounts/login/?next={path}" in page

    client = verified_login(Client(), user)
    client.post(path)
    assert Membership.objects.for_tenant(world.tenant).filter(user=user, role="viewer").exists()


def test_someone_else_cannot_accept(world: TenantWorld) -> None:
    InvitationFactory(tenant=world.tenant, email="right@example.com", token="tok-right")
    client = verified_login(Client(), UserFactory(email="wrong@example.com"))
    page = client.get("/accounts/invitations/tok-right/").content.decode()
    assert "You are signed in as wrong@example.com" in page
    client.post("/accounts/invitations/tok-right/")
    assert (
        not Membership.objects.for_tenant(world.tenant)
        .filter(user__email="wrong@example.com")
        .exists()
    )


def test_an_expired_or_unknown_link_explains_itself(world: TenantWorld) -> None:
    InvitationFactory(
        tenant=world.tenant, token="tok-old", expires_at=timezone.now() - timedelta(minutes=1)
    )
    for token in ("tok-old", "no-such-token"):
        response = Client().get(f"/accounts/invitations/{token}/")
        assert response.status_code == 404
        assert "This invitation cannot be used" in response.content.decode()


def test_inviting_a_member_or_a_pending_address_is_refused(world: TenantWorld) -> None:
    client = world.session_client()
    member = client.post(
        "/v1/invitations", {"email": world.member.user.email, "role": "viewer"}, format="json"
    )
    assert member.status_code == 400
    assert member.json()["errors"][0]["code"] == "already_member"
    pending = client.post(
        "/v1/invitations", {"email": world.invitation.email, "role": "viewer"}, format="json"
    )
    assert pending.status_code == 400
    assert pending.json()["errors"][0]["code"] == "invitation_pending"


def test_a_revoked_invitation_no_longer_works(world: TenantWorld) -> None:
    invitation = InvitationFactory(tenant=world.tenant, token="tok-revoke")
    assert world.client.delete(f"/v1/invitations/{invitation.public_id}").status_code == 204
    assert Client().get("/accounts/invitations/tok-revoke/").status_code == 404


def test_password_step_for_invited_account_without_device_enrols(db: None) -> None:
    user = UserFactory()
    assert password_step(Client(), user.email)["Location"] == "/accounts/login/enroll/"
