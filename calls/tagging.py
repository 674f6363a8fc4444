"""How a call ended for the business: deterministic rules first, then a model reading the
redacted transcript, then (when no model is configured or it fails) a documented heuristic.
Every decision says which of them made it, and why (docs/calls.md, "Outcomes")."""

import json
import logging
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from django.conf import settings
from openai import OpenAI, OpenAIError

from calls.models import Call, CallEvent, Outcome

logger = logging.getLogger(__name__)

TECHNICAL_FAILURES = {
    Call.EndReason.MODEL_ERROR,
    Call.EndReason.CARRIER_ERROR,
    Call.EndReason.WORKER_LOST,
    Call.EndReason.STREAM_NEVER_CONNECTED,
    Call.EndReason.NO_AGENT,
    Call.EndReason.OVER_CAPACITY,
    Call.EndReason.USAGE_CAP,
}
SENTIMENTS = ("positive", "neutral", "negative")
MODEL_ATTEMPTS = 2  # answers that are not the JSON asked for are asked again once
MAX_TRANSCRIPT_CHARS = 24_000


@dataclass
class Facts:
    """What tagging reads about a call: its record and its redacted timeline."""

    call: Call
    turns: list[tuple[int, str, str]]  # (event sequence, speaker, text)
    tools: list[dict[str, Any]]
    taxonomy: list[dict[str, Any]]

    @property
    def labels(self) -> dict[str, dict[str, Any]]:
        return {item["label"]: item for item in self.taxonomy}

    @property
    def caller_turns(self) -> list[tuple[int, str, str]]:
        return [turn for turn in self.turns if turn[1] == "caller"]

    def agent_replies(self) -> list[tuple[int, str, str]]:
        """Agent turns after the caller first spoke (the greeting is not a reply)."""
        first = next((seq for seq, speaker, _ in self.turns if speaker == "caller"), None)
        if first is None:
            return []
        return [turn for turn in self.turns if turn[1] == "agent" and turn[0] > first]


@dataclass
class Decision:
    label: str
    resolved: bool
    confidence: float
    rationale: str
    source: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    rule: str = ""
    model: str = ""
    note: str = ""
    summary: str = ""
    extracted: dict[str, Any] = field(default_factory=dict)


def facts_of(call: Call, events: list[CallEvent] | None = None) -> Facts:
    """What tagging reads; `events` (the call's transcript and tool events, in order) when the
    caller has them already."""
    if events is None:
        events = list(
            CallEvent.objects.for_tenant(call.tenant)
            .filter(call=call, kind__in=[CallEvent.Kind.TRANSCRIPT, CallEvent.Kind.TOOL_CALL])
            .order_by("sequence")
        )
    turns, tools = [], []
    for event in events:
        payload = event.payload
        if event.kind == CallEvent.Kind.TRANSCRIPT:
            turns.append(
                (event.sequence, str(payload.get("speaker", "")), str(payload.get("text", "")))
            )
        elif event.kind == CallEvent.Kind.TOOL_CALL:
            tools.append({"sequence": event.sequence, **payload})
    return Facts(call, turns, tools, taxonomy_of(call))


def taxonomy_of(call: Call) -> list[dict[str, Any]]:
    """The outcomes a call can be tagged with: its version's taxonomy, else the default one."""
    taxonomy = call.version.outcome_taxonomy if call.version else []
    if not taxonomy:
        from agents.models.agents import default_outcome_taxonomy

        taxonomy = default_outcome_taxonomy()
    return list(taxonomy)


# --- Rules ------------------------------------------------------------------------------------


def _rule(facts: Facts, label: str, rule: str, rationale: str, evidence: list[Any]) -> Decision:
    return Decision(
        label=label,
        resolved=bool(facts.labels[label]["resolved"]),
        confidence=1.0,
        rationale=rationale,
        source=Outcome.Source.RULE,
        evidence=evidence,
        rule=rule,
    )


def by_rules(facts: Facts) -> Decision | None:
    """The outcomes that need no judgement. A rule whose label the version's taxonomy lacks is
    skipped."""
    call, labels = facts.call, facts.labels
    if "failed" in labels and (
        call.end_reason in TECHNICAL_FAILURES or call.status == Call.Status.FAILED
    ):
        return _rule(
            facts,
            "failed",
            "technical_failure",
            f"The call ended with {call.end_reason or call.status}.",
            [{"kind": "end_reason", "value": call.end_reason}],
        )
    if (
        "escalated" in labels
        and call.end_reason == Call.EndReason.TRANSFERRED
        and call.transfer_status == Call.TransferStatus.BRIDGED
    ):
        return _rule(
            facts,
            "escalated",
            "transfer_bridged",
            f"The caller was transferred to {call.transfer_target or 'a person'} and connected.",
            [{"kind": "transfer", "status": call.transfer_status, "target": call.transfer_target}],
        )
    if (
        "abandoned" in labels
        and call.end_reason == Call.EndReason.CALLER_HANGUP
        and (call.duration_seconds or 0) <= settings.OUTCOME_ABANDON_SECONDS
        and not facts.agent_replies()
    ):
        return _rule(
            facts,
            "abandoned",
            "early_hangup",
            f"The caller hung up after {call.duration_seconds or 0} s, before the agent replied.",
            [{"kind": "duration_seconds", "value": call.duration_seconds}],
        )
    return None


