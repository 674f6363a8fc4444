"""A simulated caller: plays Twilio's part of a call against a running server.

It signs and posts the voice webhook, reads the TwiML, opens the media stream with its
signature and token, then follows a script: say things (caption frames and audio, at a 20 ms
frame pace), press keys, wait, hang up. It "plays" the agent's audio at the same pace, echoing
each mark once the audio before it has been heard and dropping queued audio on `clear`, as
Twilio does; it reads the agent's words from the audio's captions.
"""

import asyncio
import base64
import contextlib
import json
import secrets
import time
import xml.etree.ElementTree as ET
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from workers import audio


@dataclass
class Step:
    # say, say_now (without waiting for the agent to finish), play (a WAV file), dtmf, wait,
    # wait_for_agent (until it has answered and gone quiet), wait_for_hangup (up to `seconds`)
    action: str
    value: str = ""
    seconds: float = 0.0


@dataclass
class Line:
    speaker: str
    text: str
    at: float  # seconds since the stream started


@dataclass
class CallReport:
    call_sid: str
    twiml: str
    lines: list[Line] = field(default_factory=list)
    agent_audio: bytearray = field(default_factory=bytearray)
    caller_audio: bytearray = field(default_factory=bytearray)
    marks_echoed: int = 0
    clears: int = 0
    turn_latencies_ms: list[float] = field(default_factory=list)
    closed_by: str = ""  # "server" or "caller"
    status: int = 0


