"""The OpenAI SIP path: OpenAI carries the call's audio; we attach to its sideband WebSocket
(`?call_id=`) for tools, transcripts, DTMF, transfers (SIP REFER) and hanging up."""

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

from django.conf import settings
from openai import AsyncOpenAI, OpenAIError
from websockets.exceptions import ConnectionClosed

from agents.models import AgentVersion, CarrierAccount, Tool
from agents.selectors import tools_for_version
from calls.models import Call, CallEvent
from calls.services import call_answered, call_transfer_update
from tenants.rls import tenant_context, tenant_lookup
from workers.realtime import say_exactly
from workers.runtime import CallRuntime, close_model, in_thread

logger = logging.getLogger(__name__)


class SidebandCall(CallRuntime):
    def __init__(self, call_public_id: str) -> None:
        super().__init__()
        self.call_public_id = call_public_id
        self.account: CarrierAccount | None = None
        self.client: AsyncOpenAI | None = None
        self.model: Any = None
        self.pending_tools: list[asyncio.Task[Any]] = []
        self.action: dict[str, Any] | None = None
        self.after_audio: dict[str, Any] | None = None
        self.speaking = False

    def _load(self) -> tuple[Call, AgentVersion, CarrierAccount, list[Tool]] | None:
        with tenant_lookup("the call a sideband attaches to"):
            call = (
                Call.all_tenants.select_related(
                    "tenant", "version", "agent", "phone_number__carrier_account"
                )
                .filter(public_id=self.call_public_id)
                .first()
            )
        if (
            call is None
            or call.status != Call.Status.RINGING
            or call.version is None
            or call.phone_number is None
        ):
            return None
        with tenant_context(call.tenant_id):
            tools = tools_for_version(call.version)
        return call, call.version, call.phone_number.carrier_account, tools

    async def run(self) -> None:
        loaded = await in_thread(self._load)()
        if loaded is None:
            logger.warning(
                "sideband: the call is not waiting", extra={"call_id": self.call_public_id}
            )
            return
        self.call, self.version, self.account, tools = loaded
        self.tools = {tool.name: tool for tool in tools}
        self.client = AsyncOpenAI(
            api_key=self.account.secrets["api_key"],
            base_url=settings.OPENAI_BASE_URL or None,
            websocket_base_url=settings.OPENAI_REALTIME_URL or None,
            max_retries=0,
        )
        try:
            manager = self.client.realtime.connect(call_id=self.call.carrier_call_id)
            self.model = await manager.__aenter__()
        except Exception as error:
            logger.exception("sideband: could not attach", extra={"call_id": self.call_public_id})
            self.record(CallEvent.Kind.ERROR, source="model", message=f"could not attach: {error}")
            await self._give_up()
            return
        await self.in_tenant(call_answered)(self.call, sandbox=False)
        self.start_background()
        if self.version.greeting:
            await self.speak(self.version.greeting)
        try:
            while not self.ended:
                await self._event(json.loads(await self.model.recv_bytes()))
        except ConnectionClosed as closed:
            # The sideband closes normally when the phone call ends; any other close (a revoked
            # key, a server fault) is the model's failure and must not read as the caller's.
            code = closed.rcvd.code if closed.rcvd else None
            if self.end_reason or code in (None, 1000, 1001):
                await self.end(self.end_reason or Call.EndReason.CALLER_HANGUP)
            else:
                await self._give_up()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("sideband failed", extra={"call_id": self.call_public_id})
            await self._give_up()

    async def _send(self, event: dict[str, Any]) -> None:
        with contextlib.suppress(Exception):
            await self.model.send_raw(json.dumps(event))

    async def speak(self, text: str) -> None:
        await self._send(say_exactly(text))

    async def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            self.last_activity = time.monotonic()
        elif kind == "conversation.item.input_audio_transcription.completed":
            self.last_activity = time.monotonic()
            self.heard(
                "caller", str(event.get("transcript", "")).strip(), item_id=event.get("item_id")
            )
        elif kind == "response.output_audio_transcript.done":
            self.heard(
                "agent", str(event.get("transcript", "")).strip(), item_id=event.get("item_id")
            )
        elif kind == "output_audio_buffer.started":
            self.speaking = True
            self.last_activity = time.monotonic()
        elif kind in ("output_audio_buffer.stopped", "output_audio_buffer.cleared"):
            self.speaking = False
            await self._after_audio()
        elif kind == "input_audio_buffer.dtmf_event_received":
            digit = str(event.get("event", ""))[:1]
            self.record(CallEvent.Kind.DTMF, digit=digit)
            item = {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": f"The caller pressed {digit} on the keypad."}
                ],
            }
            await self._send({"type": "conversation.item.create", "item": item})
            await self._send({"type": "response.create"})
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
        elif kind == "response.done":
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
                await self._send(
                    {
                        "type": "conversation.item.create",
                        "item": {
                            "type": "function_call_output",
                            "call_id": call_id,
                            "output": self.tool_output(outcome),
                        },
                    }
                )
            await self._send({"type": "response.create"})
            return
        if response.get("status") != "completed":
            return
        pending = self.action or ({"type": "close"} if self.closing_reason else None)
        self.action = None
        if pending is not None:
            self.after_audio = pending
            if not self.speaking:
                await self._after_audio()

    async def _after_audio(self) -> None:
        action, self.after_audio = self.after_audio, None
        if action is None:
            return
        if action["type"] == "transfer":
            await self._refer(str(action["destination"]), str(action.get("name", "")))
        elif action["type"] == "end_call":
            self.record(
                CallEvent.Kind.NOTICE,
                message="the agent ended the call",
                reason=action.get("reason"),
            )
            await self._hang_up(Call.EndReason.AGENT_HANGUP)
        elif action["type"] == "close":
            await self._hang_up(self.closing_reason)

    async def _refer(self, destination: str, name: str) -> None:
        """A SIP REFER: the caller's leg moves to the destination."""
        assert self.call is not None and self.client is not None
        target = destination if destination.startswith(("sip:", "sips:")) else f"tel:{destination}"
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
            await self.client.realtime.calls.refer(self.call.carrier_call_id, target_uri=target)
        except OpenAIError as error:
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
        await self.end(Call.EndReason.TRANSFERRED)

    async def _give_up(self) -> None:
        """Without the sideband the call runs unsupervised (no tools, no limits): move the caller
        to the agent's fallback number if it has one, else hang up."""
        assert self.call is not None and self.client is not None
        fallback = self.call.agent.fallback_number if self.call.agent else ""
        self.end_reason = Call.EndReason.MODEL_ERROR
        if fallback:
            self.record(
                CallEvent.Kind.TRANSFER, state=Call.TransferStatus.INITIATED, destination=fallback
            )
            await self.in_tenant(call_transfer_update)(
                self.call, status=Call.TransferStatus.INITIATED, target=fallback
            )
        try:
            if fallback:
                await self.client.realtime.calls.refer(
                    self.call.carrier_call_id, target_uri=f"tel:{fallback}"
                )
            else:
                await self.client.realtime.calls.hangup(self.call.carrier_call_id)
        except OpenAIError as error:
            self.record(CallEvent.Kind.ERROR, source="carrier", message=str(error))
        await self.end(Call.EndReason.MODEL_ERROR)

    async def _hang_up(self, reason: str) -> None:
        assert self.call is not None and self.client is not None
        try:
            await self.client.realtime.calls.hangup(self.call.carrier_call_id)
        except OpenAIError as error:
            self.record(CallEvent.Kind.ERROR, source="carrier", message=f"hang-up failed: {error}")
        await self.end(reason)

    async def end(self, reason: str) -> None:
        if (
            not self.ended
            and reason in (Call.EndReason.MAX_DURATION, Call.EndReason.SILENCE_TIMEOUT)
            and self.client is not None
            and self.call is not None
        ):
            with contextlib.suppress(OpenAIError):
                await self.client.realtime.calls.hangup(self.call.carrier_call_id)
        await super().end(reason)

    async def close_transports(self) -> None:
        await close_model(self.model)
