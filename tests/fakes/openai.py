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
    # What /v1/chat/completions answers, in turn: a dict (the JSON content), a str (content as
    # is, e.g. not JSON), an int (an error status) or ("sleep", seconds). Empty: a valid
    # answer picking the first label offered ("resolved" when offered).
    completions: list[Any] = field(default_factory=list)

    def start(self) -> "FakeOpenAI":
        self.server.route(
            "POST",
            r"/v1/realtime/calls/(?P<call>[\w-]+)/(?P<action>accept|reject|refer|hangup)",
            self._control,
        )
        self.server.route("POST", r"/v1/chat/completions", self._complete)
        self.server.start()
        return self

    def completion_requests(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.server.requests if r.path == "/v1/chat/completions"]

    def _complete(self, request: Recorded, match: Any) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": {"message": "Incorrect API key provided"}})
        body = request.json()
        behaviour = self.completions.pop(0) if self.completions else None
        if isinstance(behaviour, tuple):
            time.sleep(behaviour[1])
            behaviour = None
        if isinstance(behaviour, int):
            return Reply(behaviour, {"error": {"message": "The server had an error"}})
        if behaviour is None:
            schema = body["response_format"]["json_schema"]["schema"]
            labels = schema["properties"]["label"]["enum"]
            fields = schema["properties"]["fields"]["required"]
            behaviour = {
                "label": "resolved" if "resolved" in labels else labels[0],
                "confidence": 0.9,
                "rationale": "The caller got the answer they asked for.",
                "evidence": [],
                "summary": "The caller asked a question and the agent answered it.",
                "contact_reason": "question",
                "sentiment": "positive",
                "fields": {name: None for name in fields},
            }
        content = behaviour if isinstance(behaviour, str) else json.dumps(behaviour)
        return Reply(
            200,
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"] + "-2025-04-14",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
            },
        )

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
