"""Limits on what costs a tenant money hold under bursts: numbers bought in any 24 hours,
outbound (test) calls a minute, and concurrent calls.

Each burst fires ten times the limit at once, from threads that each hold their own PostgreSQL
connection (and reach Redis through the shared cache), through the same doors people use: the
API, the console and the carrier's webhook. Exactly the limit gets through; everyone else is
told why.
"""

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from agents.carriers import TWILIO_VOICE_PATH
from agents.models import NumberPurchase, PhoneNumber
from calls.models import Call
from tenants import ratelimit
from tenants.admin import TenantAdmin
from tenants.models import AuditEvent, Tenant
from tests.conftest import TenantWorld, verified_login
from tests.console.conftest import member_client, text
from tests.factories import UserFactory
from tests.fakes.twilio import FakeTwilio
from workers import tasks
from workers.caller import sign
from workers.twilio import public_url, signing_token

LIMIT = 2
BURST = 10 * LIMIT

T = TypeVar("T")


def at_once(work: Callable[[int], T], times: int = BURST) -> list[T]:
    """Run `work(i)` for i in 0..times-1 in threads released together, each on its own
    database connection; return the results in order (re-raising any thread's error)."""
    barrier = threading.Barrier(times)
    results: list[Any] = [None] * times
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except BaseException as error:  # re-raised once every thread is done
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def limit(world: TenantWorld, **limits: int) -> None:
    Tenant.objects.filter(pk=world.tenant.pk).update(**limits)
    world.tenant.refresh_from_db()


def frozen_within_a_minute() -> Any:
    """A clock stopped one second into the next minute, so a burst cannot straddle two."""
    start = (timezone.now() + timedelta(minutes=1)).replace(second=1, microsecond=0)
    return time_machine.travel(start, tick=False)


# --- Number purchases a day -------------------------------------------------------------------


def buy(client: APIClient, account: str, number: str, key: str) -> Any:
    return client.post(
        "/v1/phone-numbers",
        {"carrier_account": account, "phone_number": number},
        format="json",
        HTTP_IDEMPOTENCY_KEY=key,
    )


def sandbox_number(i: int) -> str:
    return f"+1512555{100 + i:04d}"


def fresh_allowance(world: TenantWorld, per_day: int) -> None:
    """The world's own number was bought just now; start the day with nothing bought."""
    NumberPurchase.all_tenants.filter(tenant=world.tenant).delete()
    limit(world, max_number_purchases_per_day=per_day)


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_purchases_buys_exactly_the_daily_limit(world: TenantWorld) -> None:
    fresh_allowance(world, LIMIT)
    account = world.carrier_account.public_id
    clients = [world.client for _ in range(BURST)]

    responses = at_once(lambda i: buy(clients[i], account, sandbox_number(i), f"burst-{i}"))

    bought = [r for r in responses if r.status_code == 201]
    refused = [r for r in responses if r.status_code != 201]
    assert len(bought) == LIMIT
    assert len(refused) == BURST - LIMIT
    for response in refused:
        problem = response.json()
        assert (response.status_code, problem["code"]) == (429, "purchase_limit_reached")
        assert response["Content-Type"] == "application/problem+json"
        assert problem["limit"] == LIMIT
        assert f"may buy {LIMIT} numbers in any 24 hours" in problem["detail"]
        assert "the next purchase is possible from" in problem["detail"]
        assert 24 * 3600 - 60 < int(response["Retry-After"]) <= 24 * 3600
    numbers = {r.json()["phone_number"] for r in bought}
    held = PhoneNumber.objects.for_tenant(world.tenant).filter(status=PhoneNumber.Status.ACTIVE)
    assert set(held.values_list("e164", flat=True)) == {world.phone_number.e164, *numbers}
    ledger = NumberPurchase.objects.for_tenant(world.tenant)
    assert sorted(ledger.values_list("e164", "status")) == sorted(
        (number, "bought") for number in numbers
    )


def test_a_purchase_the_carrier_refuses_costs_nothing(
    world: TenantWorld, fake_twilio: FakeTwilio
) -> None:
    fresh_allowance(world, 1)
    refused = buy(world.client, world.twilio_account.public_id, "+14155550998", "not-for-sale")
    assert (refused.status_code, refused.json()["code"]) == (502, "carrier_error")
    assert not NumberPurchase.objects.for_tenant(world.tenant).exists()

    fake_twilio.for_sale["+14155550181"] = ("San Francisco", "CA")
    bought = buy(world.client, world.twilio_account.public_id, "+14155550181", "for-sale")
    assert bought.status_code == 201, bought.content
    over = buy(world.client, world.carrier_account.public_id, sandbox_number(50), "one-more")
    assert (over.status_code, over.json()["code"]) == (429, "purchase_limit_reached")


