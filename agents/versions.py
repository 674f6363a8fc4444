"""What makes an agent version valid: shape checks for drafts, and everything a call needs
before publishing. Each check returns (field, message) pairs, so every problem is reported."""

import re
from typing import Any

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SIP_URI = re.compile(r"^sips?:[^@\s:]+@[A-Za-z0-9.-]+(:\d{1,5})?(;[^\s]*)?$")
LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
LABEL = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MODEL = re.compile(r"^[a-z0-9][a-z0-9.-]{1,63}$")

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")
PROVIDERS = ("openai",)
REDACTION_MODES = ("off", "standard", "pci")
MAX_CALL_SECONDS = 4 * 60 * 60

Problems = list[tuple[str, str]]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_model_provider(value: Any) -> Problems:
    return (
        []
        if value in PROVIDERS
        else [("model_provider", f"Provider is one of {', '.join(PROVIDERS)}.")]
    )


def _check_model(value: Any) -> Problems:
    ok = isinstance(value, str) and MODEL.match(value)
    return [] if ok else [("model", "Give the model's name, e.g. gpt-realtime.")]


def _check_voice(value: Any) -> Problems:
    return [] if value in VOICES else [("voice", f"Voice is one of {', '.join(VOICES)}.")]


def _check_languages(value: Any) -> Problems:
    if not isinstance(value, list) or not value:
        return [("languages", 'List at least one language code, e.g. ["en"].')]
    bad = [v for v in value if not isinstance(v, str) or not LANGUAGE.match(v)]
    return [("languages", f"Not language codes: {bad}.")] if bad else []


def _check_text(field: str, limit: int) -> Any:
    def check(value: Any) -> Problems:
        if not isinstance(value, str):
            return [(field, "Must be text.")]
        return [(field, f"At most {limit} characters.")] if len(value) > limit else []

    return check


def _check_turn_detection(value: Any) -> Problems:
    if not isinstance(value, dict):
        return [("turn_detection", "Must be an object with a type.")]
    kind = value.get("type")
    common = {"type", "create_response", "interrupt_response"}
    allowed = {
        "server_vad": common
        | {"threshold", "prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"},
        "semantic_vad": common | {"eagerness"},
    }
    if kind not in allowed:
        return [("turn_detection.type", "Type is server_vad or semantic_vad.")]
    problems: Problems = []
    for key in sorted(set(value) - allowed[kind]):
        problems.append((f"turn_detection.{key}", f"{kind} takes no {key}."))
    for key in ("create_response", "interrupt_response"):
        if key in value and not isinstance(value[key], bool):
            problems.append((f"turn_detection.{key}", "Must be true or false."))
    threshold = value.get("threshold")
    if threshold is not None and not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
        problems.append(("turn_detection.threshold", "Between 0 and 1."))
    for key in ("prefix_padding_ms", "silence_duration_ms", "idle_timeout_ms"):
        if key in value and not (_is_int(value[key]) and 0 <= value[key] <= 10_000):
            problems.append((f"turn_detection.{key}", "Milliseconds between 0 and 10000."))
    if "eagerness" in value and value["eagerness"] not in ("low", "medium", "high", "auto"):
        problems.append(("turn_detection.eagerness", "One of low, medium, high, auto."))
    return problems


def _check_transfer_targets(value: Any) -> Problems:
    if not isinstance(value, list):
        return [("transfer_targets", "A list of {name, destination, description}.")]
    problems: Problems = []
    names: set[str] = set()
    for index, target in enumerate(value):
        where = f"transfer_targets.{index}"
        if not isinstance(target, dict):
            problems.append((where, "Each target is an object."))
            continue
        for key in sorted(set(target) - {"name", "destination", "description"}):
            problems.append((f"{where}.{key}", f"Unknown key {key}."))
        name = target.get("name")
        if not isinstance(name, str) or not name.strip():
            problems.append((f"{where}.name", "Give the target a name the agent can use."))
        elif name in names:
            problems.append((f"{where}.name", f"{name} appears twice."))
        else:
            names.add(name)
        destination = target.get("destination")
        if not isinstance(destination, str) or not (
            E164.match(destination) or SIP_URI.match(destination)
        ):
            problems.append(
                (
                    f"{where}.destination",
                    f"{destination!r} is neither an E.164 number (+15551234567) nor a SIP URI.",
                )
            )
    return problems


def _check_seconds(field: str, low: int, high: int) -> Any:
    def check(value: Any) -> Problems:
        ok = _is_int(value) and low <= value <= high
        return [] if ok else [(field, f"Seconds between {low} and {high}.")]

    return check


def _check_recording(value: Any) -> Problems:
    return [] if isinstance(value, bool) else [("recording_enabled", "Must be true or false.")]


