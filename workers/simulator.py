"""A Realtime API simulator: a WebSocket server on 127.0.0.1 that speaks the GA event set.

It is the product's sandbox model (when OPENAI_API_KEY is unset) and the tests' fake. What it
does, per connection:

- `session.created` on connect; `session.update` answered with `session.updated`.
- Server VAD from the energy of appended mu-law audio: `input_audio_buffer.speech_started`,
  `speech_stopped`, `committed`, the user item, and its transcription (read from caption
  frames in the audio, see workers.audio; "(inaudible)" without one).
- Responses with `response.output_audio.delta` (mu-law, captioned), transcript deltas,
  `response.done` with usage. A quoted text in `response.create` instructions is said word for
  word; otherwise the reply answers the last thing the caller said.
- Function calls when the caller asks for one: `[[tool_name {"arg": …}]]` in what they say, or
  a plain request a tool obviously fits (a question for a `query` tool, "a person" for a
  transfer tool, "goodbye" for an end-call tool).
- Barge-in (`interrupt_response` cancels the response in flight), `conversation.item.truncate`
  checked against the audio actually generated, `response.cancel`.
- Sideband connections (`?call_id=`) for the SIP path: the same events without audio; tests
  make the caller speak with `say_to_sideband`.

Tests reach in through the `RealtimeSimulator` object: received events, faults to inject.
"""

import asyncio
import base64
import contextlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from workers import audio

logger = logging.getLogger(__name__)

SPEECH_LOUDNESS = 500
SPEECH_START_FRAMES = 3
DIRECTIVE = re.compile(r"\[\[(\w[\w-]*)\s*(\{.*?\})?\]\]")
QUOTED = re.compile(r'"([^"]+)"')
GOODBYE = re.compile(r"\b(bye|goodbye|that's all|that is all|hang up)\b", re.I)
KEYPAD = re.compile(r"The caller pressed (\S+) on the keypad")
PERSON = re.compile(r"\b(person|human|someone|agent|representative|transfer)\b", re.I)


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass
class Item:
    id: str
    role: str  # user, assistant, function_call, function_call_output
    text: str = ""
    audio_ms: int = 0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Session:
    """One connection's state."""

    connection: ServerConnection
    model: str
    call_id: str
    config: dict[str, Any] = field(default_factory=dict)
    items: list[Item] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)
    response_task: asyncio.Task[None] | None = None
    # Voice detection over appended audio.
    audio_ms: int = 0
    loud_frames: int = 0
    quiet_ms: int = 0
    speaking: bool = False
    speech_started_ms: int = 0
    speech_item: str = ""
    heard: list[str] = field(default_factory=list)
    captions: audio.CaptionReader = field(default_factory=audio.CaptionReader)
    # Latency probes in the audio (benchmarks): (sequence, sent_ns, received_ns).
    stamps: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def turn_detection(self) -> dict[str, Any]:
        detection = self.config.get("audio", {}).get("input", {}).get("turn_detection")
        return detection if isinstance(detection, dict) else {}

    @property
    def tools(self) -> list[dict[str, Any]]:
        return [t for t in self.config.get("tools", []) if isinstance(t, dict)]