def test_a_number_the_account_already_owned_is_adopted_without_using_a_purchase(
    world: TenantWorld, fake_twilio: FakeTwilio
) -> None:
    fresh_allowance(world, 1)
    fake_twilio.add_owned("+16285550166")
    adopted = buy(world.client, world.twilio_account.public_id, "+16285550166", "adopt")
    assert adopted.status_code == 201, adopted.content
    assert not NumberPurchase.objects.for_tenant(world.tenant).exists()
    sandbox = world.carrier_account.public_id
    assert buy(world.client, sandbox, sandbox_number(51), "a").status_code == 201
    over = buy(world.client, sandbox, sandbox_number(52), "b")
    assert over.status_code == 429


def test_imports_do_not_count_as_purchases(world: TenantWorld, fake_twilio: FakeTwilio) -> None:
    fresh_allowance(world, 0)
    fake_twilio.add_owned("+16285550167")
    imported = world.client.post(
        "/v1/phone-numbers/import",
        {"carrier_account": world.twilio_account.public_id, "phone_number": "+16285550167"},
        format="json",
    )
    assert imported.status_code == 201
    bought = buy(world.client, world.carrier_account.public_id, sandbox_number(53), "none")
    assert (bought.status_code, bought.json()["code"]) == (429, "purchase_limit_reached")
    assert "may not buy numbers" in bought.json()["detail"]
    assert bought.json()["resets_at"] is None
    assert "Retry-After" not in bought


def test_the_purchase_window_rolls_over_24_hours(world: TenantWorld) -> None:
    fresh_allowance(world, 2)
    account = world.carrier_account.public_id
    morning = (timezone.now() + timedelta(days=1)).replace(hour=9, minute=0, second=0)
    morning = morning.replace(microsecond=0)
    with time_machine.travel(morning, tick=False) as clock:
        assert buy(world.client, account, sandbox_number(60), "a").status_code == 201
        clock.move_to(morning + timedelta(hours=6))
        assert buy(world.client, account, sandbox_number(61), "b").status_code == 201

        # A calendar day would have reset at midnight; the window still holds both purchases.
        clock.move_to(morning + timedelta(hours=24) - timedelta(seconds=1))
        early = buy(world.client, account, sandbox_number(62), "c")
        assert early.status_code == 429
        first_leaves = morning + timedelta(hours=24)
        assert early.json()["resets_at"] == first_leaves.isoformat()
        assert early["Retry-After"] == "1"
        assert f"possible from {first_leaves:%Y-%m-%d %H:%M:%S} UTC" in early.json()["detail"]

        clock.move_to(first_leaves)
        assert buy(world.client, account, sandbox_number(62), "c").status_code == 201
        next_one = buy(world.client, account, sandbox_number(63), "d")
        assert next_one.json()["resets_at"] == (first_leaves + timedelta(hours=6)).isoformat()


def test_the_console_says_how_many_purchases_are_left_and_when_one_frees_up(
    world: TenantWorld,
) -> None:
    fresh_allowance(world, 1)
    client = member_client(world)
    form = {"carrier_account": world.carrier_account.public_id, "phone_number": sandbox_number(70)}
    asked = text(client.post(reverse("console:number-buy"), form))
    assert "Numbers bought in the last 24 hours" in asked
    assert "0 of 1 allowed" in asked
    confirmed = client.post(reverse("console:number-buy"), {**form, "confirmed": "yes"})
    assert confirmed.status_code == 302

    again = {**form, "phone_number": sandbox_number(71), "confirmed": "yes"}
    refused = client.post(reverse("console:number-buy"), again)
    assert refused.status_code == 429
    page = text(refused)
    assert "This account may buy 1 number in any 24 hours" in page
    assert "the next purchase is possible from" in page
    assert not PhoneNumber.objects.for_tenant(world.tenant).filter(e164=sandbox_number(71)).exists()


