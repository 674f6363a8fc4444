"""The Numbers pages as a member uses them: buying (after a confirmation), importing, carrier
accounts whose secrets never come back, assigning, releasing, and placing a test call."""

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from agents.models import CarrierAccount, PhoneNumber
from calls.models import Call
from tenants.models import AuditEvent
from tenants.roles import Role
from tests import factories
from tests.conftest import TenantWorld, verified_login
from tests.console.conftest import member_client, text
from tests.fakes.twilio import FakeTwilio
from workers import tasks

NUMBERS = reverse("console:numbers")
BUY = reverse("console:number-buy")
IMPORT = reverse("console:number-import")
NEW_CARRIER = reverse("console:carrier-account-new")


def number_url(number: PhoneNumber, page: str = "number") -> str:
    return reverse(f"console:{page}", kwargs={"id": number.public_id})


# --- List -------------------------------------------------------------------------------------


def test_the_list_shows_each_number_its_carrier_and_agent(world: TenantWorld) -> None:
    page = text(member_client(world).get(NUMBERS))
    number = world.phone_number
    assert number.e164 in page
    assert world.carrier_account.name in page
    assert world.agent.name in page
    assert "Buy a number" in page and "Import a number" in page


def test_a_viewer_sees_the_numbers_but_no_buttons_to_change_them(world: TenantWorld) -> None:
    client = member_client(world, Role.VIEWER)
    page = text(client.get(NUMBERS))
    assert world.phone_number.e164 in page
    assert "Buy a number" not in page
    detail = text(client.get(number_url(world.phone_number)))
    assert "Place a test call" not in detail
    assert "Release" not in detail
    assert number_url(world.phone_number, "number-assign") not in detail


def test_a_tenant_without_numbers_is_told_how_to_get_one(db: None) -> None:
    owner = factories.MembershipFactory(role=Role.OWNER)
    client = verified_login(Client(), owner.user)
    page = text(client.get(NUMBERS))
    assert "No phone numbers yet" in page
    assert f'href="{BUY}"' in page


# --- Buying -----------------------------------------------------------------------------------


def test_buying_a_sandbox_number_searches_confirms_then_buys(world: TenantWorld) -> None:
    client = member_client(world)
    account = world.carrier_account.public_id
    results = client.get(BUY, {"carrier_account": account, "area_code": "512"})
    assert results.status_code == 200
    assert "+15125550100" in text(results)

    picked = client.post(BUY, {"carrier_account": account, "phone_number": "+15125550100"})
    assert picked.status_code == 200
    confirm = text(picked)
    assert "Buy this number" in confirm
    assert "+15125550100" in confirm and world.carrier_account.name in confirm
    assert "free" in confirm
    assert not PhoneNumber.objects.for_tenant(world.tenant).filter(e164="+15125550100").exists()

    bought = client.post(
        BUY,
        {"carrier_account": account, "phone_number": "+15125550100", "confirmed": "yes"},
        follow=True,
    )
    number = PhoneNumber.objects.for_tenant(world.tenant).get(e164="+15125550100")
    assert bought.redirect_chain[-1][0] == number_url(number)
    assert number.carrier_account == world.carrier_account and number.agent is None
    assert "You bought +15125550100" in text(bought)


def test_buying_from_twilio_says_it_costs_money(
    world: TenantWorld, fake_twilio: FakeTwilio
) -> None:
    fake_twilio.for_sale["+13125550142"] = ("Chicago", "IL")
    client = member_client(world)
    account = world.twilio_account.public_id
    assert "+13125550142" in text(client.get(BUY, {"carrier_account": account}))
    confirm = text(client.post(BUY, {"carrier_account": account, "phone_number": "+13125550142"}))
    assert "Twilio charges your Twilio account" in confirm
    client.post(
        BUY, {"carrier_account": account, "phone_number": "+13125550142", "confirmed": "yes"}
    )
    number = PhoneNumber.objects.for_tenant(world.tenant).get(e164="+13125550142")
    assert fake_twilio.owned[number.carrier_sid].voice_url.endswith("/carriers/twilio/voice")


