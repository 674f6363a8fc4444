import asyncio
from typing import Any

from channels.consumer import AsyncConsumer

from workers.sideband import SidebandCall

_running: set[asyncio.Task[None]] = set()


class SidebandConsumer(AsyncConsumer):
    """Runs on `manage.py runworker call-sideband`: attaches to each accepted SIP call's
    sideband. Each call runs as its own task, so one worker serves many calls at once."""

    async def sideband_attach(self, message: dict[str, Any]) -> None:
        task = asyncio.ensure_future(SidebandCall(str(message["call"])).run())
        _running.add(task)
        task.add_done_callback(_running.discard)
