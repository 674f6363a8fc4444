import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from agents.carriers import AvailableNumber, CarrierError, carrier_for
from agents.models import Agent, CarrierAccount, NumberPurchase, PhoneNumber
from agents.services import credentials_update, require_name
from tenants.access import Actor
from tenants.errors import Conflict, InvalidInput, NotFound, ServiceError, TooManyRequests
from tenants.models import Tenant
from tenants.services import audit_event_record

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")


class CarrierUnavailable(ServiceError):
    status = 502
    code = "carrier_error"
    title = "Bad Gateway"


def _carrier_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except CarrierError as exc:
        raise CarrierUnavailable(str(exc)) from None


# --- Carrier accounts -------------------------------------------------------------------------


def _carrier_credentials(kind: str, config: Any, secrets: Any) -> None:
    if kind not in CarrierAccount.Kind.values:
        raise InvalidInput.field("kind", f"Kind is one of {', '.join(CarrierAccount.Kind.values)}.")
    if not isinstance(config, dict) or not isinstance(secrets, dict):
        raise InvalidInput("config and secrets are objects.")
    if kind == CarrierAccount.Kind.SANDBOX:
        if config or secrets:
            raise InvalidInput("The sandbox carrier takes no credentials.")
        return
    if kind == CarrierAccount.Kind.OPENAI_SIP:
        _openai_sip_credentials(config, secrets)
        return
    errors: dict[str, list[str]] = {}
    if not ACCOUNT_SID.match(str(config.get("account_sid", ""))):
        errors["config.account_sid"] = ["A Twilio Account SID: AC followed by 32 hex digits."]
    for key in sorted(set(config) - {"account_sid"}):
        errors[f"config.{key}"] = [f"Twilio takes no {key}."]
    if not secrets.get("auth_token"):
        errors["secrets.auth_token"] = ["The account's Auth Token is required."]
    for key in sorted(set(secrets) - {"auth_token"}):
        errors[f"secrets.{key}"] = [f"Twilio takes no {key}."]
    if errors:
        raise InvalidInput("The Twilio credentials are incomplete.", errors=errors)


def _openai_sip_credentials(config: dict[str, Any], secrets: dict[str, Any]) -> None:
    errors: dict[str, list[str]] = {}
    for key in sorted(set(config)):
        errors[f"config.{key}"] = [f"An OpenAI SIP account takes no {key}."]
    if not str(secrets.get("api_key", "")).startswith("sk-"):
        errors["secrets.api_key"] = ["The OpenAI project's API key (sk-…) is required."]
    if not str(secrets.get("webhook_secret", "")).startswith("whsec_"):
        errors["secrets.webhook_secret"] = [
            "The project webhook's signing secret (whsec_…) is required."
        ]
    for key in sorted(set(secrets) - {"api_key", "webhook_secret"}):
        errors[f"secrets.{key}"] = [f"An OpenAI SIP account takes no {key}."]
    if errors:
        raise InvalidInput("The OpenAI SIP credentials are incomplete.", errors=errors)


def carrier_account_create(
    *, tenant: Tenant, actor: Actor, kind: str, name: str, config: Any = None, secrets: Any = None
) -> CarrierAccount:
    actor.require("numbers:write")
    name = require_name(name)
    config, secrets = config or {}, secrets or {}
    _carrier_credentials(kind, config, secrets)
    try:
        with transaction.atomic():
            account = CarrierAccount.objects.create(
                tenant=tenant, kind=kind, name=name, config=config, secrets=secrets
            )
            audit_event_record(
                actor=actor,
                action="carrier_account.create",
                target=account,
                changes={"kind": [None, kind], "name": [None, name]},
            )
    except IntegrityError:
        raise InvalidInput.field("name", f"A carrier account named {name!r} exists.") from None
    return account


