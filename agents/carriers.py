"""Carrier clients: where phone numbers are searched, bought, configured and released.

`twilio` goes through the official SDK (TWILIO_API_BASE_URL can point it at another host, such
as a regional edge or a test server); `sandbox` issues numbers from the fictional 555-0100..0199
range of each North American area code, so the product works offline.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from openai import OpenAI
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client as TwilioClient

from agents.models import CarrierAccount, PhoneNumber
from tenants.ids import random_base62


class CarrierError(Exception):
    """The carrier refused or failed; the message is safe to show to the tenant."""


@dataclass(frozen=True)
class AvailableNumber:
    e164: str
    friendly_name: str
    locality: str
    region: str
    country: str
    capabilities: dict[str, bool]


@dataclass(frozen=True)
class OwnedNumber:
    e164: str
    carrier_sid: str
    friendly_name: str
    capabilities: dict[str, bool]


class Carrier(Protocol):
    def search(
        self, *, country: str, area_code: str, contains: str, limit: int
    ) -> list[AvailableNumber]: ...

    def find_owned(self, e164: str) -> OwnedNumber | None: ...

    def purchase(self, e164: str, friendly_name: str) -> OwnedNumber: ...

    def point_at_us(self, owned: OwnedNumber) -> None: ...

    def release(self, carrier_sid: str) -> None: ...


# Where Twilio sends a number's calls and call-status updates (served by the call runtime).
TWILIO_VOICE_PATH = "/carriers/twilio/voice"
TWILIO_STATUS_PATH = "/carriers/twilio/status"


def voice_webhook_url() -> str:
    return settings.PUBLIC_BASE_URL + TWILIO_VOICE_PATH


def status_callback_url() -> str:
    return settings.PUBLIC_BASE_URL + TWILIO_STATUS_PATH


class _RedirectedHttpClient(TwilioHttpClient):
    """Sends the SDK's requests to TWILIO_API_BASE_URL instead of Twilio's hosts."""

    def __init__(self, base_url: str) -> None:
        super().__init__(timeout=15)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        for host in ("https://api.twilio.com", "https://trunking.twilio.com"):
            url = url.replace(host, self.base_url)
        return super().request(method, url, *args, **kwargs)


def twilio_client(account: CarrierAccount) -> TwilioClient:
    """The Twilio SDK client for a tenant's Twilio account."""
    base_url = settings.TWILIO_API_BASE_URL
    http_client = _RedirectedHttpClient(base_url) if base_url else TwilioHttpClient(timeout=15)
    return TwilioClient(
        account.config["account_sid"], account.secrets["auth_token"], http_client=http_client
    )


