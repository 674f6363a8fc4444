"""The server's startup and shutdown (ASGI lifespan).

With the in-memory channel layer, the embedded default of `make run`, channel messages never
leave this process, so no `manage.py runworker` could receive them: the server runs the
channels' consumers itself. With Redis the runworker processes do, and this does nothing.
"""

import asyncio
import contextlib
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker


class Lifespan:
    def __init__(self, channel_consumers: dict[str, Any]) -> None:
        self.channel_consumers = channel_consumers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        worker: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                layer = get_channel_layer()
                if isinstance(layer, InMemoryChannelLayer) and self.channel_consumers:
                    worker = asyncio.ensure_future(
                        Worker(
                            application=ChannelNameRouter(self.channel_consumers),
                            channels=list(self.channel_consumers),
                            channel_layer=layer,
                        ).handle()
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if worker is not None:
                    worker.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
                await send({"type": "lifespan.shutdown.complete"})
                return