def carrier_account_update(
    *,
    account: CarrierAccount,
    actor: Actor,
    name: str | None = None,
    config: Any = None,
    secrets: Any = None,
) -> CarrierAccount:
    actor.require("numbers:write")
    return credentials_update(
        account,
        actor=actor,
        action="carrier_account.update",
        check=lambda c, s: _carrier_credentials(account.kind, c, s),
        name=name,
        config=config,
        secrets=secrets,
    )


def carrier_account_delete(*, account: CarrierAccount, actor: Actor) -> None:
    actor.require("numbers:write")
    with transaction.atomic():
        if PhoneNumber.objects.for_tenant(account.tenant).filter(carrier_account=account).exists():
            raise Conflict("Numbers came from this account; release them first.", code="in_use")
        audit_event_record(actor=actor, action="carrier_account.delete", target=account)
        account.delete()


# --- Numbers ----------------------------------------------------------------------------------


def phone_number_search(
    *,
    account: CarrierAccount,
    actor: Actor,
    country: str = "US",
    area_code: str = "",
    contains: str = "",
    limit: int = 20,
) -> list[AvailableNumber]:
    actor.require("numbers:read")
    _require_a_seller(account)
    if not re.match(r"^[A-Z]{2}$", country):
        raise InvalidInput.field("country", "An ISO country code such as US.")
    if contains and not re.match(r"^[0-9*]{1,10}$", contains):
        raise InvalidInput.field("contains", "Digits to look for, e.g. 2020.")
    if not 1 <= limit <= 50:
        raise InvalidInput.field("limit", "Between 1 and 50.")
    return list(
        _carrier_call(
            carrier_for(account).search,
            country=country,
            area_code=area_code,
            contains=contains,
            limit=limit,
        )
    )


# The daily purchase limit counts purchases over any 24 hours (a rolling window, so no burst
# around midnight can buy twice the limit).
PURCHASE_WINDOW = timedelta(hours=24)
# A purchase still pending after this long belongs to a request that died before the carrier
# answered (the carrier's client gives up after 15 s a request). It stops holding a place under
# the number limit, but keeps counting towards the day's purchases: the carrier may have sold it.
PURCHASE_ABANDONED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class PurchaseAllowance:
    limit: int
    used: int  # purchases made or under way in the last 24 hours
    resets_at: datetime | None  # when the next purchase fits, if none fits now

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)