def by_heuristic(facts: Facts, why: str) -> Decision:
    """What decides when no model can: documented in docs/calls.md."""
    call, labels = facts.call, facts.labels
    failed_tools = [t for t in facts.tools if not t.get("ok", True)]
    if call.end_reason == Call.EndReason.TRANSFERRED and "escalated" in labels:
        label, rationale, confidence = "escalated", "The agent transferred the call.", 0.7
    elif (
        facts.caller_turns
        and facts.agent_replies()
        and not failed_tools
        and call.end_reason in (Call.EndReason.AGENT_HANGUP, Call.EndReason.CALLER_HANGUP)
        and _resolved_label(facts)
    ):
        label = _resolved_label(facts)
        rationale = "The agent answered the caller, no tool failed and the call ended normally."
        confidence = 0.6
    elif not facts.caller_turns and "abandoned" in labels:
        label, rationale, confidence = "abandoned", "The caller never spoke.", 0.6
    else:
        label = _unresolved_label(facts)
        rationale = "Nothing shows the caller's need was met."
        confidence = 0.5
    evidence: list[dict[str, Any]] = [{"kind": "end_reason", "value": call.end_reason}]
    evidence += [
        {"kind": "tool", "sequence": t["sequence"], "name": t.get("name"), "ok": False}
        for t in failed_tools
    ]
    return Decision(
        label=label,
        resolved=bool(labels[label]["resolved"]),
        confidence=confidence,
        rationale=rationale,
        source=Outcome.Source.RULE,
        evidence=evidence,
        rule="heuristic",
        note=why,
        summary=heuristic_summary(facts),
        extracted={"contact_reason": _first_caller_text(facts)[:200], "sentiment": None},
    )


def _resolved_label(facts: Facts) -> str:
    return next((i["label"] for i in facts.taxonomy if i["resolved"]), "")


def _unresolved_label(facts: Facts) -> str:
    for preferred in ("abandoned", "escalated", "failed"):
        if preferred in facts.labels and not facts.labels[preferred]["resolved"]:
            return preferred
    return next(
        (i["label"] for i in facts.taxonomy if not i["resolved"]), facts.taxonomy[0]["label"]
    )


def _first_caller_text(facts: Facts) -> str:
    return next((text for _, speaker, text in facts.turns if speaker == "caller"), "")


def heuristic_summary(facts: Facts) -> str:
    call = facts.call
    parts = []
    asked = _first_caller_text(facts)
    if asked:
        parts.append(f"The caller said: “{asked[:200]}”.")
    else:
        parts.append("The caller did not speak.")
    if facts.tools:
        names = sorted({str(t.get("name")) for t in facts.tools})
        parts.append(f"The agent used {', '.join(names)}.")
    ending = (call.end_reason or call.status).replace("_", " ")
    parts.append(f"The call lasted {call.duration_seconds or 0} s and ended: {ending}.")
    return " ".join(parts)


# --- Model ------------------------------------------------------------------------------------


class ModelUnavailable(Exception):
    pass


def model_configured() -> bool:
    return bool(settings.OPENAI_API_KEY and settings.OUTCOME_MODEL)


def response_schema(facts: Facts, extraction: dict[str, Any]) -> dict[str, Any]:
    """The strict JSON schema the model must answer with (structured outputs: every property
    required, no others; tenant fields may be null when the call did not say)."""
    tenant_fields = {
        name: {**spec, "type": [spec["type"], "null"]}
        | ({"enum": [*spec["enum"], None]} if "enum" in spec else {})
        for name, spec in (extraction.get("properties") or {}).items()
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "label",
            "confidence",
            "rationale",
            "evidence",
            "summary",
            "contact_reason",
            "sentiment",
            "fields",
        ],
        "properties": {
            "label": {"type": "string", "enum": list(facts.labels)},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "rationale": {"type": "string"},
            "evidence": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["turn", "quote"],
                    "properties": {"turn": {"type": "integer"}, "quote": {"type": "string"}},
                },
            },
            "summary": {"type": "string"},
            "contact_reason": {"type": "string"},
            "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
            "fields": {
                "type": "object",
                "additionalProperties": False,
                "required": list(tenant_fields),
                "properties": tenant_fields,
            },
        },
    }