def sign(token: str, url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


class Caller:
    def __init__(
        self,
        *,
        base_url: str,
        number: str,
        signing_token: str,
        caller_id: str = "+15005550006",
        pace: float = 1.0,
        public_base_url: str | None = None,
        on_line: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # Signatures cover the URL the server believes it is reached at.
        self.public_base_url = (public_base_url or base_url).rstrip("/")
        self.number = number
        self.token = signing_token
        self.caller_id = caller_id
        self.pace = pace  # 1.0 = real time; tests play faster
        self.on_line = on_line
        self.report = CallReport(call_sid="CA" + secrets.token_hex(16), twiml="")
        self._playback: deque[tuple[str, Any]] = deque()
        self._agent_sound = asyncio.Event()
        self._last_agent_audio = 0.0
        self._speech_ended_at = 0.0
        self._t0 = 0.0
        self._captions = audio.CaptionReader()
        self._ws: ClientConnection | None = None
        self.stream_sid = "MZ" + secrets.token_hex(16)

    # --- Webhook ------------------------------------------------------------------------------

    async def dial(self) -> str | None:
        """Post the voice webhook; return the stream URL, or None if the call is not streamed."""
        params = {
            "CallSid": self.report.call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller_id,
            "To": self.number,
            "CallStatus": "ringing",
            "Direction": "inbound",
            "ApiVersion": "2010-04-01",
        }
        path = "/carriers/twilio/voice"
        signature = sign(self.token, self.public_base_url + path, params)
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.post(
                self.base_url + path, data=params, headers={"X-Twilio-Signature": signature}
            )
        self.report.status = response.status_code
        self.report.twiml = response.text
        if response.status_code != 200:
            return None
        stream = ET.fromstring(response.text).find("./Connect/Stream")  # noqa: S314 - our own server's TwiML
        if stream is None:
            return None
        self._stream_token = next(
            p.get("value", "") for p in stream.findall("Parameter") if p.get("name") == "token"
        )
        return str(stream.get("url"))

    # --- Stream -------------------------------------------------------------------------------

    async def run(self, script: list[Step]) -> CallReport:
        url = await self.dial()
        if url is None:
            return self.report
        # Connect to where the server listens, signing the URL it believes it has.
        public = urlsplit(url)
        target = self.base_url.replace("http", "ws", 1) + public.path
        signature = sign(self.token, url, {})
        async with connect(
            target, additional_headers={"X-Twilio-Signature": signature}, max_size=None
        ) as ws:
            self._ws = ws
            self._t0 = time.monotonic()
            await ws.send(
                json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            )
            await ws.send(
                json.dumps(
                    {
                        "event": "start",
                        "sequenceNumber": "1",
                        "streamSid": self.stream_sid,
                        "start": {
                            "streamSid": self.stream_sid,
                            "accountSid": "AC" + "0" * 32,
                            "callSid": self.report.call_sid,
                            "tracks": ["inbound"],
                            "customParameters": {"token": self._stream_token},
                            "mediaFormat": {
                                "encoding": "audio/x-mulaw",
                                "sampleRate": 8000,
                                "channels": 1,
                            },
                        },
                    }
                )
            )
            receiver = asyncio.ensure_future(self._receive(ws))
            player = asyncio.ensure_future(self._play())
            try:
                for step in script:
                    if receiver.done():
                        break
                    try:
                        await self._do(ws, step)
                    except ConnectionClosed:  # the agent hung up while we were talking
                        self.report.closed_by = self.report.closed_by or "server"
                        break
                if not receiver.done() and not self.report.closed_by:
                    self.report.closed_by = "caller"
                    with contextlib.suppress(ConnectionClosed):
                        await ws.send(
                            json.dumps(
                                {
                                    "event": "stop",
                                    "streamSid": self.stream_sid,
                                    "stop": {
                                        "accountSid": "AC" + "0" * 32,
                                        "callSid": self.report.call_sid,
                                    },
                                }
                            )
                        )
                    await ws.close()
                await asyncio.wait_for(receiver, 5)
            finally:
                player.cancel()
                receiver.cancel()
        return self.report

    def _line(self, speaker: str, text: str) -> None:
        line = Line(speaker, text, round(time.monotonic() - self._t0, 2))
        self.report.lines.append(line)
        if self.on_line:
            self.on_line(line)

    async def _do(self, ws: ClientConnection, step: Step) -> None:
        if step.action == "say":
            await self.wait_until_quiet()
            await self._say(ws, step.value)
        elif step.action == "say_now":
            await self._say(ws, step.value)
        elif step.action == "dtmf":
            await self.wait_until_quiet()
            await ws.send(
                json.dumps(
                    {
                        "event": "dtmf",
                        "streamSid": self.stream_sid,
                        "dtmf": {"track": "inbound_track", "digit": step.value},
                    }
                )
            )
            self._line("caller", f"(presses {step.value})")
            self._speech_ended_at = time.monotonic()
        elif step.action == "wait":
            await self._send_silence(ws, step.seconds)
        elif step.action == "play":
            await self.wait_until_quiet()
            self._line("caller", f"(plays {step.value})")
            with open(step.value, "rb") as wav:  # noqa: PTH123
                await self._send_frames(ws, audio.frames(audio.read_wav(wav.read())))
            self._speech_ended_at = time.monotonic()
            self._waiting_for_reply = True
            await self._send_silence(ws, 0.7)
        elif step.action == "wait_for_hangup":
            deadline = time.monotonic() + step.seconds
            while time.monotonic() < deadline and self.report.closed_by != "server":
                await self._send_silence(ws, 0.1)
        elif step.action == "wait_for_agent":
            await self.wait_until_quiet(first=True)
        elif step.action == "hangup":
            return

    async def wait_until_quiet(
        self, quiet_for: float = 0.8, limit: float = 30.0, first: bool = False
    ) -> None:
        """Keep the line open (sending silence, as a phone does) until everything the agent
        sent has been played and nothing more came for `quiet_for` seconds. With `first`, the
        agent must have said something since the caller last spoke."""
        deadline = time.monotonic() + limit
        assert self._ws is not None
        while time.monotonic() < deadline:
            quiet = time.monotonic() - self._last_agent_audio > quiet_for * max(self.pace, 0.25)
            answered = self._last_agent_audio > self._speech_ended_at
            if not self._playback and quiet and (answered or not first):
                return
            await self._send_silence(self._ws, 0.1)

    async def _send_frames(self, ws: ClientConnection, frames: list[bytes]) -> None:
        for index, frame in enumerate(frames):
            self.report.caller_audio += frame
            payload = base64.b64encode(frame).decode()
            await ws.send(
                f'{{"event":"media","sequenceNumber":"{index}","streamSid":"{self.stream_sid}",'
                f'"media":{{"track":"inbound","chunk":"{index}","timestamp":"{index * 20}",'
                f'"payload":"{payload}"}}}}'
            )
            await asyncio.sleep(0.02 * self.pace)

    async def _send_silence(self, ws: ClientConnection, seconds: float) -> None:
        await self._send_frames(ws, [audio.SILENCE] * max(1, int(seconds / 0.02)))

    async def _say(self, ws: ClientConnection, text: str) -> None:
        self._line("caller", text)
        frames = audio.caption_frames(text) + audio.frames(audio.synthesize(text))
        await self._send_frames(ws, frames)
        self._speech_ended_at = time.monotonic()
        self._waiting_for_reply = True
        await self._send_silence(ws, 0.7)  # the pause that ends a turn

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    chunk = base64.b64decode(message["media"]["payload"])
                    if getattr(self, "_waiting_for_reply", False):
                        self._waiting_for_reply = False
                        self.report.turn_latencies_ms.append(
                            round((time.monotonic() - self._speech_ended_at) * 1000, 1)
                        )
                    self._playback.append(("audio", chunk))
                    self._agent_sound.set()
                    self._last_agent_audio = time.monotonic()
                elif event == "mark":
                    self._playback.append(("mark", message["mark"]["name"]))
                    self._agent_sound.set()
                elif event == "clear":
                    self.report.clears += 1
                    pending = [v for k, v in self._playback if k == "mark"]
                    self._playback.clear()
                    for name in pending:  # Twilio echoes every pending mark at once
                        await self._echo(ws, name)
            self.report.closed_by = self.report.closed_by or "server"
        except ConnectionClosed:
            self.report.closed_by = self.report.closed_by or "server"

    async def _echo(self, ws: ClientConnection, name: str) -> None:
        self.report.marks_echoed += 1
        with contextlib.suppress(ConnectionClosed):
            await ws.send(
                json.dumps(
                    {
                        "event": "mark",
                        "sequenceNumber": "0",
                        "streamSid": self.stream_sid,
                        "mark": {"name": name},
                    }
                )
            )

    async def _play(self) -> None:
        """Play the agent's audio in real (paced) time; echo each mark when reached."""
        assert self._ws is not None
        while True:
            if not self._playback:
                self._agent_sound.clear()
                await self._agent_sound.wait()
                continue
            kind, value = self._playback.popleft()
            if kind == "mark":
                await self._echo(self._ws, value)
                continue
            self.report.agent_audio += value
            for text in self._captions.feed(value):
                self._line("agent", text)
            self._last_agent_audio = time.monotonic()
            await asyncio.sleep(len(value) / 8000 * self.pace)