def test_a_bad_search_is_explained_next_to_the_field(world: TenantWorld) -> None:
    client = member_client(world)
    response = client.get(
        BUY, {"carrier_account": world.carrier_account.public_id, "contains": "abc"}
    )
    page = text(response)
    assert "Digits to look for" in page
    assert 'value="abc"' in page


def test_a_number_someone_holds_cannot_be_bought_again(world: TenantWorld) -> None:
    client = member_client(world)
    taken = world.phone_number.e164
    response = client.post(
        BUY,
        {
            "carrier_account": world.carrier_account.public_id,
            "phone_number": taken,
            "confirmed": "yes",
        },
    )
    assert response.status_code == 400
    assert f"{taken} is already in use" in text(response)
    assert PhoneNumber.objects.for_tenant(world.tenant).filter(e164=taken).count() == 1


def test_another_tenants_carrier_account_cannot_be_used(
    world: TenantWorld, other_world: TenantWorld
) -> None:
    response = member_client(world).post(
        BUY,
        {
            "carrier_account": other_world.carrier_account.public_id,
            "phone_number": "+15125550101",
            "confirmed": "yes",
        },
    )
    assert response.status_code == 400
    assert not PhoneNumber.all_tenants.filter(e164="+15125550101").exists()


# --- Importing --------------------------------------------------------------------------------


def test_a_number_the_twilio_account_has_is_imported(
    world: TenantWorld, fake_twilio: FakeTwilio
) -> None:
    owned = fake_twilio.add_owned("+12065550150")
    response = member_client(world).post(
        IMPORT,
        {
            "carrier_account": world.twilio_account.public_id,
            "phone_number": "+12065550150",
            "agent": world.agent.public_id,
        },
    )
    number = PhoneNumber.objects.for_tenant(world.tenant).get(e164="+12065550150")
    assert response["Location"] == number_url(number)
    assert number.agent == world.agent and number.carrier_sid == owned.sid


def test_importing_a_number_the_account_lacks_says_so_and_keeps_the_values(
    world: TenantWorld,
) -> None:
    response = member_client(world).post(
        IMPORT,
        {"carrier_account": world.carrier_account.public_id, "phone_number": "+15125550160"},
    )
    assert response.status_code == 400
    page = text(response)
    assert "is not a number of carrier account" in page
    assert 'value="+15125550160"' in page


# --- Carrier accounts -------------------------------------------------------------------------


def test_a_twilio_account_is_added_and_its_token_never_shown(world: TenantWorld) -> None:
    client = member_client(world)
    sid = "AC" + "ab" * 16
    response = client.post(
        NEW_CARRIER,
        {"kind": "twilio", "name": "Main Twilio", "account_sid": sid, "auth_token": "tok-secret"},
        follow=True,
    )
    account = CarrierAccount.objects.for_tenant(world.tenant).get(name="Main Twilio")
    assert (account.config, account.secrets) == ({"account_sid": sid}, {"auth_token": "tok-secret"})
    page = text(response)
    assert "Main Twilio" in page and sid in page
    assert "tok-secret" not in page


def test_wrong_twilio_credentials_are_explained_next_to_their_fields(world: TenantWorld) -> None:
    response = member_client(world).post(
        NEW_CARRIER,
        {"kind": "twilio", "name": "Main Twilio", "account_sid": "AC123", "auth_token": "tok"},
    )
    assert response.status_code == 400
    page = text(response)
    assert "A Twilio Account SID" in page
    assert 'value="AC123"' in page
    assert 'value="tok"' not in page  # the secret is not sent back
    assert not CarrierAccount.objects.for_tenant(world.tenant).filter(name="Main Twilio").exists()


def test_a_finance_member_sees_carrier_accounts_but_cannot_add_one(world: TenantWorld) -> None:
    client = member_client(world, Role.FINANCE)
    page = text(client.get(reverse("console:carrier-accounts")))
    assert world.twilio_account.name in page
    assert world.twilio.auth_token not in page
    assert "Add a carrier account" not in page
    assert client.get(NEW_CARRIER).status_code == 403


# --- A number ---------------------------------------------------------------------------------