def _prompt(facts: Facts) -> list[dict[str, str]]:
    outcomes = "\n".join(
        f"- {item['label']}: {item.get('description', '')}" for item in facts.taxonomy
    )
    lines = [f"[{seq}] {speaker}: {text}" for seq, speaker, text in facts.turns]
    lines += [
        f"[{t['sequence']}] tool {t.get('name')}: "
        + ("succeeded" if t.get("ok") else f"failed ({t.get('error', '')})")
        for t in facts.tools
    ]
    call = facts.call
    transcript = "\n".join(sorted(lines, key=lambda line: int(line[1 : line.index("]")])))
    return [
        {
            "role": "system",
            "content": "You review phone calls answered by an AI agent for a business and say "
            "how each ended for the caller. Choose exactly one outcome:\n"
            f"{outcomes}\n"
            "Quote the transcript lines (by their [number]) that show it. Write a two or three "
            "sentence summary, the caller's reason for calling, their sentiment, and the "
            "requested fields (null when the call does not say). Personal data in the "
            "transcript is already replaced by [labels]; never guess it.",
        },
        {
            "role": "user",
            "content": f"Call ended: {call.end_reason} after {call.duration_seconds or 0} s; "
            f"transfer: {call.transfer_status}.\nTranscript:\n"
            + transcript[-MAX_TRANSCRIPT_CHARS:],
        },
    ]


def by_model(facts: Facts, extraction: dict[str, Any]) -> Decision:
    """Ask the model; raises ModelUnavailable (with the reason) when it cannot answer."""
    schema = response_schema(facts, extraction)
    client = OpenAI(
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL or None,
        timeout=settings.OUTCOME_MODEL_TIMEOUT,
        max_retries=2,  # the SDK retries timeouts, 429 and 5xx with backoff
    )
    reason = ""
    for _ in range(MODEL_ATTEMPTS):
        try:
            completion = client.chat.completions.create(  # type: ignore[call-overload]
                model=settings.OUTCOME_MODEL,
                messages=_prompt(facts),
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "call_outcome", "strict": True, "schema": schema},
                },
                temperature=0,
            )
        except OpenAIError as error:
            raise ModelUnavailable(f"{type(error).__name__}: {str(error)[:200]}") from error
        content = completion.choices[0].message.content if completion.choices else None
        try:
            answer = json.loads(content or "")
            jsonschema.validate(answer, schema)
        except (ValueError, jsonschema.ValidationError) as error:
            reason = f"the answer did not match the schema ({str(error).splitlines()[0][:150]})"
            continue
        entry = facts.labels[answer["label"]]
        sequences = {seq for seq, _, _ in facts.turns}
        return Decision(
            label=answer["label"],
            resolved=bool(entry["resolved"]),
            confidence=float(answer["confidence"]),
            rationale=answer["rationale"],
            source=Outcome.Source.MODEL,
            evidence=[
                {"kind": "transcript", "sequence": e["turn"], "quote": e["quote"]}
                for e in answer["evidence"]
                if e["turn"] in sequences
            ],
            model=completion.model or settings.OUTCOME_MODEL,
            summary=answer["summary"],
            extracted={
                "contact_reason": answer["contact_reason"],
                "sentiment": answer["sentiment"],
                "fields": answer["fields"],
            },
        )
    raise ModelUnavailable(reason)


def decide(facts: Facts) -> Decision:
    """Rules first; then the model; then the heuristic. A rule's decision still gets the model's
    summary when a model is configured."""
    ruled = by_rules(facts)
    extraction = facts.call.version.extraction_schema if facts.call.version else {}
    if not model_configured():
        if ruled is not None:
            ruled.summary = heuristic_summary(facts)
            ruled.extracted = {"contact_reason": _first_caller_text(facts)[:200]}
            return ruled
        return by_heuristic(facts, "no model is configured (OPENAI_API_KEY, OUTCOME_MODEL)")
    if ruled is not None and not facts.turns:
        ruled.summary = heuristic_summary(facts)
        return ruled
    try:
        modelled = by_model(facts, extraction or {})
    except ModelUnavailable as error:
        logger.warning(
            "outcome model unavailable; rules decide",
            extra={"call_id": facts.call.public_id, "error": str(error)},
        )
        why = f"the model was unavailable: {error}"
        if ruled is not None:
            ruled.note = why
            ruled.summary = heuristic_summary(facts)
            return ruled
        return by_heuristic(facts, why)
    if ruled is not None:
        ruled.summary, ruled.extracted = modelled.summary, modelled.extracted
        ruled.note = f"summary by {modelled.model}"
        return ruled
    return modelled
