"""Twilio's Media Streams WebSocket, one per call, as a plain ASGI application.

Channels routes the WebSocket here, but no consumer class sits on the audio path: a consumer
would hop to a thread to close stale database connections before every frame, and this socket
takes no messages from the channel layer. The loop below hands each frame to the call's
MediaStreamCall and nothing else.

Twilio cannot name the call or tenant in the upgrade request (the stream URL takes no query),
so the socket is accepted, and the call is identified by the signed token in the `start`
message; the upgrade's X-Twilio-Signature is then checked against that call's carrier account.
A socket without a valid `start` within START_TIMEOUT seconds is closed.
"""

import asyncio
import contextlib
import logging
from typing import Any

from workers.bridge import START_TIMEOUT, MediaStreamCall

logger = logging.getLogger(__name__)

Scope = dict[str, Any]


async def media_stream(scope: Scope, receive: Any, send: Any) -> None:
    if (await receive())["type"] != "websocket.connect":
        return
    headers = dict(scope.get("headers", []))
    signature = headers.get(b"x-twilio-signature", b"").decode("latin-1")

    async def send_text(text: str) -> None:
        await send({"type": "websocket.send", "text": text})

    async def close() -> None:
        with contextlib.suppress(Exception):  # the carrier may have gone already
            await send({"type": "websocket.close"})

    call = MediaStreamCall(send_text, close, signature)
    await send({"type": "websocket.accept"})
    timeout = asyncio.get_running_loop().call_later(
        START_TIMEOUT, lambda: asyncio.ensure_future(call.start_timeout())
    )
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                break
            text = message.get("text")
            if text is None:
                logger.warning("ignored a binary frame on a media stream")
                continue
            try:
                await call.carrier_text(text)
            except Exception:  # one bad frame must not take the call (or others) down
                logger.exception("error handling a carrier frame")
    finally:
        timeout.cancel()
        await call.carrier_closed()