def test_a_number_is_assigned_to_an_agent_and_unassigned(world: TenantWorld) -> None:
    client = member_client(world)
    number = world.phone_number
    client.post(number_url(number, "number-assign"), {"agent": "", "friendly_name": "Front desk"})
    number.refresh_from_db()
    assert (number.agent, number.friendly_name) == (None, "Front desk")
    response = client.post(
        number_url(number, "number-assign"), {"agent": world.agent.public_id}, follow=True
    )
    number.refresh_from_db()
    assert number.agent == world.agent
    assert f"{world.agent.name} answers {number.e164}" in text(response)


def test_an_unknown_agent_is_refused_next_to_the_field(
    world: TenantWorld, other_world: TenantWorld
) -> None:
    response = member_client(world).post(
        number_url(world.phone_number, "number-assign"), {"agent": other_world.agent.public_id}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in text(response)
    world.phone_number.refresh_from_db()
    assert world.phone_number.agent == world.agent


def test_releasing_asks_first(world: TenantWorld) -> None:
    client = member_client(world)
    number = world.phone_number
    asked = client.post(number_url(number, "number-release"))
    assert "Release this number" in text(asked) and number.e164 in text(asked)
    number.refresh_from_db()
    assert number.status == PhoneNumber.Status.ACTIVE

    client.post(number_url(number, "number-release"), {"confirmed": "yes"})
    number.refresh_from_db()
    assert (number.status, number.agent) == (PhoneNumber.Status.RELEASED, None)
    assert (
        AuditEvent.objects.for_tenant(world.tenant).filter(action="phone_number.release").exists()
    )
    page = text(client.get(number_url(number)))
    assert "Place a test call" not in page and "Release…" not in page


# --- Test call --------------------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The test calls the page hands to Celery, instead of ringing anything."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.place_test_call, "delay", lambda *args: sent.append(args))
    return sent


def test_the_test_call_form_offers_the_demo_script(world: TenantWorld) -> None:
    page = text(member_client(world).get(number_url(world.phone_number)))
    assert "What the caller says" in page
    assert "What time do you open on Saturday?" in page


def test_a_test_call_in_process_lands_on_the_call(
    world: TenantWorld, queued: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def ring(tenant_id: int, number_id: str, call_sid: str, lines: list[str]) -> None:
        queued.append((tenant_id, number_id, call_sid, lines))
        factories.CallFactory(phone_number=world.phone_number, carrier_call_id=call_sid)

    monkeypatch.setattr(tasks.place_test_call, "delay", ring)
    response = member_client(world).post(
        number_url(world.phone_number, "number-test-call"), {"script": "Hello\n\n  Bye  \n"}
    )
    [(tenant_id, number_id, call_sid, lines)] = queued
    assert (tenant_id, number_id, lines) == (
        world.tenant.pk,
        world.phone_number.public_id,
        ["Hello", "Bye"],
    )
    call = Call.objects.for_tenant(world.tenant).get(carrier_call_id=call_sid)
    assert response["Location"] == reverse("console:call", kwargs={"id": call.public_id})


def test_a_test_call_on_a_worker_lands_on_the_calls_list(
    world: TenantWorld, queued: list[tuple[Any, ...]]
) -> None:
    response = member_client(world).post(
        number_url(world.phone_number, "number-test-call"), {"script": "Hello"}, follow=True
    )
    assert len(queued) == 1
    url, _ = response.redirect_chain[-1]
    assert url.startswith(reverse("console:calls"))
    assert "is on its way" in text(response)


def test_a_test_call_needs_something_to_say(
    world: TenantWorld, queued: list[tuple[Any, ...]]
) -> None:
    response = member_client(world).post(
        number_url(world.phone_number, "number-test-call"), {"script": "  \n "}
    )
    assert response.status_code == 400
    assert "This field is required" in text(response)
    assert queued == []


def test_a_test_call_script_turns_into_the_callers_steps() -> None:
    steps = tasks.conversation(["Hi", "Bye"])
    assert [(s.action, s.value) for s in steps] == [
        ("wait_for_agent", ""),
        ("say", "Hi"),
        ("say", "Bye"),
        ("wait_for_agent", ""),
        ("wait_for_hangup", ""),
    ]
    # Without a greeting the agent waits for the caller, who speaks first.
    assert tasks.conversation(["Hi"], greeted=False)[0].action == "say"
