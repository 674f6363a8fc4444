"""Recovery codes: single-use codes that replace the authenticator's code at sign-in."""

import pytest
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice

from tenants import twofactor
from tenants.models import AuditEvent
from tests.factories import MembershipFactory, TOTPDeviceFactory
from tests.tenants.test_sign_in import password_step

pytestmark = pytest.mark.django_db

VERIFY_WITH_CODE = "/accounts/login/verify/?recovery"


def test_ten_distinct_codes_replace_any_earlier_set() -> None:
    user = MembershipFactory().user
    _, first = twofactor.recovery_codes_generate(user)
    assert len(set(first)) == twofactor.RECOVERY_CODE_COUNT
    _, second = twofactor.recovery_codes_generate(user)
    assert not set(first) & set(second)
    assert StaticDevice.objects.filter(user=user).count() == 1
    assert twofactor.recovery_code_use(user, first[0]) is None
    assert twofactor.recovery_codes_remaining(user) == twofactor.RECOVERY_CODE_COUNT


def test_a_recovery_code_signs_in_once() -> None:
    membership = MembershipFactory()
    user = membership.user
    TOTPDeviceFactory(user=user)
    _, codes = twofactor.recovery_codes_generate(user)
    client = Client()
    password_step(client, user.email)

    page = client.get("/accounts/login/verify/")
    assert 'href="/accounts/login/verify/?recovery"' in page.content.decode()
    assert "Use a recovery code instead" in page.content.decode()

    signed_in = client.post(VERIFY_WITH_CODE, {"code": codes[0]})
    assert signed_in.status_code == 302
    assert signed_in["Location"] == "/"
    assert client.get("/").status_code == 200
    assert twofactor.recovery_codes_remaining(user) == twofactor.RECOVERY_CODE_COUNT - 1
    used = AuditEvent.objects.for_tenant(membership.tenant).get(action="recovery_code.use")
    assert used.actor_id == user.public_id

    again = Client()
    password_step(again, user.email)
    refused = again.post(VERIFY_WITH_CODE, {"code": codes[0]})
    assert refused.status_code == 200
    assert "That recovery code is not right, or it was used already." in refused.content.decode()
    assert again.get("/").status_code == 302


def test_spaces_capitals_and_hyphens_do_not_matter() -> None:
    user = MembershipFactory().user
    TOTPDeviceFactory(user=user)
    _, codes = twofactor.recovery_codes_generate(user)
    typed = " " + codes[3].upper().replace("-", " - ") + " "
    client = Client()
    password_step(client, user.email)
    assert client.post(VERIFY_WITH_CODE, {"code": typed}).status_code == 302


def test_a_recovery_code_needs_the_password_step_first() -> None:
    user = MembershipFactory().user
    TOTPDeviceFactory(user=user)
    _, codes = twofactor.recovery_codes_generate(user)
    response = Client().post(VERIFY_WITH_CODE, {"code": codes[0]})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert twofactor.recovery_codes_remaining(user) == twofactor.RECOVERY_CODE_COUNT


def test_without_recovery_codes_every_code_is_refused() -> None:
    user = MembershipFactory().user
    TOTPDeviceFactory(user=user)
    client = Client()
    password_step(client, user.email)
    response = client.post(VERIFY_WITH_CODE, {"code": "abcd-efgh"})
    assert response.status_code == 200
    assert 'value="abcd-efgh"' in response.content.decode()
    assert client.get("/").status_code == 302


def test_repeated_wrong_codes_are_throttled() -> None:
    user = MembershipFactory().user
    TOTPDeviceFactory(user=user)
    _, codes = twofactor.recovery_codes_generate(user)
    for _ in range(3):
        assert twofactor.recovery_code_use(user, "wrong-code") is None
    # Right after failures, even a right code waits (django-otp's growing delay).
    assert twofactor.recovery_code_use(user, codes[0]) is None
    assert twofactor.recovery_codes_remaining(user) == twofactor.RECOVERY_CODE_COUNT