class RealtimeSimulator:
    def __init__(self, *, api_key: str | None = None, speedup: float = 0.0) -> None:
        self.api_key = api_key
        # How much faster than real time a response's audio is sent (OpenAI sends ahead of
        # playback); 0 sends it all at once.
        self.speedup = speedup
        self.sessions: list[Session] = []
        self.refuse_connections = 0
        self.stream_audio: bool = False  # benchmarks: answer every appended frame in kind
        # Sessions accepted over the call-control API, by call id: a sideband starts from them.
        self.accepted: dict[str, dict[str, Any]] = {}
        self._server: Server | None = None
        self._refusals: set[asyncio.Future[None]] = set()

    # --- Lifecycle ------------------------------------------------------------------------

    async def start(self, port: int = 0) -> "RealtimeSimulator":
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            port,
            max_size=None,
            compression=None,
            process_request=self._admit,
        )
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # --- Faults and probes for tests --------------------------------------------------------

    async def drop_all(self) -> None:
        """Close every connection abruptly, as a lost network would."""
        for session in self.sessions:
            with contextlib.suppress(Exception):
                session.connection.transport.abort()

    async def say_to_sideband(self, call_id: str, text: str) -> None:
        """The caller on a SIP call says `text` (audio rides SIP, so only its meaning arrives)."""
        session = next(s for s in self.sessions if s.call_id == call_id)
        await self._user_turn(session, text)

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [e for s in self.sessions for e in s.received if e.get("type") == kind]

    # --- Connection -----------------------------------------------------------------------

    def _admit(self, connection: ServerConnection, request: Any) -> Any:
        """Refuse the upgrade while `refuse_connections` lasts, as an unreachable service would."""
        if self.refuse_connections > 0:
            self.refuse_connections -= 1
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "unavailable\n")
        return None

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
        assert request is not None
        query = parse_qs(urlsplit(request.path).query)
        authorization = request.headers.get("Authorization", "")
        if not authorization.startswith("Bearer ") or (
            self.api_key and authorization != f"Bearer {self.api_key}"
        ):
            await self._send(
                connection,
                {
                    "type": "error",
                    "event_id": _id("event"),
                    "error": {
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                        "message": "Incorrect API key provided.",
                    },
                },
            )
            await connection.close(code=1008, reason="invalid api key")
            return
        session = Session(connection, query.get("model", [""])[0], query.get("call_id", [""])[0])
        session.config = self.accepted.get(session.call_id) or {
            "type": "realtime",
            "model": session.model,
            "output_modalities": ["audio"],
        }
        self.sessions.append(session)
        await self._send(
            connection,
            {
                "type": "session.created",
                "event_id": _id("event"),
                "session": {**session.config, "id": _id("sess")},
            },
        )
        try:
            async for raw in connection:
                await self._dispatch(session, raw)
        except ConnectionClosed:
            pass
        finally:
            if session.response_task:
                session.response_task.cancel()

    async def _send(self, connection: ServerConnection, event: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionClosed):
            await connection.send(json.dumps(event, separators=(",", ":")))

    async def _emit(self, session: Session, event: dict[str, Any]) -> None:
        event.setdefault("event_id", _id("event"))
        await self._send(session.connection, event)

    async def _error(
        self, session: Session, code: str, message: str, event_id: str | None = None
    ) -> None:
        await self._emit(
            session,
            {
                "type": "error",
                "error": {
                    "type": "invalid_request_error",
                    "code": code,
                    "message": message,
                    "event_id": event_id,
                },
            },
        )

    async def _dispatch(self, session: Session, raw: str | bytes) -> None:
        try:
            event = json.loads(raw)
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            await self._error(session, "invalid_json", "The message is not a JSON event.")
            return
        if kind != "input_audio_buffer.append":
            session.received.append(event)
        if kind == "input_audio_buffer.append":
            await self._append(session, event.get("audio", ""))
        elif kind == "session.update":
            update = event.get("session", {})
            if update.get("type") != "realtime":
                await self._error(
                    session,
                    "missing_required_parameter",
                    "Missing required parameter: 'session.type'.",
                    event.get("event_id"),
                )
                return
            session.config.update(update)
            await self._emit(session, {"type": "session.updated", "session": session.config})
        elif kind == "conversation.item.create":
            await self._create_item(session, event.get("item", {}))
        elif kind == "response.create":
            self._start_response(session, event.get("response") or {})
        elif kind == "response.cancel":
            await self._cancel(session)
        elif kind == "conversation.item.truncate":
            await self._truncate(session, event)
        elif kind == "input_audio_buffer.clear":
            await self._emit(session, {"type": "input_audio_buffer.cleared"})
        elif kind not in (
            "input_audio_buffer.commit",
            "conversation.item.delete",
            "output_audio_buffer.clear",
        ):
            await self._error(
                session, "invalid_value", f"Unknown event type {kind!r}.", event.get("event_id")
            )

    # --- Audio in: voice detection --------------------------------------------------------

    async def _append(self, session: Session, encoded: str) -> None:
        try:
            chunk = base64.b64decode(encoded)
        except ValueError:
            await self._error(session, "invalid_value", "The audio is not base64.")
            return
        if self.stream_audio:
            stamp = audio.read_timestamp(chunk)
            if stamp is not None:
                session.stamps.append((*stamp, time.monotonic_ns()))
                # Answer in kind: the same stamp goes back as model audio.
                await self._emit(
                    session,
                    {
                        "type": "response.output_audio.delta",
                        "response_id": "resp_stream",
                        "item_id": "item_stream",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": base64.b64encode(
                            audio.timestamp_frame(stamp[0], time.monotonic_ns(), audio.TONE_FRAME)
                        ).decode(),
                    },
                )
            return
        session.heard += session.captions.feed(chunk)
        for start in range(0, len(chunk), audio.FRAME_BYTES):
            await self._vad_frame(session, chunk[start : start + audio.FRAME_BYTES])

    async def _vad_frame(self, session: Session, frame: bytes) -> None:
        session.audio_ms += len(frame) // 8
        loud = audio.loudness(frame) > SPEECH_LOUDNESS
        detection = session.turn_detection
        if not detection:
            return
        padding = int(detection.get("prefix_padding_ms", 300))
        if loud:
            session.loud_frames += 1
            session.quiet_ms = 0
            if not session.speaking and session.loud_frames >= SPEECH_START_FRAMES:
                session.speaking = True
                session.speech_started_ms = max(
                    0, session.audio_ms - SPEECH_START_FRAMES * 20 - padding
                )
                session.speech_item = _id("item")
                if detection.get("interrupt_response", True):
                    await self._cancel(session, reason="turn_detected")
                await self._emit(
                    session,
                    {
                        "type": "input_audio_buffer.speech_started",
                        "audio_start_ms": session.speech_started_ms,
                        "item_id": session.speech_item,
                    },
                )
            return
        session.loud_frames = 0
        if not session.speaking:
            return
        session.quiet_ms += len(frame) // 8
        if session.quiet_ms >= int(detection.get("silence_duration_ms", 500)):
            session.speaking = False
            await self._emit(
                session,
                {
                    "type": "input_audio_buffer.speech_stopped",
                    "audio_end_ms": session.audio_ms,
                    "item_id": session.speech_item,
                },
            )
            text = " ".join(session.heard) or "(inaudible)"
            session.heard = []
            await self._user_turn(session, text, item_id=session.speech_item, committed=True)

    async def _user_turn(
        self, session: Session, text: str, item_id: str = "", committed: bool = False
    ) -> None:
        item = Item(item_id or _id("item"), "user", text)
        previous = session.items[-1].id if session.items else None
        session.items.append(item)
        if committed:
            await self._emit(
                session,
                {
                    "type": "input_audio_buffer.committed",
                    "item_id": item.id,
                    "previous_item_id": previous,
                },
            )
        user_item = {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "role": "user",
            "status": "completed",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._emit(
            session,
            {"type": "conversation.item.added", "item": user_item, "previous_item_id": previous},
        )
        await self._emit(
            session,
            {"type": "conversation.item.done", "item": user_item, "previous_item_id": previous},
        )
        if session.config.get("audio", {}).get("input", {}).get("transcription") or session.call_id:
            await self._emit(
                session,
                {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item.id,
                    "content_index": 0,
                    "transcript": text,
                    "usage": {"type": "duration", "seconds": 1},
                },
            )
        if session.turn_detection.get("create_response", True) or session.call_id:
            self._start_response(session, {})

    # --- Items ----------------------------------------------------------------------------

    async def _create_item(self, session: Session, item: dict[str, Any]) -> None:
        kind = item.get("type")
        item_id = item.get("id") or _id("item")
        if kind == "function_call_output":
            created = Item(
                item_id,
                "function_call_output",
                str(item.get("output", "")),
                data={"call_id": item.get("call_id")},
            )
        elif kind == "message":
            texts = [
                c.get("text") or c.get("transcript") or ""
                for c in item.get("content", [])
                if isinstance(c, dict)
            ]
            created = Item(item_id, str(item.get("role", "user")), " ".join(t for t in texts if t))
        elif kind == "function_call":
            created = Item(item_id, "function_call", "", data=item)
        else:
            await self._error(session, "invalid_value", f"Unknown item type {kind!r}.")
            return
        previous = session.items[-1].id if session.items else None
        session.items.append(created)
        done = {"id": item_id, "object": "realtime.item", **item}
        await self._emit(
            session, {"type": "conversation.item.added", "item": done, "previous_item_id": previous}
        )
        await self._emit(
            session, {"type": "conversation.item.done", "item": done, "previous_item_id": previous}
        )

    async def _truncate(self, session: Session, event: dict[str, Any]) -> None:
        item = next((i for i in session.items if i.id == event.get("item_id")), None)
        end = event.get("audio_end_ms")
        if item is None or item.role != "assistant":
            await self._error(
                session, "item_not_found", "No assistant item with that id.", event.get("event_id")
            )
            return
        if not isinstance(end, int) or end < 0 or end > item.audio_ms:
            await self._error(
                session,
                "invalid_value",
                f"audio_end_ms {end} is beyond the {item.audio_ms} ms of audio generated.",
                event.get("event_id"),
            )
            return
        # The caller never heard the rest: it leaves the transcript too.
        item.text = item.text[: len(item.text) * end // item.audio_ms] if item.audio_ms else ""
        item.audio_ms = end
        await self._emit(
            session,
            {
                "type": "conversation.item.truncated",
                "item_id": item.id,
                "content_index": 0,
                "audio_end_ms": end,
            },
        )

    # --- Responses ------------------------------------------------------------------------

    def _start_response(self, session: Session, overrides: dict[str, Any]) -> None:
        if session.response_task and not session.response_task.done():
            refusal = asyncio.ensure_future(
                self._error(
                    session,
                    "conversation_already_has_active_response",
                    "Conversation already has an active response in progress.",
                )
            )
            # The loop keeps only weak references to tasks: hold this one until it has run.
            self._refusals.add(refusal)
            refusal.add_done_callback(self._refusals.discard)
            return
        session.response_task = asyncio.ensure_future(self._respond(session, overrides))

    async def _cancel(self, session: Session, reason: str = "client_cancelled") -> None:
        task = session.response_task
        if task and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self._emit(
                session,
                {
                    "type": "response.done",
                    "response": {
                        "id": getattr(task, "response_id", ""),
                        "object": "realtime.response",
                        "status": "cancelled",
                        "status_details": {"type": "cancelled", "reason": reason},
                        "output": [],
                        "usage": {"total_tokens": 0, "input_tokens": 0, "output_tokens": 0},
                    },
                },
            )

    def _decide(
        self, session: Session, overrides: dict[str, Any]
    ) -> tuple[str, dict[str, Any] | None]:
        """What to do: (text to say, None) or ("", function call)."""
        instructions = str(overrides.get("instructions", ""))
        quoted = QUOTED.search(instructions)
        if quoted:
            return quoted.group(1), None
        last = session.items[-1] if session.items else None
        if last is None:
            return "Hello, how can I help you?", None
        if last.role == "function_call_output":
            called = next(
                (
                    i.data.get("name", "")
                    for i in session.items
                    if i.role == "function_call"
                    and i.data.get("call_id") == last.data.get("call_id")
                ),
                "",
            )
            if "error" in last.text and last.text.lstrip().startswith('{"error"'):
                return "I'm sorry, I couldn't get that information right now.", None
            if "end" in called:
                return "Thank you for calling. Goodbye!", None
            if "transfer" in called:
                return "Let me transfer you now. Please hold.", None
            return f"Here is what I found: {_summarise(last.text)}", None
        if last.role != "user":
            return "Is there anything else I can help with?", None
        text = last.text
        call = self._tool_for(session, text)
        if call is not None:
            return "", call
        keypad = KEYPAD.match(text)
        if keypad:
            return f"You pressed {keypad.group(1)}.", None
        return f"You said: {text} How else can I help?", None

    def _tool_for(self, session: Session, text: str) -> dict[str, Any] | None:
        tools = {t.get("name"): t for t in session.tools}
        directive = DIRECTIVE.search(text)
        if directive and directive.group(1) in tools:
            return {"name": directive.group(1), "arguments": directive.group(2) or "{}"}
        # Intents in order of precedence: a person, goodbye, then a question.
        for name, tool in tools.items():
            properties = tool.get("parameters", {}).get("properties", {})
            if "target" in properties and PERSON.search(text):
                targets = properties["target"].get("enum") or ["a person"]
                arguments = {"target": targets[0], "reason": text}
                return {"name": name, "arguments": json.dumps(arguments)}
        for name, tool in tools.items():
            properties = tool.get("parameters", {}).get("properties", {})
            if set(properties) <= {"reason"} and GOODBYE.search(text) and "end" in str(name):
                return {"name": name, "arguments": json.dumps({"reason": "caller said goodbye"})}
        for name, tool in tools.items():
            properties = tool.get("parameters", {}).get("properties", {})
            if "query" in properties and text.rstrip().endswith("?"):
                return {"name": name, "arguments": json.dumps({"query": text})}
        return None

    async def _respond(self, session: Session, overrides: dict[str, Any]) -> None:
        response_id = _id("resp")
        task = asyncio.current_task()
        task.response_id = response_id  # type: ignore[union-attr]
        text, call = self._decide(session, overrides)
        await self._emit(
            session,
            {
                "type": "response.created",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "in_progress",
                    "output": [],
                },
            },
        )
        output: list[dict[str, Any]] = []
        if call is not None:
            item = Item(_id("item"), "function_call", data={"call_id": _id("call"), **call})
            session.items.append(item)
            function_item = {
                "id": item.id,
                "object": "realtime.item",
                "type": "function_call",
                "status": "completed",
                "name": call["name"],
                "call_id": item.data["call_id"],
                "arguments": call["arguments"],
            }
            await self._emit(
                session,
                {
                    "type": "response.output_item.added",
                    "response_id": response_id,
                    "output_index": 0,
                    "item": {**function_item, "arguments": ""},
                },
            )
            await self._emit(
                session,
                {
                    "type": "response.function_call_arguments.done",
                    "response_id": response_id,
                    "item_id": item.id,
                    "output_index": 0,
                    "call_id": item.data["call_id"],
                    "name": call["name"],
                    "arguments": call["arguments"],
                },
            )
            await self._emit(
                session,
                {
                    "type": "response.output_item.done",
                    "response_id": response_id,
                    "output_index": 0,
                    "item": function_item,
                },
            )
            output.append(function_item)
        else:
            item = Item(_id("item"), "assistant", text)
            session.items.append(item)
            await self._speak(session, response_id, item)
            output.append(
                {
                    "id": item.id,
                    "object": "realtime.item",
                    "type": "message",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_audio", "transcript": item.text}],
                }
            )
        words = max(1, len(text.split()))
        usage = {
            "total_tokens": 20 + 3 * words,
            "input_tokens": 20,
            "output_tokens": 3 * words,
            "input_token_details": {"text_tokens": 10, "audio_tokens": 10, "cached_tokens": 0},
            "output_token_details": {"text_tokens": words, "audio_tokens": 2 * words},
        }
        session.response_task = None
        await self._emit(
            session,
            {
                "type": "response.done",
                "response": {
                    "id": response_id,
                    "object": "realtime.response",
                    "status": "completed",
                    "status_details": None,
                    "output": output,
                    "usage": usage,
                },
            },
        )

    async def _speak(self, session: Session, response_id: str, item: Item) -> None:
        ids = {
            "response_id": response_id,
            "item_id": item.id,
            "output_index": 0,
            "content_index": 0,
        }
        assistant = {
            "id": item.id,
            "object": "realtime.item",
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        await self._emit(
            session,
            {
                "type": "response.output_item.added",
                "response_id": response_id,
                "output_index": 0,
                "item": assistant,
            },
        )
        await self._emit(session, {"type": "conversation.item.added", "item": assistant})
        if session.call_id:  # SIP: the audio rides the phone line, not this socket
            await self._emit(
                session, {"type": "output_audio_buffer.started", "response_id": response_id}
            )
            await self._emit(
                session,
                {"type": "response.output_audio_transcript.done", **ids, "transcript": item.text},
            )
            await self._emit(
                session, {"type": "output_audio_buffer.stopped", "response_id": response_id}
            )
        else:
            sound = b"".join(audio.caption_frames(item.text)) + audio.speech_like(item.text)
            chunk = audio.FRAME_BYTES * 5  # 100 ms a delta
            pause = (chunk / 8000) / self.speedup if self.speedup else 0.0
            words = item.text.split()
            for index, start in enumerate(range(0, len(sound), chunk)):
                piece = sound[start : start + chunk]
                item.audio_ms += len(piece) // 8
                await self._emit(
                    session,
                    {
                        "type": "response.output_audio.delta",
                        **ids,
                        "delta": base64.b64encode(piece).decode(),
                    },
                )
                if index < len(words):
                    await self._emit(
                        session,
                        {
                            "type": "response.output_audio_transcript.delta",
                            **ids,
                            "delta": words[index] + " ",
                        },
                    )
                await asyncio.sleep(pause)
            await self._emit(
                session,
                {
                    "type": "response.output_audio_transcript.delta",
                    **ids,
                    "delta": " ".join(words[len(range(0, len(sound), chunk)) :]),
                },
            )
            await self._emit(session, {"type": "response.output_audio.done", **ids})
            await self._emit(
                session,
                {"type": "response.output_audio_transcript.done", **ids, "transcript": item.text},
            )
        done = {
            **assistant,
            "status": "completed",
            "content": [{"type": "output_audio", "transcript": item.text}],
        }
        await self._emit(
            session,
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": done,
            },
        )
        await self._emit(session, {"type": "conversation.item.done", "item": done})


def _summarise(output: str) -> str:
    """A tool result in one spoken line: a passage's first line, or an object's values."""
    try:
        data = json.loads(output)
    except ValueError:
        return output.splitlines()[0][:160] if output else "nothing"
    if isinstance(data, list):
        if not data:
            return "nothing relevant"
        data = data[0].get("text", data[0]) if isinstance(data[0], dict) else data[0]
    if isinstance(data, dict):
        return ", ".join(f"{key} {value}" for key, value in data.items())[:160]
    return str(data).splitlines()[0][:160]
