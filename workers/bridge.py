"""The Twilio Media Streams bridge: carrier audio to the model and back, for one call.

The audio path is raw text both ways: a carrier `media` frame becomes an
`input_audio_buffer.append` by slicing out its base64 payload (the same encoding on both
sides), and a model `response.output_audio.delta` becomes a carrier `media` frame the same
way. Everything else is parsed as JSON and handled here; database work happens only at the
start, in one-second batches, and at the end.
"""

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from agents.models import AgentVersion, CarrierAccount, Tool
from agents.selectors import tools_for_version
from calls.models import Call, CallEvent
from calls.redaction import Policy
from calls.services import call_answered, call_transfer_update
from tenants.access import Actor
from tenants.rls import tenant_context, tenant_lookup
from tenants.services import audit_event_record
from workers import twilio
from workers.playback import Playback
from workers.realtime import model_endpoint, say_exactly, session_config
from workers.recording import Recorder
from workers.runtime import CallRuntime, close_model, in_thread, retrying

logger = logging.getLogger(__name__)

# Both peers send compact JSON with the type first; spaced JSON takes the fast path too.
MEDIA_PREFIXES = ('{"event":"media"', '{"event": "media"')
DELTA_PREFIXES = (
    b'{"type":"response.output_audio.delta"',
    b'{"type": "response.output_audio.delta"',
)
BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
RECONNECT_DELAYS = (0.5, 1.5)  # attempts after each loss
MAX_RECONNECTS = 3  # losses survived in one call; a model that keeps dropping is given up on
START_TIMEOUT = 10.0
APOLOGY = "We're sorry, we're having technical trouble right now."


def string_field(text: str, name: str) -> str | None:
    """The value of the string field `name` in a JSON text without nesting of that name, read
    without parsing the whole text (audio frames are mostly base64). None if it is absent or
    not a plain string; callers check the value's alphabet before trusting it."""
    key = text.find('"' + name + '"')
    if key < 0:
        return None
    colon = text.find(":", key + len(name) + 2)
    opening = text.find('"', colon + 1)
    if colon < 0 or opening < 0 or text[colon + 1 : opening].strip():
        return None
    closing = text.find('"', opening + 1)
    return text[opening + 1 : closing] if closing >= 0 else None


def _member(message: dict[str, Any], section: str, name: str) -> Any:
    """message[section][name], or None when either is missing or not an object."""
    inner = message.get(section)
    return inner.get(name) if isinstance(inner, dict) else None


def _decoded_bytes(payload: str) -> int:
    return len(payload) * 3 // 4 - payload[-2:].count("=")


