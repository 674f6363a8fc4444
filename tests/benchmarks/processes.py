"""The processes the bridge benchmark starts besides the real server:

    python -m tests.benchmarks.processes simulator PORT
    python -m tests.benchmarks.processes relay PORT SIMULATOR_URL

`simulator` is the Realtime simulator answering every appended frame with a frame;
`relay` is the floor: the least a bridge can do (plain websockets, JSON in and out, no
framework, no database), carrying Twilio Media Streams frames to the model and back.
"""

import asyncio
import json
import sys
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

COMPACT = (",", ":")


async def simulator(port: int) -> None:
    from workers.simulator import RealtimeSimulator

    sim = RealtimeSimulator()
    sim.stream_audio = True
    await sim.start(port)
    print("ready", flush=True)
    await asyncio.Future()


async def relay(port: int, upstream: str) -> None:
    async def carry(carrier: ServerConnection) -> None:
        model: ClientConnection | None = None
        reader: asyncio.Task[Any] | None = None
        stream_sid = ""

        async def back(model: ClientConnection) -> None:
            async for raw in model:
                event = json.loads(raw)
                if event.get("type") == "response.output_audio.delta":
                    media = {"payload": event["delta"]}
                    await carrier.send(
                        json.dumps(
                            {"event": "media", "streamSid": stream_sid, "media": media},
                            separators=COMPACT,
                        )
                    )

        try:
            async for raw in carrier:
                message = json.loads(raw)
                kind = message.get("event")
                if kind == "media" and model is not None:
                    append = {"type": "input_audio_buffer.append"}
                    append["audio"] = message["media"]["payload"]
                    await model.send(json.dumps(append, separators=COMPACT))
                elif kind == "start":
                    stream_sid = message["start"]["streamSid"]
                    model = await connect(
                        upstream + "/realtime?model=gpt-realtime",
                        additional_headers={"Authorization": "Bearer sk-relay"},
                        max_size=None,
                        compression=None,
                    )
                    reader = asyncio.ensure_future(back(model))
                elif kind == "stop":
                    break
        finally:
            if reader is not None:
                reader.cancel()
            if model is not None:
                await model.close()

    async with serve(carry, "127.0.0.1", port, max_size=None, compression=None):
        print("ready", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    role, port = sys.argv[1], int(sys.argv[2])
    if role == "simulator":
        uvloop.run(simulator(port))
    else:
        uvloop.run(relay(port, sys.argv[3]))
