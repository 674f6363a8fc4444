"""A fake of Twilio's REST API (2010-04-01) for phone numbers: search, buy, list, update, release.

It speaks Twilio's wire format: HTTP Basic auth with AccountSid:AuthToken, form-encoded bodies
with PascalCase names, JSON responses with Twilio's page envelope and error documents.
"""

import base64
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeServer, Recorded, Reply

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "fake-twilio-auth-token"


@dataclass
class Number:
    sid: str
    phone_number: str
    friendly_name: str
    voice_url: str = ""
    voice_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"

    def resource(self, account_sid: str) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "account_sid": account_sid,
            "phone_number": self.phone_number,
            "friendly_name": self.friendly_name,
            "voice_url": self.voice_url,
            "voice_method": self.voice_method,
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
            "status": "in-use",
            "api_version": "2010-04-01",
            "uri": f"/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{self.sid}.json",
        }


@dataclass
class FakeTwilio:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    # Numbers Twilio would sell: e164 -> (locality, region).
    for_sale: dict[str, tuple[str, str]] = field(default_factory=dict)
    owned: dict[str, Number] = field(default_factory=dict)  # by sid
    server: FakeServer = field(default_factory=FakeServer)

    def start(self) -> "FakeTwilio":
        base = f"/2010-04-01/Accounts/{self.account_sid}"
        self.server.route(
            "GET", base + r"/AvailablePhoneNumbers/(?P<country>[A-Z]{2})/Local\.json", self._search
        )
        self.server.route("GET", base + r"/IncomingPhoneNumbers\.json", self._list)
        self.server.route("POST", base + r"/IncomingPhoneNumbers\.json", self._buy)
        self.server.route(
            "POST", base + r"/IncomingPhoneNumbers/(?P<sid>PN\w+)\.json", self._update
        )
        self.server.route(
            "DELETE", base + r"/IncomingPhoneNumbers/(?P<sid>PN\w+)\.json", self._release
        )
        self.server.route("POST", base + r"/Calls/(?P<sid>CA\w+)\.json", self._update_call)
        self.server.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def requests(self) -> list[Recorded]:
        return self.server.requests

    def add_owned(self, phone_number: str) -> Number:
        number = Number(
            sid="PN" + secrets.token_hex(16), phone_number=phone_number, friendly_name=phone_number
        )
        self.owned[number.sid] = number
        return number

    def _authorised(self, request: Recorded) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("authorization") == f"Basic {expected}"

    @staticmethod
    def _error(status: int, code: int, message: str) -> Reply:
        return Reply(
            status,
            {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            },
        )

    def _guard(self, request: Recorded) -> Reply | None:
        return None if self._authorised(request) else self._error(401, 20003, "Authenticate")

    def _search(self, request: Recorded, match: Any) -> Reply:
        if denied := self._guard(request):
            return denied
        area = request.query.get("AreaCode", [""])[0]
        contains = request.query.get("Contains", [""])[0]
        size = int(request.query.get("PageSize", ["50"])[0])
        found = [
            {
                "phone_number": e164,
                "friendly_name": e164,
                "locality": locality,
                "region": region,
                "iso_country": match["country"],
                "postal_code": None,
                "lata": None,
                "rate_center": None,
                "latitude": None,
                "longitude": None,
                "address_requirements": "none",
                "beta": False,
                "capabilities": {"voice": True, "SMS": True, "MMS": False, "fax": False},
            }
            for e164, (locality, region) in self.for_sale.items()
            if (not area or e164[2:5] == area) and (not contains or contains in e164)
        ][:size]
        return Reply(
            200, {"available_phone_numbers": found, "uri": request.path, "next_page_uri": None}
        )

    def _list(self, request: Recorded, match: Any) -> Reply:
        if denied := self._guard(request):
            return denied
        wanted = request.query.get("PhoneNumber", [""])[0]
        numbers = [
            n.resource(self.account_sid)
            for n in self.owned.values()
            if not wanted or n.phone_number == wanted
        ]
        return Reply(
            200,
            {
                "incoming_phone_numbers": numbers,
                "uri": request.path,
                "next_page_uri": None,
                "page": 0,
                "page_size": 50,
                "first_page_uri": request.path,
                "previous_page_uri": None,
            },
        )

    def _buy(self, request: Recorded, match: Any) -> Reply:
        if denied := self._guard(request):
            return denied
        form = request.form()
        e164 = form.get("PhoneNumber", [""])[0]
        if e164 not in self.for_sale:
            return self._error(400, 21422, f"PhoneNumber {e164} is not available.")
        del self.for_sale[e164]
        number = self.add_owned(e164)
        number.friendly_name = form.get("FriendlyName", [e164])[0]
        self._apply(number, form)
        return Reply(201, number.resource(self.account_sid))

    @staticmethod
    def _apply(number: Number, form: dict[str, list[str]]) -> None:
        for name, attribute in (
            ("VoiceUrl", "voice_url"),
            ("VoiceMethod", "voice_method"),
            ("StatusCallback", "status_callback"),
            ("StatusCallbackMethod", "status_callback_method"),
        ):
            if name in form:
                setattr(number, attribute, form[name][0])

    def _update(self, request: Recorded, match: Any) -> Reply:
        if denied := self._guard(request):
            return denied
        number = self.owned.get(match["sid"])
        if number is None:
            return self._error(404, 20404, "The requested resource was not found")
        self._apply(number, request.form())
        return Reply(200, number.resource(self.account_sid))

    def call_updates(self, call_sid: str) -> list[dict[str, list[str]]]:
        """The form bodies of every update of a live call (TwiML redirects, hang-ups)."""
        return [
            r.form()
            for r in self.requests
            if r.method == "POST" and r.path.endswith(f"/Calls/{call_sid}.json")
        ]

    def _update_call(self, request: Recorded, match: Any) -> Reply:
        if denied := self._guard(request):
            return denied
        form = request.form()
        return Reply(
            200,
            {
                "sid": match["sid"],
                "account_sid": self.account_sid,
                "status": "in-progress",
                "twiml": form.get("Twiml", [""])[0],
                "api_version": "2010-04-01",
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Calls/{match['sid']}.json",
            },
        )

    def _release(self, request: Recorded, match: Any) -> Reply:
        if denied := self._guard(request):
            return denied
        if self.owned.pop(match["sid"], None) is None:
            return self._error(404, 20404, "The requested resource was not found")
        return Reply(204)