# --- Outbound calls a minute ------------------------------------------------------------------


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The test calls handed to Celery, instead of ringing anything."""
    sent: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.place_test_call, "delay", lambda *args: sent.append(args))
    return sent


def call_page(world: TenantWorld) -> str:
    return reverse("console:number-test-call", kwargs={"id": world.phone_number.public_id})


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_test_calls_places_exactly_the_per_minute_limit(
    world: TenantWorld, queued: list[tuple[Any, ...]]
) -> None:
    limit(world, max_outbound_calls_per_minute=LIMIT)
    clients = [member_client(world) for _ in range(BURST)]
    url = call_page(world)

    with frozen_within_a_minute() as clock:
        responses = at_once(lambda i: clients[i].post(url, {"script": "Hello"}))

        placed = [r for r in responses if r.status_code == 302]
        refused = [r for r in responses if r.status_code != 302]
        assert len(placed) == len(queued) == LIMIT
        assert len(refused) == BURST - LIMIT
        for response in refused:
            assert response.status_code == 429
            page = text(response)
            assert f"This account may place {LIMIT} outbound calls a minute" in page
            assert "try again in 59 seconds" in page

        # The next minute starts from zero.
        clock.shift(timedelta(minutes=1))
        assert clients[0].post(url, {"script": "Hello"}).status_code == 302
        assert len(queued) == LIMIT + 1


def test_a_tenant_may_be_allowed_no_outbound_calls(
    world: TenantWorld, queued: list[tuple[Any, ...]]
) -> None:
    limit(world, max_outbound_calls_per_minute=0)
    response = member_client(world).post(call_page(world), {"script": "Hello"})
    assert response.status_code == 429
    assert "may not place outbound calls" in text(response)
    assert queued == []


def test_the_embedded_mode_holds_the_outbound_limit_without_redis(settings: Any) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with frozen_within_a_minute():
        taken = at_once(lambda i: ratelimit.take("outbound-calls:embedded", LIMIT))
    assert taken.count(None) == LIMIT


# --- Concurrent calls -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_incoming_calls_admits_exactly_the_concurrent_limit(
    world: TenantWorld,
) -> None:
    limit(world, max_concurrent_calls=LIMIT)
    number = world.phone_number
    token = signing_token(number.carrier_account)
    url = public_url(TWILIO_VOICE_PATH)

    def ring(i: int) -> str:
        params = {
            "CallSid": f"CA{'b' * 24}{i:08x}",
            "AccountSid": "AC" + "0" * 32,
            "From": f"+1415555{1000 + i:04d}",
            "To": number.e164,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        response = Client().post(
            TWILIO_VOICE_PATH, params, HTTP_X_TWILIO_SIGNATURE=sign(token, url, params)
        )
        assert response.status_code == 200
        return response.content.decode()

    twiml = at_once(ring)

    assert sum("<Stream" in answer for answer in twiml) == LIMIT
    assert sum("all our lines are busy" in answer for answer in twiml) == BURST - LIMIT
    burst = Call.objects.for_tenant(world.tenant).exclude(pk=world.call.pk)
    assert burst.filter(status=Call.Status.RINGING).count() == LIMIT
    assert (
        burst.filter(status=Call.Status.FAILED, end_reason=Call.EndReason.OVER_CAPACITY).count()
        == BURST - LIMIT
    )


# --- Where the limits are shown and set -------------------------------------------------------


def test_the_api_shows_the_limits_read_only(world: TenantWorld) -> None:
    limit(world, max_outbound_calls_per_minute=3, max_number_purchases_per_day=4)
    limits = world.client.get("/v1/tenant").json()["limits"]
    assert (limits["max_outbound_calls_per_minute"], limits["max_number_purchases_per_day"]) == (
        3,
        4,
    )
    world.client.patch(
        "/v1/tenant", {"limits": {"max_number_purchases_per_day": 100}}, format="json"
    )
    world.tenant.refresh_from_db()
    assert world.tenant.max_number_purchases_per_day == 4


def test_operators_set_the_limits_in_the_admin(world: TenantWorld) -> None:
    tenant = world.tenant
    client = verified_login(Client(), UserFactory(is_staff=True, is_superuser=True))
    fields = [name for name in TenantAdmin.fields if name not in TenantAdmin.readonly_fields]
    form = {name: getattr(tenant, name) for name in fields}
    form.update(max_outbound_calls_per_minute=30, max_number_purchases_per_day=12)
    response = client.post(reverse("admin:tenants_tenant_change", args=[tenant.pk]), form)
    assert response.status_code == 302
    before = (tenant.max_outbound_calls_per_minute, tenant.max_number_purchases_per_day)
    tenant.refresh_from_db()
    assert (tenant.max_outbound_calls_per_minute, tenant.max_number_purchases_per_day) == (30, 12)
    event = (
        AuditEvent.objects.for_tenant(tenant)
        .filter(action="tenant.update", actor_label__startswith="operator ")
        .get()
    )
    assert event.changes == {
        "max_outbound_calls_per_minute": [before[0], 30],
        "max_number_purchases_per_day": [before[1], 12],
    }


def test_while_redis_is_down_requests_pass_and_test_calls_wait(
    world: TenantWorld, queued: list[tuple[Any, ...]], settings: Any, caplog: Any
) -> None:
    """Rate limits on requests let them through while their counts cannot be kept (refusing
    everything would be the outage they guard against); a paid call is never placed uncounted."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
        }
    }
    response = world.client.get("/v1/agents")
    assert response.status_code == 200
    assert "rate limit not applied: the cache is unavailable" in caplog.text

    response = member_client(world).post(call_page(world), {"script": "Hello"})
    assert response.status_code == 503
    assert "Outbound calls cannot be counted against this account" in text(response)
    assert queued == []