def _check_redaction(value: Any) -> Problems:
    if not isinstance(value, dict):
        return [("redaction", "An object with a mode and patterns.")]
    problems: Problems = []
    for key in sorted(set(value) - {"mode", "patterns"}):
        problems.append((f"redaction.{key}", f"Unknown key {key}."))
    if value.get("mode") not in REDACTION_MODES:
        problems.append(("redaction.mode", f"Mode is one of {', '.join(REDACTION_MODES)}."))
    patterns = value.get("patterns", [])
    if not isinstance(patterns, list):
        return [*problems, ("redaction.patterns", "A list of {name, pattern}.")]
    for index, item in enumerate(patterns):
        where = f"redaction.patterns.{index}"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("name"), str)
            or not item.get("name")
        ):
            problems.append((where, "Each pattern has a name and a regular expression."))
            continue
        try:
            re.compile(str(item.get("pattern", "")))
        except re.error as exc:
            problems.append((f"{where}.pattern", f"Not a valid regular expression: {exc}."))
        if not item.get("pattern"):
            problems.append((f"{where}.pattern", "The pattern is empty."))
    return problems


def _check_taxonomy(value: Any) -> Problems:
    if not isinstance(value, list) or not value:
        return [("outcome_taxonomy", "List at least one outcome label.")]
    problems: Problems = []
    labels: set[str] = set()
    for index, item in enumerate(value):
        where = f"outcome_taxonomy.{index}"
        if not isinstance(item, dict):
            problems.append((where, "Each outcome is {label, description, resolved}."))
            continue
        for key in sorted(set(item) - {"label", "description", "resolved"}):
            problems.append((f"{where}.{key}", f"Unknown key {key}."))
        label = item.get("label")
        if not isinstance(label, str) or not LABEL.match(label):
            problems.append((f"{where}.label", "Labels are lowercase words: a-z, 0-9, _."))
        elif label in labels:
            problems.append((f"{where}.label", f"{label} appears twice."))
        else:
            labels.add(label)
        if not isinstance(item.get("resolved"), bool):
            problems.append(
                (f"{where}.resolved", "Say whether this outcome counts as resolved (true/false).")
            )
        if not isinstance(item.get("description", ""), str):
            problems.append((f"{where}.description", "Must be text."))
    return problems


EXTRACTION_TYPES = ("string", "number", "integer", "boolean")


def _check_extraction_schema(value: Any) -> Problems:
    """Fields extracted after each call: a flat JSON Schema object whose properties are strings,
    numbers, integers or booleans (optionally with an `enum` and a `description`)."""
    if value in ({}, None):
        return []
    where = "extraction_schema"
    if not isinstance(value, dict) or value.get("type") != "object":
        return [(where, 'A JSON Schema object: {"type": "object", "properties": {...}}.')]
    problems: Problems = []
    for key in sorted(set(value) - {"type", "properties", "description"}):
        problems.append((f"{where}.{key}", f"Unknown key {key}."))
    properties = value.get("properties")
    if not isinstance(properties, dict) or not properties:
        return [*problems, (f"{where}.properties", "Name at least one field.")]
    for name, spec in properties.items():
        at = f"{where}.properties.{name}"
        if not LABEL.match(name):
            problems.append((at, "Field names are lowercase words: a-z, 0-9, _."))
        if not isinstance(spec, dict) or spec.get("type") not in EXTRACTION_TYPES:
            problems.append((f"{at}.type", f"Type is one of {', '.join(EXTRACTION_TYPES)}."))
            continue
        for key in sorted(set(spec) - {"type", "description", "enum"}):
            problems.append((f"{at}.{key}", f"Unknown key {key}."))
        if "enum" in spec and (not isinstance(spec["enum"], list) or not spec["enum"]):
            problems.append((f"{at}.enum", "A non-empty list of allowed values."))
        if not isinstance(spec.get("description", ""), str):
            problems.append((f"{at}.description", "Must be text."))
    return problems


def _check_variables(value: Any) -> Problems:
    return (
        [] if isinstance(value, dict) else [("prompt_variables", "An object of variable values.")]
    )


FIELD_CHECKS = {
    "model_provider": _check_model_provider,
    "model": _check_model,
    "voice": _check_voice,
    "languages": _check_languages,
    "greeting": _check_text("greeting", 2000),
    "prompt_variables": _check_variables,
    "turn_detection": _check_turn_detection,
    "transfer_targets": _check_transfer_targets,
    "max_call_duration_seconds": _check_seconds("max_call_duration_seconds", 30, MAX_CALL_SECONDS),
    "silence_timeout_seconds": _check_seconds("silence_timeout_seconds", 5, MAX_CALL_SECONDS),
    "recording_enabled": _check_recording,
    "redaction": _check_redaction,
    "outcome_taxonomy": _check_taxonomy,
    "extraction_schema": _check_extraction_schema,
}
# The version's own values (not its links to revisions, tools and knowledge bases).
SCALAR_FIELDS = tuple(FIELD_CHECKS)
EDITABLE_FIELDS = (*SCALAR_FIELDS, "prompt_revision", "tools", "knowledge_bases")


def field_problems(fields: dict[str, Any]) -> Problems:
    problems: Problems = []
    for name, value in fields.items():
        check = FIELD_CHECKS.get(name)
        if check:
            problems += check(value)
    return problems
