"""A fake of OpenAI's Realtime call-control REST API (accept, reject, refer, hang up) and a
helper to sign webhooks the way OpenAI does (Standard Webhooks)."""

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.server import FakeServer, Recorded, Reply

API_KEY = "sk-test-openai-project"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def sign_webhook(
    body: bytes,
    *,
    secret: str = WEBHOOK_SECRET,
    webhook_id: str = "wh_1",
    timestamp: int | None = None,
) -> dict[str, str]:
    timestamp = int(time.time()) if timestamp is None else timestamp
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{webhook_id}.{timestamp}.".encode() + body
    signature = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{signature}",
    }


def incoming_call(call_id: str, to: str, caller: str = "+15551234567") -> bytes:
    return json.dumps(
        {
            "object": "event",
            "id": f"evt_{call_id}",
            "type": "realtime.call.incoming",
            "created_at": int(time.time()),
            "data": {
                "call_id": call_id,
                "sip_media_security": "srtp",
                "sip_headers": [
                    {"name": "From", "value": f'"Caller" <sip:{caller}@pstn.example.net>;tag=8k2'},
                    {"name": "To", "value": f"<sip:{to}@sip.api.openai.com>"},
                    {"name": "Call-ID", "value": f"{call_id}@pstn.example.net"},
                ],
            },
        }
    ).encode()


@dataclass
class FakeOpenAI:
    api_key: str = API_KEY
    gone: set[str] = field(default_factory=set)  # calls that hung up: control answers 404
    server: FakeServer = field(default_factory=FakeServer)
    # Told of each accepted session, as OpenAI's own Realtime service would be.
    on_accept: Callable[[str, dict[str, Any]], None] | None = None

    def start(self) -> "FakeOpenAI":
        self.server.route(
            "POST",
            r"/v1/realtime/calls/(?P<call>[\w-]+)/(?P<action>accept|reject|refer|hangup)",
            self._control,
        )
        self.server.start()
        return self

    @property
    def url(self) -> str:
        return self.server.url + "/v1"

    def actions(self, call_id: str) -> list[tuple[str, Any]]:
        out = []
        for request in self.server.requests:
            parts = request.path.split("/")
            if len(parts) >= 6 and parts[4] == call_id:
                out.append((parts[5], json.loads(request.body) if request.body else None))
        return out

    def _control(self, request: Recorded, match: Any) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(
                401,
                {
                    "error": {
                        "message": "Incorrect API key provided",
                        "type": "invalid_request_error",
                    }
                },
            )
        if match["call"] in self.gone:
            return Reply(
                404, {"error": {"message": "Call not found", "type": "invalid_request_error"}}
            )
        if match["action"] == "accept" and self.on_accept is not None:
            self.on_accept(match["call"], json.loads(request.body))
        return Reply(200, b"")
