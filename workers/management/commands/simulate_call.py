import asyncio
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from agents.models import CarrierAccount, PhoneNumber
from calls.models import Call, Outcome
from tenants.management.operator import OperatorCommand
from workers import audio
from workers.caller import Caller, Line, Step
from workers.twilio import signing_token

OUTCOME_WAIT_SECONDS = 10
DEMO_SCRIPT = ["Hi! What time do you open on Saturday?", "Great, thanks. That's all, goodbye!"]


class Command(OperatorCommand):
    help = (
        "Call a number as Twilio would: post the voice webhook to the running server, open the "
        "media stream, speak (synthesised with espeak-ng if installed, else tone bursts), print "
        "the live transcript and timings, and write the agent's audio to a WAV file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--number", help="The E.164 number to call (default: the demo tenant's number)"
        )
        parser.add_argument(
            "--say",
            action="append",
            default=[],
            metavar="TEXT",
            help="Something the caller says; repeat for several turns",
        )
        parser.add_argument(
            "--audio", type=Path, help="A WAV file the caller plays instead of --say"
        )
        parser.add_argument(
            "--press", default="", metavar="DIGITS", help="Keys to press after speaking"
        )
        parser.add_argument(
            "--url", default=settings.PUBLIC_BASE_URL, help="The server (default: PUBLIC_BASE_URL)"
        )
        parser.add_argument(
            "--out", type=Path, help="Where to write the agent's audio (default: call-<sid>.wav)"
        )
        parser.add_argument("--caller-id", default="+15005550006", help="The caller's number")

    def handle(self, *args: Any, **options: Any) -> None:
        number = self._number(options["number"])
        if number.carrier_account.kind == CarrierAccount.Kind.OPENAI_SIP:
            raise CommandError(
                f"{number.e164} takes calls over OpenAI SIP; the simulator plays Twilio."
            )
        script: list[Step] = [Step("wait_for_agent")]
        if options["audio"]:
            script.append(Step("play", str(options["audio"])))
        for text in options["say"] or ([] if options["audio"] else DEMO_SCRIPT):
            script.append(Step("say", text))
        for digit in options["press"]:
            script.append(Step("dtmf", digit))
        script += [Step("wait_for_agent"), Step("wait_for_hangup", seconds=3.0)]

        self.stdout.write(
            f"Calling {number.e164} ({number.agent.name if number.agent else 'no agent'}) "
            f"at {options['url']}, as {options['caller_id']}"
        )
        if not audio.espeak_available():
            self.stdout.write("(espeak-ng is not installed: the caller speaks in tone bursts)")
        caller = Caller(
            base_url=options["url"],
            number=number.e164,
            signing_token=signing_token(number.carrier_account),
            caller_id=options["caller_id"],
            on_line=self._print_line,
        )
        report = asyncio.run(caller.run(script))
        if report.status != 200:
            raise CommandError(f"The voice webhook answered {report.status}: {report.twiml[:200]}")
        if not report.lines:
            self.stdout.write(f"The call was not connected. TwiML: {report.twiml}")
        out = options["out"] or Path(f"call-{report.call_sid}.wav")
        out.write_bytes(audio.write_wav(bytes(report.agent_audio)))
        call = Call.all_tenants.filter(carrier_call_id=report.call_sid).first()
        self.stdout.write("")
        if call is not None:
            # The server finishes ending the call, then the post-call pipeline runs.
            deadline = time.monotonic() + OUTCOME_WAIT_SECONDS
            call.refresh_from_db()
            while call.processed_at is None and time.monotonic() < deadline:
                time.sleep(0.2)
                call.refresh_from_db()
            self.stdout.write(
                f"Call {call.public_id}: {call.status}, {call.end_reason or 'still ending'}"
                f"{' (sandbox model)' if call.sandbox else ''}"
            )
            self.stdout.write(f"  timeline: {options['url']}/v1/calls/{call.public_id}/events")
            self._print_outcome(call)
        if report.turn_latencies_ms:
            self.stdout.write(
                "  agent answered after: "
                + ", ".join(f"{ms:.0f} ms" for ms in report.turn_latencies_ms)
                + " (from the end of each thing said)"
            )
        self.stdout.write(f"  agent audio: {out} ({len(report.agent_audio) / 8000:.1f} s)")

    def _print_outcome(self, call: Call) -> None:
        """The post-call pipeline's result, if it has run."""
        outcome = Outcome.all_tenants.filter(call=call).first()
        if outcome is None:
            self.stdout.write("  outcome: not decided yet (is a Celery worker running?)")
            return
        decided_by = outcome.model or outcome.rule or outcome.source
        self.stdout.write(
            f"  outcome: {outcome.label} ({'resolved' if outcome.resolved else 'not resolved'}; "
            f"{outcome.source}: {decided_by})"
        )
        if call.summary:
            self.stdout.write(f"  summary: {call.summary}")

    def _number(self, e164: str | None) -> PhoneNumber:
        numbers = PhoneNumber.all_tenants.select_related("carrier_account", "agent").filter(
            status="active"
        )
        number = (
            numbers.filter(e164=e164).first()
            if e164
            else numbers.filter(tenant__slug="demo").first()
        )
        if number is None:
            raise CommandError(
                f"No active number {e164}." if e164 else "No demo number; pass --number."
            )
        return number

    def _print_line(self, line: Line) -> None:
        who = "caller" if line.speaker == "caller" else "agent "
        self.stdout.write(f"[{line.at:6.2f}s] {who}: {line.text}")