class MediaStreamCall(CallRuntime):
    """One call on the Media Streams path. The consumer feeds it carrier frames."""

    def __init__(
        self,
        send_carrier: Callable[[str], Awaitable[None]],
        close_carrier: Callable[[], Awaitable[None]],
        upgrade_signature: str,
    ) -> None:
        super().__init__()
        self._send_carrier = send_carrier
        self._close_carrier = close_carrier
        self.upgrade_signature = upgrade_signature
        self.started = False
        self.carrier_open = True
        self.stream_sid = ""
        self.account: CarrierAccount | None = None
        self.control: twilio.CallControl | None = None
        self.model: Any = None
        self._model_manager: Any = None
        self._reader: asyncio.Task[None] | None = None
        # Playback: each audio chunk sent to the carrier is followed by a mark; the carrier
        # echoes the mark once the caller has heard the chunk.
        self.playback = Playback()
        self.last_mark = ""
        self.after_playback: Callable[[], Awaitable[None]] | None = None
        self.turn_stopped_at = 0.0
        self.pending_tools: list[asyncio.Task[Any]] = []
        self.action: dict[str, Any] | None = None
        self.responding = False  # between the model's response.created and its response.done
        self.reconnects = 0
        self._ignored: set[str] = set()

    # --- Carrier -> us ------------------------------------------------------------------------

    async def carrier_text(self, text: str) -> None:
        if self.started and text.startswith(MEDIA_PREFIXES):
            payload = string_field(text, "payload")
            if payload is not None and BASE64.fullmatch(payload) and self.model is not None:
                if self.recorder is not None:
                    self.recorder.heard(payload)
                await self._model_send(
                    '{"type":"input_audio_buffer.append","audio":"' + payload + '"}'
                )
                return
        try:
            message = json.loads(text)
            event = message["event"]
        except (ValueError, KeyError, TypeError, RecursionError):  # (nested too deep to read)
            logger.warning("ignored a malformed carrier frame", extra=self._log_extra())
            return
        if event == "media":  # a media frame in an unexpected shape
            payload = _member(message, "media", "payload")
            if not self.started:
                self._ignore("media on a stream that has not started")
            elif not (isinstance(payload, str) and BASE64.fullmatch(payload)):
                self._ignore("a media frame without base64 audio")
            elif self.model is not None:  # (none while the model reconnects)
                if self.recorder is not None:
                    self.recorder.heard(payload)
                await self._model_send(
                    json.dumps({"type": "input_audio_buffer.append", "audio": payload})
                )
        elif event == "start":
            await self._start(message)
        elif event == "mark":
            name = _member(message, "mark", "name")
            await self._marked("" if name is None else str(name))
        elif event == "dtmf":
            digit = _member(message, "dtmf", "digit")
            await self._dtmf("" if digit is None else str(digit))
        elif event == "stop":
            if not self.started and not self.ended:
                logger.warning("media stream stopped before it started", extra=self._log_extra())
            await self.end(self.end_reason or Call.EndReason.CALLER_HANGUP)
        elif event != "connected":
            logger.warning(
                "ignored a carrier event",
                extra={"carrier_event": str(event)[:40], **self._log_extra()},
            )

    def _log_extra(self) -> dict[str, str]:
        return {"call_id": self.call.public_id if self.call else ""}

    def _ignore(self, what: str) -> None:
        """Log each kind of ignored frame once per stream, so that repeating it cannot flood
        the log."""
        if what not in self._ignored:
            self._ignored.add(what)
            logger.warning("ignored %s", what, extra=self._log_extra())

    async def _refuse(self, why: str) -> None:
        logger.warning("media stream refused: %s", why, extra=self._log_extra())
        self.ended = True
        await self._hang_up_carrier()

    async def start_timeout(self) -> None:
        if not self.started and not self.ended:
            await self._refuse("no valid start message")

    async def _start(self, message: dict[str, Any]) -> None:
        if self.started or self.ended:
            logger.warning("ignored a second start message", extra=self._log_extra())
            return
        start = message.get("start")
        token = _member(start, "customParameters", "token") if isinstance(start, dict) else None
        claims = twilio.read_stream_token(token) if isinstance(token, str) else None
        if claims is None or not isinstance(start, dict):
            await self._refuse("forged or expired token")
            return
        call_sid = str(start.get("callSid", ""))
        loaded = await retrying(lambda: in_thread(self._load)(claims, call_sid), "load the call")
        if loaded is None:
            await self._refuse("the token's call is not waiting for a stream")
            return
        self.call, self.version, self.account, tools = loaded
        if not twilio.signature_valid(
            self.account,
            twilio.public_url(twilio.MEDIA_PATH, websocket=True),
            {},
            self.upgrade_signature,
        ):
            await self.in_tenant(self._audit_rejection)()
            self.call = None
            await self._refuse("bad upgrade signature")
            return
        self.tools = {tool.name: tool for tool in tools}
        if self.version.recording_enabled and Policy.of(self.version.redaction).keeps_recordings:
            self.recorder = Recorder()
        self.control = twilio.control_for(self.call, self.account)
        self.stream_sid = str(message.get("streamSid") or start.get("streamSid") or "")
        self.started = True
        try:
            sandbox = await self._connect_model(reseed=False)
        except Exception:
            logger.exception("could not reach the model", extra=self._log_extra())
            await self.in_tenant(call_answered)(self.call, sandbox=False)
            await self._give_up()
            return
        call = self.call
        await retrying(
            lambda: self.in_tenant(call_answered)(call, sandbox=sandbox),
            "mark the call answered",
            call.public_id,
        )
        self.start_background()
        if self.version.greeting:
            await self.speak(self.version.greeting)

    def _load(
        self, claims: dict[str, str], call_sid: str
    ) -> tuple[Call, AgentVersion, CarrierAccount, list[Tool]] | None:
        with tenant_lookup("the call a media stream's token names"):
            call = (
                Call.all_tenants.select_related(
                    "tenant", "version", "agent", "phone_number__carrier_account"
                )
                .filter(public_id=claims.get("call"), tenant__public_id=claims.get("tenant"))
                .first()
            )
        if (
            call is None
            or call.status != Call.Status.RINGING
            or call.version is None
            or call.phone_number is None
        ):
            return None
        if call_sid and call_sid != call.carrier_call_id:
            return None
        with tenant_context(call.tenant_id):
            tools = tools_for_version(call.version)
        return call, call.version, call.phone_number.carrier_account, tools

    def _audit_rejection(self) -> None:
        assert self.call is not None and self.call.phone_number is not None
        audit_event_record(
            actor=Actor.system("media stream"),
            action="carrier.signature_rejected",
            target=self.call.phone_number,
            changes={"path": [None, twilio.MEDIA_PATH]},
        )

    # --- Model --------------------------------------------------------------------------------

    async def _connect_model(self, *, reseed: bool) -> bool:
        assert self.version is not None
        endpoint = await model_endpoint()
        manager = endpoint.client().realtime.connect(model=self.version.model)
        connection = await manager.__aenter__()
        update = {
            "type": "session.update",
            "session": session_config(self.version, list(self.tools.values())),
        }
        await connection.send_raw(json.dumps(update))
        if reseed:
            for speaker, text in self.conversation[-30:]:
                role, kind = (
                    ("user", "input_text") if speaker == "caller" else ("assistant", "output_text")
                )
                item = {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}
                await connection.send_raw(
                    json.dumps({"type": "conversation.item.create", "item": item})
                )
        self.model, self._model_manager = connection, manager
        self._reader = self.spawn(self._read_model())
        return endpoint.sandbox

    async def _model_send(self, text: str) -> None:
        try:
            await self.model.send_raw(text)
        except Exception:  # the reader notices the lost socket and recovers
            logger.debug("model send failed", extra=self._log_extra())

    async def _read_model(self) -> None:
        connection = self.model
        try:
            while True:
                data = await connection.recv_bytes()
                if data.startswith(DELTA_PREFIXES):
                    text = data.decode()
                    item_id, delta = string_field(text, "item_id"), string_field(text, "delta")
                    # The delta goes into the carrier's frame unescaped: base64 only.
                    if item_id is not None and delta is not None and BASE64.fullmatch(delta):
                        await self._forward_audio(item_id, delta)
                        continue
                await self._model_event(json.loads(data))
        except (ConnectionClosed, OSError) as exc:
            if not self.ended:
                await self._model_lost(exc)
        except asyncio.CancelledError:
            raise

    async def _model_lost(self, exc: Exception) -> None:
        self.record(CallEvent.Kind.ERROR, source="model", message=f"model connection lost: {exc}")
        self.reconnects += 1
        cut, self.responding = self.responding, False
        # Tool calls of the lost response: the new session never asked for them.
        for task in self.pending_tools:
            task.cancel()
        self.pending_tools = []
        for delay in RECONNECT_DELAYS if self.reconnects <= MAX_RECONNECTS else ():
            await asyncio.sleep(delay)
            try:
                await self._connect_model(reseed=True)
            except Exception as retry_error:
                self.record(
                    CallEvent.Kind.ERROR, source="model", message=f"reconnect failed: {retry_error}"
                )
                continue
            self.record(CallEvent.Kind.NOTICE, message="model reconnected; conversation re-seeded")
            if cut:
                await self._answer_again()
            self.playback.clear()
            return
        await self._give_up()

    async def _answer_again(self) -> None:
        """The model was lost mid-answer: the caller would otherwise wait in silence for the
        rest. Drop what the carrier has not played of the cut answer and have the new session
        answer the caller's last turn from the start."""
        if self.playback.unheard:
            await self._send_carrier('{"event":"clear","streamSid":"' + self.stream_sid + '"}')
        await self._model_send('{"type":"response.create"}')
        self.record(CallEvent.Kind.NOTICE, message="the model's answer was cut; it answers again")

    async def _give_up(self) -> None:
        """The model is gone: apologise through the carrier, then the fallback number or hang up."""
        assert self.call is not None and self.control is not None
        fallback = self.call.agent.fallback_number if self.call.agent else ""
        self.end_reason = Call.EndReason.MODEL_ERROR
        try:
            await in_thread(self.control.redirect)(twilio.apologise(APOLOGY, fallback))
            self.record(
                CallEvent.Kind.NOTICE,
                message="apologised through the carrier",
                fallback=fallback or None,
            )
            if fallback:
                self.record(
                    CallEvent.Kind.TRANSFER,
                    state=Call.TransferStatus.INITIATED,
                    destination=fallback,
                )
                await self.in_tenant(call_transfer_update)(
                    self.call, status=Call.TransferStatus.INITIATED, target=fallback
                )
        except twilio.CarrierError as error:
            self.record(CallEvent.Kind.ERROR, source="carrier", message=str(error))
        await self.end(Call.EndReason.MODEL_ERROR)

    async def _model_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_audio.delta":
            item_id, delta = str(event.get("item_id", "")), str(event.get("delta", ""))
            if BASE64.fullmatch(delta):
                await self._forward_audio(item_id, delta)
        elif kind == "response.output_audio.done":
            # Mark the tail of the item, so the carrier confirms when all of it was heard.
            mark = self.playback.mark_all()
            if mark is not None:
                await self._send_mark(mark)
        elif kind == "input_audio_buffer.speech_started":
            self.last_activity = time.monotonic()
            await self._barge_in()
        elif kind == "input_audio_buffer.speech_stopped":
            self.turn_stopped_at = time.monotonic()
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.heard(
                "caller", str(event.get("transcript", "")).strip(), item_id=event.get("item_id")
            )
        elif kind == "response.output_audio_transcript.done":
            self.heard(
                "agent", str(event.get("transcript", "")).strip(), item_id=event.get("item_id")
            )
        elif kind == "response.function_call_arguments.done":
            self.pending_tools.append(
                self.spawn(
                    self.run_tool(
                        str(event.get("call_id", "")),
                        str(event.get("name", "")),
                        str(event.get("arguments", "")),
                    )
                )
            )
        elif kind == "response.created":
            self.responding = True
        elif kind == "response.done":
            self.responding = False
            await self._response_done(event.get("response") or {})
        elif kind == "error":
            error = event.get("error") or {}
            self.record(
                CallEvent.Kind.ERROR,
                source="model",
                code=error.get("code"),
                message=error.get("message"),
            )

    async def _response_done(self, response: dict[str, Any]) -> None:
        self.add_usage(response.get("usage"))
        if self.pending_tools:
            tasks, self.pending_tools = self.pending_tools, []
            for call_id, outcome in await asyncio.gather(*tasks):
                if outcome.action:
                    self.action = outcome.action
                item = {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": self.tool_output(outcome),
                }
                await self._model_send(
                    json.dumps({"type": "conversation.item.create", "item": item})
                )
            await self._model_send('{"type":"response.create"}')
            return
        if response.get("status") != "completed":
            return
        action, self.action = self.action, None
        if action is not None:
            await self._after_audio(lambda: self._carry_out(action))
        elif self.closing_reason:
            reason = self.closing_reason
            await self._after_audio(lambda: self.end(reason))

    async def _after_audio(self, then: Callable[[], Awaitable[None]]) -> None:
        """Do `then` once the caller has heard everything sent so far."""
        name = self.playback.mark_all()
        if not self.playback.pending:
            self.spawn(then())
            return
        # Armed before the mark goes out: its echo may come back before the send returns.
        self.after_playback = then
        self.last_mark = self.playback.last_mark()
        if name is not None:
            await self._send_mark(name)

    async def _carry_out(self, action: dict[str, Any]) -> None:
        if action.get("type") == "end_call":
            self.record(
                CallEvent.Kind.NOTICE,
                message="the agent ended the call",
                reason=action.get("reason"),
            )
            await self.end(Call.EndReason.AGENT_HANGUP)
        elif action.get("type") == "transfer":
            await self._transfer(str(action["destination"]), str(action.get("name", "")))

    async def _transfer(self, destination: str, name: str) -> None:
        """A cold transfer: the carrier dials the destination; this stream ends."""
        assert self.call is not None and self.control is not None
        self.record(
            CallEvent.Kind.TRANSFER,
            state=Call.TransferStatus.INITIATED,
            destination=destination,
            name=name,
        )
        await self.in_tenant(call_transfer_update)(
            self.call, status=Call.TransferStatus.INITIATED, target=destination
        )
        try:
            await in_thread(self.control.redirect)(twilio.transfer_twiml(self.call, destination))
        except twilio.CarrierError as error:
            self.record(
                CallEvent.Kind.TRANSFER,
                state=Call.TransferStatus.FAILED,
                destination=destination,
                error=str(error),
            )
            await self.in_tenant(call_transfer_update)(self.call, status=Call.TransferStatus.FAILED)
            await self.speak(
                "I'm sorry, I couldn't transfer you just now. Can I help in another way?"
            )
            return
        self.end_reason = Call.EndReason.TRANSFERRED
        if self.control.sandbox:
            # No real phone rings in the sandbox: the transfer goes through as Twilio reports it.
            for state in (Call.TransferStatus.RINGING, Call.TransferStatus.BRIDGED):
                self.record(
                    CallEvent.Kind.TRANSFER, state=state, destination=destination, sandbox=True
                )
            await self.in_tenant(call_transfer_update)(
                self.call, status=Call.TransferStatus.BRIDGED
            )
            await self.end(Call.EndReason.TRANSFERRED)

    # --- Us -> carrier ------------------------------------------------------------------------

    async def _forward_audio(self, item_id: str, delta: str) -> None:
        if self.turn_stopped_at:
            latency = round((time.monotonic() - self.turn_stopped_at) * 1000, 1)
            self.turn_stopped_at = 0.0
            self.record(CallEvent.Kind.LATENCY, ms=latency, item_id=item_id)
        mark = self.playback.sending(item_id, _decoded_bytes(delta))
        if self.recorder is not None:
            self.recorder.said(item_id, delta)
        await self._send_carrier(
            '{"event":"media","streamSid":"'
            + self.stream_sid
            + '","media":{"payload":"'
            + delta
            + '"}}'
        )
        if mark is not None:
            await self._send_mark(mark)
        self.last_activity = time.monotonic()

    async def _send_mark(self, name: str) -> None:
        await self._send_carrier(
            '{"event":"mark","streamSid":"' + self.stream_sid + '","mark":{"name":"' + name + '"}}'
        )

    async def _marked(self, name: str) -> None:
        if not self.playback.issued(name):
            self._ignore("a mark this stream never sent")
            return
        if self.playback.echoed(name, time.monotonic()):
            self.last_activity = time.monotonic()
        if name and name == self.last_mark and self.after_playback is not None:
            then, self.after_playback, self.last_mark = self.after_playback, None, ""
            await then()

    async def _barge_in(self) -> None:
        """The caller spoke over the agent: drop what the carrier has not played yet and tell the
        model where the caller stopped hearing it."""
        if not self.playback.unheard:
            return
        item_id = self.playback.item
        played_ms = self.playback.position_ms(time.monotonic())
        self.playback.clear()  # the carrier echoes pending marks on clear; they were not heard
        await self._send_carrier('{"event":"clear","streamSid":"' + self.stream_sid + '"}')
        await self._model_send(
            json.dumps(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": played_ms,
                }
            )
        )
        self.record(CallEvent.Kind.BARGE_IN, item_id=item_id, played_ms=played_ms)
        if self.recorder is not None:
            self.recorder.cut(item_id, played_ms)
        if self.after_playback is not None:  # interrupted while saying goodbye: carry on ending
            then, self.after_playback, self.last_mark = self.after_playback, None, ""
            self.spawn(then())

    async def _dtmf(self, digit: str) -> None:
        if not self.started:
            self._ignore("a keypad event on a stream that has not started")
            return
        if len(digit) != 1:
            self._ignore("a keypad event without one key")
            return
        self.last_activity = time.monotonic()
        self.record(CallEvent.Kind.DTMF, digit=digit)
        item = {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": f"The caller pressed {digit} on the keypad."}
            ],
        }
        await self._model_send(json.dumps({"type": "conversation.item.create", "item": item}))
        await self._model_send('{"type":"response.create"}')

    async def speak(self, text: str) -> None:
        await self._model_send(json.dumps(say_exactly(text)))

    # --- Ending -------------------------------------------------------------------------------

    async def carrier_closed(self) -> None:
        self.carrier_open = False
        await self.end(self.end_reason or Call.EndReason.CALLER_HANGUP)

    async def close_transports(self) -> None:
        """Hang up the caller (if still there) and close the model, each without waiting on the
        other: a dead line must never keep the model session open."""
        await asyncio.gather(
            self._hang_up_carrier(), close_model(self.model), return_exceptions=True
        )

    async def _hang_up_carrier(self) -> None:
        if self.carrier_open:
            self.carrier_open = False
            await self._close_carrier()