class TwilioCarrier:
    def __init__(self, account: CarrierAccount) -> None:
        self.client = twilio_client(account)

    def _call(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TwilioRestException as exc:
            raise CarrierError(
                f"Twilio refused to {action}: {exc.msg} (code {exc.code})."
            ) from None
        except (TwilioException, OSError) as exc:
            raise CarrierError(f"Twilio could not be reached to {action}: {exc}.") from None

    def search(
        self, *, country: str, area_code: str, contains: str, limit: int
    ) -> list[AvailableNumber]:
        filters: dict[str, Any] = {"voice_enabled": True, "limit": limit}
        if area_code:
            filters["area_code"] = int(area_code)
        if contains:
            filters["contains"] = contains
        found = self._call(
            "search numbers", self.client.available_phone_numbers(country).local.list, **filters
        )
        return [
            AvailableNumber(
                e164=n.phone_number,
                friendly_name=n.friendly_name or n.phone_number,
                locality=n.locality or "",
                region=n.region or "",
                country=n.iso_country or country,
                capabilities=_capabilities(n.capabilities),
            )
            for n in found
        ]

    def find_owned(self, e164: str) -> OwnedNumber | None:
        found = self._call(
            "look up the number",
            self.client.incoming_phone_numbers.list,
            phone_number=e164,
            limit=1,
        )
        return _owned(found[0]) if found else None

    def purchase(self, e164: str, friendly_name: str) -> OwnedNumber:
        number = self._call(
            "sell this number",
            self.client.incoming_phone_numbers.create,
            phone_number=e164,
            friendly_name=friendly_name or e164,
            voice_url=voice_webhook_url(),
            voice_method="POST",
            status_callback=status_callback_url(),
            status_callback_method="POST",
        )
        return _owned(number)

    def point_at_us(self, owned: OwnedNumber) -> None:
        self._call(
            "configure the number",
            self.client.incoming_phone_numbers(owned.carrier_sid).update,
            voice_url=voice_webhook_url(),
            voice_method="POST",
            status_callback=status_callback_url(),
            status_callback_method="POST",
        )

    def release(self, carrier_sid: str) -> None:
        self._call("release the number", self.client.incoming_phone_numbers(carrier_sid).delete)


def _capabilities(raw: Any) -> dict[str, bool]:
    raw = raw or {}
    return {"voice": bool(raw.get("voice")), "sms": bool(raw.get("sms") or raw.get("SMS"))}


def _owned(number: Any) -> OwnedNumber:
    return OwnedNumber(
        e164=number.phone_number,
        carrier_sid=number.sid,
        friendly_name=number.friendly_name or number.phone_number,
        capabilities=_capabilities(number.capabilities),
    )


SANDBOX_AREA_CODES = ("415", "212", "312", "512", "206")


class SandboxCarrier:
    """Fictional North American numbers +1 NXX 555 01XX: never reachable, always available."""

    def __init__(self, account: CarrierAccount) -> None:
        self.account = account

    def _taken(self) -> set[str]:
        # Numbers are one platform-wide resource, whoever holds them.
        return set(
            PhoneNumber.all_tenants.filter(
                status=PhoneNumber.Status.ACTIVE, e164__contains="5550"
            ).values_list("e164", flat=True)
        )

    def search(
        self, *, country: str, area_code: str, contains: str, limit: int
    ) -> list[AvailableNumber]:
        if country != "US":
            return []
        if area_code and not (len(area_code) == 3 and area_code.isdigit()):
            raise CarrierError("An area code has three digits.")
        taken = self._taken()
        found = []
        for code in [area_code] if area_code else SANDBOX_AREA_CODES:
            for line in range(100, 200):
                e164 = f"+1{code}5550{line}"
                if e164 in taken or (contains and contains not in e164):
                    continue
                found.append(
                    AvailableNumber(
                        e164=e164,
                        friendly_name=f"({code}) 555-0{line}",
                        locality="Sandbox",
                        region="",
                        country="US",
                        capabilities={"voice": True, "sms": False},
                    )
                )
                if len(found) == limit:
                    return found
        return found

    def find_owned(self, e164: str) -> OwnedNumber | None:
        return None  # a sandbox number exists only once it has been issued

    def purchase(self, e164: str, friendly_name: str) -> OwnedNumber:
        if not is_sandbox_number(e164):
            raise CarrierError("The sandbox issues only fictional numbers +1 NXX 555 0100-0199.")
        return OwnedNumber(
            e164=e164,
            carrier_sid=f"SB{random_base62(32)}",
            friendly_name=friendly_name or e164,
            capabilities={"voice": True, "sms": False},
        )

    def point_at_us(self, owned: OwnedNumber) -> None:
        return None  # sandbox numbers only ever ring the built-in call simulator

    def release(self, carrier_sid: str) -> None:
        return None


def is_sandbox_number(e164: str) -> bool:
    return (
        len(e164) == 12
        and e164.startswith("+1")
        and e164[5:9] == "5550"
        and e164[9:].isdigit()
        and 100 <= int(e164[9:]) <= 199
    )


class OpenAISipCarrier:
    """Numbers on a SIP trunk pointing at an OpenAI project. The trunk's provider owns them;
    they are registered here with an import, and their calls arrive as OpenAI webhooks."""

    def __init__(self, account: CarrierAccount) -> None:
        self.account = account

    def search(
        self, *, country: str, area_code: str, contains: str, limit: int
    ) -> list[AvailableNumber]:
        raise CarrierError(
            "OpenAI SIP numbers come from your SIP trunk provider; import them instead."
        )

    def find_owned(self, e164: str) -> OwnedNumber | None:
        return OwnedNumber(
            e164=e164,
            carrier_sid="",
            friendly_name=e164,
            capabilities={"voice": True, "sms": False},
        )

    def purchase(self, e164: str, friendly_name: str) -> OwnedNumber:
        raise CarrierError(
            "OpenAI SIP numbers come from your SIP trunk provider; import them instead."
        )

    def point_at_us(self, owned: OwnedNumber) -> None:
        return None  # the project's webhook (realtime.call.incoming) already points here

    def release(self, carrier_sid: str) -> None:
        return None


def openai_sip_client(account: CarrierAccount) -> OpenAI:
    """OpenAI's call-control API (accept, reject, refer, hang up) for an OpenAI SIP account."""
    return OpenAI(
        api_key=account.secrets["api_key"],
        base_url=settings.OPENAI_BASE_URL or None,
        webhook_secret=account.secrets["webhook_secret"],
        max_retries=1,
    )


def carrier_for(account: CarrierAccount) -> Carrier:
    if account.kind == CarrierAccount.Kind.TWILIO:
        return TwilioCarrier(account)
    if account.kind == CarrierAccount.Kind.OPENAI_SIP:
        return OpenAISipCarrier(account)
    return SandboxCarrier(account)
