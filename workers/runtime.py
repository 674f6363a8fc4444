"""What every live call does, whichever carrier it came on: keep a timeline of events (written
in batches, with the heartbeat, never per audio frame), run tools with a deadline, add up model
usage, remember the conversation (to re-seed a new model session), enforce the version's time
limits, and end exactly once."""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from agents.models import AgentVersion, Tool
from agents.tool_runtime import ToolOutcome, tool_run
from calls.models import Call, CallEvent
from calls.recordings import save_raw
from calls.redaction import NOT_STORED, Policy
from calls.services import PendingEvent, call_events_append, call_finalize
from tenants.rls import tenant_context
from workers.recording import Recorder

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
# A quiet call still beats its heart this often, well inside the sweeper's HEARTBEAT_TIMEOUT.
HEARTBEAT_SECONDS = 15.0
TOOL_DEADLINE_MARGIN = 2.0
GOODBYE_GRACE_SECONDS = 15.0  # longest we wait for a goodbye to finish before hanging up
FAILURES = {Call.EndReason.MODEL_ERROR, Call.EndReason.CARRIER_ERROR, Call.EndReason.WORKER_LOST}
# A call's first reads and writes and its last ones are tried again after these pauses: a
# database connection reset (a failover, a restart) costs the first attempt, and each attempt
# gets a fresh connection. Without them a call would not start, or would be left to the sweeper.
DATABASE_RETRIES = (0.5, 1.5, 4.0)
CONNECTION_ERRORS = (OperationalError, InterfaceError)
T = TypeVar("T")