def purchase_allowance(tenant: Tenant, *, now: datetime | None = None) -> PurchaseAllowance:
    """How many numbers the tenant may still buy now, and when the next one fits if none does."""
    now = now or timezone.now()
    recent = list(
        NumberPurchase.objects.for_tenant(tenant)
        .filter(created_at__gt=now - PURCHASE_WINDOW)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    limit = tenant.max_number_purchases_per_day
    resets_at = None
    if 0 < limit <= len(recent):
        # The purchase whose leaving the window brings the count below the limit.
        resets_at = recent[len(recent) - limit] + PURCHASE_WINDOW
    return PurchaseAllowance(limit=limit, used=len(recent), resets_at=resets_at)


def _lock_numbers(tenant: Tenant) -> Tenant:
    """Serialize the tenant's purchases and imports until the transaction ends; return the
    tenant as it is now (its limits fresh).

    On PostgreSQL an advisory lock of the tenant's own, not the tenant row: a request's
    transaction can hold it through the carrier's answer, and the tenant row lock is what every
    incoming call's admission takes. (On SQLite, the embedded default, writers are serialized by
    the database itself.)
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"numbers:{tenant.pk}"]
            )
    return Tenant.objects.get(pk=tenant.pk)


def _check_capacity(tenant: Tenant, e164: str) -> Tenant:
    """Under the numbers lock: refuse a number the tenant has no room for or that is taken."""
    if not E164.match(e164):
        raise InvalidInput.field("phone_number", "Numbers are in E.164 form, e.g. +14155550123.")
    locked = _lock_numbers(tenant)
    held = PhoneNumber.objects.for_tenant(tenant).filter(status=PhoneNumber.Status.ACTIVE).count()
    buying = list(
        NumberPurchase.objects.for_tenant(tenant)
        .filter(
            status=NumberPurchase.Status.PENDING,
            created_at__gt=timezone.now() - PURCHASE_ABANDONED_AFTER,
        )
        .values_list("e164", flat=True)
    )
    if held + len(buying) >= locked.max_phone_numbers:
        raise InvalidInput(
            f"This account may hold {locked.max_phone_numbers} numbers; release one first.",
            code="limit_exceeded",
        )
    if e164 in buying or (
        PhoneNumber.all_tenants.filter(e164=e164, status=PhoneNumber.Status.ACTIVE).exists()
    ):
        raise Conflict(f"{e164} is already in use.", code="number_taken")
    return locked


def _purchase_reserve(tenant: Tenant, e164: str) -> NumberPurchase:
    """Take one of the day's purchases for `e164`, or refuse with when the next one fits."""
    with transaction.atomic():
        locked = _check_capacity(tenant, e164)
        now = timezone.now()
        allowance = purchase_allowance(locked, now=now)
        if allowance.left == 0:
            if allowance.limit == 0:
                detail = "This account may not buy numbers; the platform operator sets this limit."
            else:
                assert allowance.resets_at is not None
                detail = (
                    f"This account may buy {allowance.limit} "
                    f"number{'' if allowance.limit == 1 else 's'} in any 24 hours; the next "
                    f"purchase is possible from {allowance.resets_at:%Y-%m-%d %H:%M:%S} UTC."
                )
            raise TooManyRequests(
                detail,
                limit=allowance.limit,
                resets_at=allowance.resets_at,
                code="purchase_limit_reached",
            )
        return NumberPurchase.objects.create(tenant=tenant, e164=e164, created_at=now)


def _purchase_settle(purchase: NumberPurchase, number: PhoneNumber | None, *, bought: bool) -> None:
    """The carrier answered: keep the purchase if it sold the number, else give it back."""
    if not bought:
        NumberPurchase.objects.for_tenant(purchase.tenant).filter(pk=purchase.pk).delete()
        return
    NumberPurchase.objects.for_tenant(purchase.tenant).filter(pk=purchase.pk).update(
        status=NumberPurchase.Status.BOUGHT, phone_number=number
    )


def _record(
    *,
    tenant: Tenant,
    account: CarrierAccount,
    owned: Any,
    agent: Agent | None,
    actor: Actor,
    action: str,
) -> PhoneNumber:
    try:
        with transaction.atomic():
            number = PhoneNumber.objects.create(
                tenant=tenant,
                e164=owned.e164,
                carrier_account=account,
                carrier_sid=owned.carrier_sid,
                friendly_name=owned.friendly_name,
                capabilities=owned.capabilities,
                agent=agent,
            )
    except IntegrityError:
        raise Conflict(f"{owned.e164} is already in use.", code="number_taken") from None
    audit_event_record(
        actor=actor,
        action=action,
        target=number,
        changes={
            "carrier_account": [None, account.public_id],
            "agent": [None, agent.public_id if agent else None],
        },
    )
    return number


def _require_a_seller(account: CarrierAccount) -> None:
    if account.kind == CarrierAccount.Kind.OPENAI_SIP:
        raise InvalidInput.field(
            "carrier_account",
            "OpenAI SIP numbers come from your SIP trunk provider; import them instead.",
        )


def phone_number_purchase(
    *,
    tenant: Tenant,
    actor: Actor,
    account: CarrierAccount,
    e164: str,
    friendly_name: str = "",
    agent: Agent | None = None,
) -> PhoneNumber:
    """Buy a number from the carrier and point its calls here.

    At most `max_number_purchases_per_day` purchases in any 24 hours (else TooManyRequests,
    saying when the next one fits), however many run at once: each takes its place in the
    ledger before the carrier is asked, and gives it back if the carrier sells nothing. A number
    this carrier account already owns (say, bought by a request that died before it could
    record it) is adopted, not bought again, and costs no purchase; the API also requires an
    Idempotency-Key.
    """
    actor.require("numbers:write")
    _require_a_seller(account)
    _check_agent(agent)
    purchase = _purchase_reserve(tenant, e164)
    bought = False
    try:
        carrier = carrier_for(account)
        owned = _carrier_call(carrier.find_owned, e164)
        if owned is not None:
            _carrier_call(carrier.point_at_us, owned)
        else:
            owned = _carrier_call(carrier.purchase, e164, friendly_name)
            bought = True
        with transaction.atomic():
            number = _record(
                tenant=tenant,
                account=account,
                owned=owned,
                agent=agent,
                actor=actor,
                action="phone_number.purchase",
            )
            _purchase_settle(purchase, number, bought=bought)
        return number
    except Exception:
        # Inside a transaction that already failed, its rollback takes the reservation away.
        if not (connection.in_atomic_block and connection.needs_rollback):
            _purchase_settle(purchase, None, bought=bought)
        raise


def phone_number_import(
    *, tenant: Tenant, actor: Actor, account: CarrierAccount, e164: str, agent: Agent | None = None
) -> PhoneNumber:
    """Bring a number the carrier account already has, pointing its calls here."""
    actor.require("numbers:write")
    _check_agent(agent)
    with transaction.atomic():
        # Held through the carrier's answer: imports cost nothing and are rare, and purchases
        # wait for them rather than for a reservation.
        _check_capacity(tenant, e164)
        carrier = carrier_for(account)
        owned = _carrier_call(carrier.find_owned, e164)
        if owned is None:
            raise NotFound(
                f"{e164} is not a number of carrier account {account.name}.",
                code="number_not_found",
            )
        _carrier_call(carrier.point_at_us, owned)
        return _record(
            tenant=tenant,
            account=account,
            owned=owned,
            agent=agent,
            actor=actor,
            action="phone_number.import",
        )


def _check_agent(agent: Agent | None) -> None:
    if agent is not None and agent.status != Agent.Status.ACTIVE:
        raise InvalidInput.field("agent", f"Agent {agent.name} is archived.")


def phone_number_update(*, number: PhoneNumber, actor: Actor, **fields: Any) -> PhoneNumber:
    """Assign the number to an agent (or none), or rename it."""
    actor.require("numbers:write")
    if number.status != PhoneNumber.Status.ACTIVE:
        raise Conflict("This number was released.", code="number_released")
    if "agent" in fields:
        _check_agent(fields["agent"])
    changes: dict[str, list[Any]] = {}
    for key, value in fields.items():
        before = getattr(number, key)
        if before != value:
            changes[key] = [
                getattr(before, "public_id", before),
                getattr(value, "public_id", value),
            ]
            setattr(number, key, value)
    if changes:
        with transaction.atomic():
            number.save()
            audit_event_record(
                actor=actor, action="phone_number.update", target=number, changes=changes
            )
    return number


def phone_number_release(*, number: PhoneNumber, actor: Actor) -> PhoneNumber:
    """Give the number back to the carrier. Calls to it stop reaching this account."""
    actor.require("numbers:write")
    if number.status != PhoneNumber.Status.ACTIVE:
        return number
    with transaction.atomic():
        locked = PhoneNumber.objects.for_tenant(number.tenant).select_for_update().get(pk=number.pk)
        if locked.status != PhoneNumber.Status.ACTIVE:
            return locked
        _carrier_call(carrier_for(locked.carrier_account).release, locked.carrier_sid)
        locked.status = PhoneNumber.Status.RELEASED
        locked.released_at = timezone.now()
        previous_agent = locked.agent.public_id if locked.agent else None
        locked.agent = None
        locked.save()
        audit_event_record(
            actor=actor,
            action="phone_number.release",
            target=locked,
            changes={"status": ["active", "released"], "agent": [previous_agent, None]},
        )
    return locked
