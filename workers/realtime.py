"""The model side of a call: which Realtime endpoint to use and how to configure the session."""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from openai import AsyncOpenAI

from agents.models import AgentVersion, Tool
from workers.simulator import RealtimeSimulator


@dataclass(frozen=True)
class ModelEndpoint:
    api_key: str
    websocket_base_url: str | None
    base_url: str | None
    # True when the model is the built-in simulator (no OPENAI_API_KEY): calls say so.
    sandbox: bool

    def client(self) -> AsyncOpenAI:
        """One client per endpoint in a process: each holds an HTTP pool and a TLS context
        (hundreds of kilobytes) that every call's Realtime connection can share."""
        client = _clients.get(self)
        if client is None:
            client = _clients[self] = AsyncOpenAI(
                api_key=self.api_key,
                base_url=self.base_url,
                websocket_base_url=self.websocket_base_url,
                max_retries=0,
            )
        return client


_clients: dict[ModelEndpoint, AsyncOpenAI] = {}


_sandbox: RealtimeSimulator | None = None
_sandbox_lock = asyncio.Lock()


async def _sandbox_url() -> str:
    """The built-in simulator, started in this process on first use."""
    global _sandbox
    async with _sandbox_lock:
        if _sandbox is None:
            _sandbox = await RealtimeSimulator(speedup=1.5).start()
    return _sandbox.url


async def model_endpoint() -> ModelEndpoint:
    if settings.OPENAI_API_KEY:
        return ModelEndpoint(
            settings.OPENAI_API_KEY,
            settings.OPENAI_REALTIME_URL or None,
            settings.OPENAI_BASE_URL or None,
            False,
        )
    return ModelEndpoint("sandbox", await _sandbox_url(), None, True)


def tool_definition(tool: Tool, version: AgentVersion) -> dict[str, Any]:
    """How the model sees a tool. A transfer tool names the version's targets, so the model can
    only pick one that exists."""
    parameters = tool.parameters
    description = tool.description
    if tool.kind == Tool.Kind.TRANSFER_CALL and version.transfer_targets:
        names = [t["name"] for t in version.transfer_targets]
        parameters = json.loads(json.dumps(parameters))
        parameters["properties"]["target"]["enum"] = names
        described = "; ".join(
            f"{t['name']}: {t['description']}" if t.get("description") else t["name"]
            for t in version.transfer_targets
        )
        description = f"{description} Targets: {described}."
    return {
        "type": "function",
        "name": tool.name,
        "description": description,
        "parameters": parameters,
    }


def session_config(
    version: AgentVersion, tools: list[Tool], *, phone_audio: bool = True
) -> dict[str, Any]:
    """The `session` of `session.update` (or of a SIP `accept`) for this version.

    `phone_audio` sets G.711 mu-law in and out, so audio passes between the carrier and the model
    without transcoding; the SIP path leaves formats to the SIP leg.
    """
    audio_input: dict[str, Any] = {
        "transcription": {
            "model": settings.OPENAI_TRANSCRIPTION_MODEL,
            "language": version.languages[0],
        },
        "turn_detection": version.turn_detection,
    }
    audio_output: dict[str, Any] = {"voice": version.voice}
    if phone_audio:
        audio_input["format"] = {"type": "audio/pcmu"}
        audio_output["format"] = {"type": "audio/pcmu"}
    return {
        "type": "realtime",
        "model": version.model,
        "instructions": version.instructions,
        "output_modalities": ["audio"],
        "audio": {"input": audio_input, "output": audio_output},
        "tools": [tool_definition(tool, version) for tool in tools],
        "tool_choice": "auto",
    }


def say_exactly(text: str) -> dict[str, Any]:
    """A `response.create` that has the model say `text` (a greeting, a goodbye)."""
    quoted = text.replace('"', "'")
    return {
        "type": "response.create",
        "response": {"instructions": f'Say exactly these words and nothing else: "{quoted}"'},
    }