def in_thread(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run blocking code (the ORM, an SDK, a tool's HTTP request) on a worker thread of its own,
    so one call's slow tool never holds up another call."""
    return database_sync_to_async(fn, thread_sensitive=False)


async def close_model(connection: Any) -> None:
    """Close a Realtime connection within a second; a peer that does not answer the closing
    handshake has its socket dropped."""
    if connection is None:
        return
    try:
        await asyncio.wait_for(connection.close(), 1.0)
    except Exception:
        with contextlib.suppress(Exception):
            connection._connection.transport.abort()


async def retrying(attempt: Callable[[], Awaitable[T]], what: str, call_id: str = "") -> T:
    """`await attempt()`, again after each of DATABASE_RETRIES while the database connection
    fails; the last failure is raised. Only for idempotent work."""
    for pause in DATABASE_RETRIES:
        try:
            return await attempt()
        except CONNECTION_ERRORS as error:
            logger.warning(
                f"could not {what}; trying again", extra={"call_id": call_id, "error": str(error)}
            )
            await asyncio.sleep(pause)
    return await attempt()


def tool_deadline(tool: Tool) -> float:
    if tool.kind in (Tool.Kind.HTTP, Tool.Kind.CONNECTOR):
        return float(tool.config.get("timeout_seconds", 10)) + TOOL_DEADLINE_MARGIN
    return 10.0


class CallRuntime:
    """Shared by the Media Streams bridge and the SIP sideband session."""

    def __init__(self) -> None:
        self.call: Call | None = None
        self.version: AgentVersion | None = None
        self.tools: dict[str, Tool] = {}
        self.events: list[PendingEvent] = []
        self.usage: dict[str, Any] = {}
        self.conversation: list[tuple[str, str]] = []  # (speaker, text), to re-seed a model
        self.ended = False
        self.end_reason = ""
        self.answered_at = 0.0
        self.last_activity = 0.0
        self.closing_reason = ""  # a goodbye is being said; end with this once it is heard
        self.closing_deadline = 0.0
        self.recorder: Recorder | None = None  # set when the version records (and media is ours)
        self._tasks: list[asyncio.Task[Any]] = []

    def in_tenant(self, fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
        """`in_thread`, in a transaction that sees only the call's tenant's rows."""
        assert self.call is not None
        tenant_id = self.call.tenant_id

        def scoped(*args: Any, **kwargs: Any) -> Any:
            with tenant_context(tenant_id):
                return fn(*args, **kwargs)

        return in_thread(scoped)

    # --- Timeline ---------------------------------------------------------------------------

    def record(self, kind: str, **payload: Any) -> None:
        self.events.append(PendingEvent(time.time(), kind, payload))

    def heard(self, speaker: str, text: str, **extra: Any) -> None:
        if text:
            self.conversation.append((speaker, text))
            if self.version is not None and not Policy.of(self.version.redaction).keeps_transcripts:
                text = NOT_STORED  # PCI mode: no transcript body is ever written
            self.record(CallEvent.Kind.TRANSCRIPT, speaker=speaker, text=text, **extra)

    def add_usage(self, usage: Any) -> None:
        if isinstance(usage, dict):
            from calls.services import _add_usage

            self.usage = _add_usage(self.usage, usage)

    async def flush(self) -> bool:
        """Write the pending events; on failure keep them for the next flush."""
        if self.call is None:
            return True
        batch, self.events = self.events, []
        try:
            await self.in_tenant(call_events_append)(self.call, batch)
        except Exception:
            logger.warning(
                "could not write call events; keeping them for the next flush",
                extra={"call_id": self.call.public_id},
                exc_info=True,
            )
            self.events = batch + self.events
            return False
        return True

    def spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.append(task)
        task.add_done_callback(self._report)
        return task

    def _report(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "call task failed",
                exc_info=task.exception(),
                extra={"call_id": self.call.public_id if self.call else ""},
            )

    async def _flusher(self) -> None:
        beat = time.monotonic()
        while not self.ended:
            await asyncio.sleep(FLUSH_SECONDS)
            if self.events or time.monotonic() - beat >= HEARTBEAT_SECONDS:
                beat = time.monotonic()
                await self.flush()

    async def _watchdog(self) -> None:
        """Ends the call when it runs too long or nobody says anything."""
        assert self.version is not None
        while not self.ended:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            if self.closing_reason:
                if now > self.closing_deadline:
                    await self.end(self.closing_reason)
                continue
            if now - self.answered_at > self.version.max_call_duration_seconds:
                await self.say_goodbye(
                    Call.EndReason.MAX_DURATION,
                    "We have reached the time limit for this call. Thank you for calling, goodbye.",
                )
            elif now - self.last_activity > self.version.silence_timeout_seconds:
                await self.say_goodbye(
                    Call.EndReason.SILENCE_TIMEOUT,
                    "I haven't heard anything for a while, so I'll end the call now. Goodbye.",
                )

    def start_background(self) -> None:
        self.answered_at = self.last_activity = time.monotonic()
        self.spawn(self._flusher())
        self.spawn(self._watchdog())

    # --- Tools ------------------------------------------------------------------------------

    async def run_tool(self, call_id: str, name: str, arguments: str) -> tuple[str, ToolOutcome]:
        """Run the model's function call. Whatever happens, the model gets a result it can
        speak about: a slow or failing tool becomes an error result, never a hung call."""
        started = time.monotonic()
        tool = self.tools.get(name)
        parsed: Any = None
        if tool is None:
            outcome = ToolOutcome(False, None, f"There is no tool named {name}.")
        else:
            try:
                parsed = json.loads(arguments or "{}")
            except ValueError:
                outcome = ToolOutcome(False, None, "The arguments were not valid JSON.")
            else:
                try:
                    outcome = await asyncio.wait_for(
                        self.in_tenant(tool_run)(tool, parsed, version=self.version),
                        tool_deadline(tool),
                    )
                except TimeoutError:
                    outcome = ToolOutcome(False, None, "The tool did not answer in time.")
                except Exception:
                    logger.exception("tool failed", extra={"tool": name})
                    outcome = ToolOutcome(False, None, "The tool failed unexpectedly.")
        self.last_activity = time.monotonic()
        self.record(
            CallEvent.Kind.TOOL_CALL,
            name=name,
            call_id=call_id,
            arguments=parsed,
            ok=outcome.ok,
            result=outcome.result,
            error=outcome.error,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        return call_id, outcome

    @staticmethod
    def tool_output(outcome: ToolOutcome) -> str:
        return json.dumps(outcome.result if outcome.ok else {"error": outcome.error}, default=str)

    # --- Ending -----------------------------------------------------------------------------

    async def say_goodbye(self, reason: str, text: str) -> None:
        """Have the agent say `text`, then end the call with `reason`."""
        if self.closing_reason or self.ended:
            return
        self.closing_reason = reason
        self.closing_deadline = time.monotonic() + GOODBYE_GRACE_SECONDS
        self.record(CallEvent.Kind.NOTICE, message=f"ending: {reason}")
        await self.speak(text)

    async def speak(self, text: str) -> None:
        raise NotImplementedError

    async def close_transports(self) -> None:
        raise NotImplementedError

    async def end(self, reason: str) -> None:
        """End the call: stop the tasks, close both sides, write the last events and finalize.
        Safe to call from any path, any number of times; only the first does anything."""
        if self.ended:
            return
        self.ended = True
        self.end_reason = self.end_reason or reason
        status = Call.Status.FAILED if self.end_reason in FAILURES else Call.Status.COMPLETED
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.close_transports(), 2.0)
        flushed = await self.flush()
        for pause in DATABASE_RETRIES if not flushed else ():
            await asyncio.sleep(pause)
            if flushed := await self.flush():
                break
        if not flushed and self.call is not None:
            logger.error(
                "call events lost: the database stayed unreachable",
                extra={"call_id": self.call.public_id, "events": len(self.events)},
            )
        if self.call is not None and self.recorder is not None:
            try:
                await self.in_tenant(save_raw)(
                    self.call.tenant.public_id,
                    self.call.public_id,
                    bytes(self.recorder.caller),
                    bytes(self.recorder.agent),
                )
            except Exception:
                logger.exception(
                    "could not save the recording", extra={"call_id": self.call.public_id}
                )
        if self.call is not None:
            await self._finalize(status)

    async def _finalize(self, status: str) -> None:
        assert self.call is not None
        call, finalize = self.call, self.in_tenant(call_finalize)
        try:
            await retrying(
                lambda: finalize(call, status=status, end_reason=self.end_reason, usage=self.usage),
                "finalize the call",
                call.public_id,
            )
        except Exception:
            logger.exception(
                "could not finalize call; the sweeper will", extra={"call_id": call.public_id}
            )
