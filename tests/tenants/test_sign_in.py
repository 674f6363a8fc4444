import re
import time

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, MembershipFactory, TOTPDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db


def code(device: TOTPDevice, offset: int = 0) -> str:
    return (
        f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + offset):06d}"
    )


def password_step(client: Client, email: str, password: str = PASSWORD, next_url: str = "/"):
    return client.post("/accounts/login/", {"email": email, "password": password, "next": next_url})


def test_password_then_code_signs_in(db: None) -> None:
    membership = MembershipFactory()
    device = TOTPDeviceFactory(user=membership.user)
    client = Client()

    step1 = password_step(client, membership.user.email.upper())  # email is case-insensitive
    assert step1.status_code == 302
    assert step1["Location"] == "/accounts/login/verify/"
    assert client.get("/").status_code == 302  # not signed in yet

    step2 = client.post("/accounts/login/verify/", {"token": code(device)})
    assert step2.status_code == 302
    assert step2["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert membership.tenant.name in home.content.decode()


def test_a_wrong_password_shows_an_error_and_keeps_the_email(db: None) -> None:
    user = UserFactory()
    response = password_step(Client(), user.email, "wrong password")
    assert response.status_code == 200
    page = response.content.decode()
    assert "That email and password do not match an account." in page
    assert f'value="{user.email}"' in page


def test_a_wrong_code_is_refused(db: None) -> None:
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    client = Client()
    password_step(client, user.email)
    wrong = f"{(int(code(device)) + 1) % 1_000_000:06d}"
    response = client.post("/accounts/login/verify/", {"token": wrong})
    assert response.status_code == 200
    assert "That code is not right" in response.content.decode()
    assert client.get("/").status_code == 302


def test_first_sign_in_enrols_an_authenticator(db: None) -> None:
    user = UserFactory()
    client = Client()
    step1 = password_step(client, user.email)
    assert step1["Location"] == "/accounts/login/enroll/"

    page = client.get("/accounts/login/enroll/")
    assert page.status_code == 200
    assert "<svg" in page.content.decode()
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    key_shown = re.search(r"<code>([A-Z2-7 ]+)</code>", page.content.decode())
    assert key_shown is not None

    done = client.post("/accounts/login/enroll/", {"token": code(device)})
    assert done.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get("/").status_code == 200


def test_enrolment_is_refused_to_accounts_that_have_a_device(db: None) -> None:
    user = UserFactory()
    TOTPDeviceFactory(user=user)
    client = Client()
    password_step(client, user.email)
    response = client.get("/accounts/login/enroll/")
    assert response["Location"] == "/accounts/login/verify/"
    assert TOTPDevice.objects.filter(user=user).count() == 1


def test_the_code_step_expires(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    client = Client()
    password_step(client, user.email)
    later = time.time() + 11 * 60
    monkeypatch.setattr("tenants.views.time.time", lambda: later)
    response = client.post("/accounts/login/verify/", {"token": code(device)})
    assert response["Location"] == "/accounts/login/"


def test_next_is_followed_only_within_the_site(db: None) -> None:
    user = UserFactory()
    device = TOTPDeviceFactory(user=user)
    client = Client()
    password_step(client, user.email, next_url="https://evil.example/")
    response = client.post("/accounts/login/verify/", {"token": code(device)})
    assert response["Location"] == "/"


def test_repeated_wrong_passwords_are_slowed_down(db: None) -> None:
    user = UserFactory()
    client = Client()
    for _ in range(10):
        password_step(client, user.email, "wrong")
    response = password_step(client, user.email)  # even the right password now waits
    assert "Too many sign-in attempts" in response.content.decode()


def test_sign_out(db: None) -> None:
    membership = MembershipFactory()
    device = TOTPDeviceFactory(user=membership.user)
    client = Client()
    password_step(client, membership.user.email)
    client.post("/accounts/login/verify/", {"token": code(device)})
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_switching_tenant_changes_what_the_api_sees(db: None) -> None:
    first = MembershipFactory()
    second = MembershipFactory(user=first.user)
    stranger = MembershipFactory()
    from tests.conftest import verified_login

    client = verified_login(Client(), first.user)
    assert client.get("/v1/").json()["tenant"]["id"] == first.tenant.public_id

    client.post("/accounts/tenant/", {"tenant": second.tenant.public_id})
    assert client.get("/v1/").json()["tenant"]["id"] == second.tenant.public_id

    refused = client.post("/accounts/tenant/", {"tenant": stranger.tenant.public_id}, follow=True)
    assert "You are not a member of that tenant." in refused.content.decode()
    assert client.get("/v1/").json()["tenant"]["id"] == second.tenant.public_id
