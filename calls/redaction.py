"""PII redaction for transcripts and tool data.

A version's policy (`AgentVersion.redaction`) picks the mode: `off`, `standard` or `pci`, plus the
tenant's own named patterns. Standard mode replaces, in written and spoken form:

- card numbers: 13 to 19 digits that pass the Luhn check, written (`4111 1111 1111 1111`) or
  spoken (`four one one one ...`, `double four`, `oh` for zero), even split over several turns;
- card security codes: 3 or 4 digits within a few words after a card number or a word such as
  "CVV" or "security code";
- US social security numbers: `123-45-6789`, or nine digits after "social security" or "SSN";
- email addresses, written or spoken (`jane dot doe at example dot com`);
- phone numbers: `+` and 8 to 15 digits, or 10 and 11 digit runs, in any grouping.

`pci` mode does all that and also stores no transcript body at all (and no recording).
Redacting redacted text changes nothing, so the same text can go through any number of times.
"""

import re
from dataclasses import dataclass
from typing import Any

CARD = "[card number]"
CVV = "[security code]"
SSN = "[ssn]"
EMAIL = "[email]"
PHONE = "[phone number]"
NOT_STORED = "[not stored: pci]"

DIGIT_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
REPEATS = {"double": 2, "triple": 3}
# What may sit between the digits of one number: spaces and the punctuation people (and speech
# recognisers) put in groups of digits.
GAP = re.compile(r"[\s\-.,/()]*")
TOKEN = re.compile(r"\d+|[A-Za-z]+")
CARD_CONTEXT = re.compile(
    r"\b(cvv2?|cvc2?|cid|security code|verification (code|number|value)|"
    r"(three|3|four|4)[ -]digit code|code on the back)\b",
    re.IGNORECASE,
)
SSN_CONTEXT = re.compile(r"\b(social security|social|ssn)\b", re.IGNORECASE)
WRITTEN_SSN = re.compile(r"\b\d{3}[- ]\d{2}[- ]\d{4}\b")
WRITTEN_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(\.[\w-]+)+", re.UNICODE)
SPOKEN_EMAIL = re.compile(
    r"\b[\w+%-]+(?:\s+dot\s+[\w+%-]+)*\s+at\s+[\w-]+(?:\s+dot\s+[\w-]+)*\s+dot\s+"
    r"(?:com|net|org|edu|gov|io|co|uk|us|ca|de|fr|info|biz)\b",
    re.IGNORECASE,
)
CONTEXT_WINDOW = 60  # characters after a card number or a security-code word
MODES = ("off", "standard", "pci")


@dataclass(frozen=True)
class Policy:
    mode: str = "standard"
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()

    @classmethod
    def of(cls, redaction: Any) -> "Policy":
        """The policy a version's `redaction` setting describes (validated when published)."""
        if not isinstance(redaction, dict):
            return cls()
        mode = redaction.get("mode") if redaction.get("mode") in MODES else "standard"
        patterns = []
        for item in redaction.get("patterns") or []:
            try:
                patterns.append((str(item["name"]), re.compile(str(item["pattern"]))))
            except (KeyError, TypeError, re.error):
                continue
        return cls(str(mode), tuple(patterns))

    @property
    def active(self) -> bool:
        return self.mode != "off"

    @property
    def keeps_transcripts(self) -> bool:
        return self.mode != "pci"

    @property
    def keeps_recordings(self) -> bool:
        return self.mode != "pci"


@dataclass(frozen=True)
class Digit:
    start: int
    end: int
    digits: str


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digit_runs(text: str) -> list[list[Digit]]:
    """Runs of digit tokens (written digits or digit words) separated only by spaces and
    grouping punctuation, in order."""
    runs: list[list[Digit]] = []
    current: list[Digit] = []
    repeat, repeat_start, previous_end = 1, 0, 0
    for match in TOKEN.finditer(text):
        word = match.group().lower()
        joined = bool(current) and GAP.fullmatch(text, previous_end, match.start()) is not None
        if current and not joined:
            runs.append(current)
            current = []
        if word in REPEATS:
            repeat, repeat_start, previous_end = REPEATS[word], match.start(), match.end()
            continue
        digits = match.group() if word.isdigit() else DIGIT_WORDS.get(word)
        if digits is None:
            if current:
                runs.append(current)
                current = []
            repeat = 1
            continue
        start = repeat_start if repeat > 1 else match.start()
        current.append(Digit(start, match.end(), digits * repeat))
        repeat, previous_end = 1, match.end()
    if current:
        runs.append(current)
    return runs


Span = tuple[int, int, str]


def _near(position: int, context_ends: list[int]) -> bool:
    return any(0 <= position - end <= CONTEXT_WINDOW for end in context_ends)


def _classify(piece: list[Digit], text: str, cards: list[int], ssn: list[int]) -> Span | None:
    """A run of digits that is not a card number: a security code, an SSN, a phone number?"""
    start, end = piece[0].start, piece[-1].end
    digits = "".join(d.digits for d in piece)
    if len(digits) in (3, 4) and _near(start, cards):
        return start, end, CVV
    if len(digits) == 9 and _near(start, ssn):
        return start, end, SSN
    opener = text[start - 1 : start]
    if len(digits) in (10, 11) or (opener == "+" and 8 <= len(digits) <= 15):
        return start - (opener in ("+", "(")), end, PHONE
    return None


def _spans(text: str, policy: Policy) -> list[Span]:
    spans: list[Span] = []
    for name, pattern in policy.patterns:
        spans.extend((m.start(), m.end(), f"[{name}]") for m in pattern.finditer(text) if m.group())
    spans.extend((m.start(), m.end(), EMAIL) for m in WRITTEN_EMAIL.finditer(text))
    spans.extend((m.start(), m.end(), EMAIL) for m in SPOKEN_EMAIL.finditer(text))
    spans.extend((m.start(), m.end(), SSN) for m in WRITTEN_SSN.finditer(text))
    card_context = [m.end() for m in CARD_CONTEXT.finditer(text)]
    ssn_context = [m.end() for m in SSN_CONTEXT.finditer(text)]
    for run in _digit_runs(text):
        # Card numbers: any stretch of 13 to 19 digits passing the Luhn check.
        covered = [False] * len(run)
        for first in range(len(run)):
            digits = ""
            for last in range(first, len(run)):
                digits += run[last].digits
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    spans.append((run[first].start, run[last].end, CARD))
                    card_context.append(run[last].end)
                    covered[first : last + 1] = [True] * (last + 1 - first)
        # What is left of the run, piece by piece.
        piece: list[Digit] = []
        for digit, is_card in zip([*run, None], [*covered, True], strict=True):
            if is_card or digit is None:
                span = _classify(piece, text, card_context, ssn_context) if piece else None
                if span is not None:
                    spans.append(span)
                piece = []
            else:
                piece.append(digit)
    return spans


def _merge(text: str, spans: list[Span]) -> str:
    """Replace the spans (overlapping spans join; the earliest label wins)."""
    if not spans:
        return text
    merged: list[list[Any]] = []
    for start, end, label in sorted(spans, key=lambda s: (s[0], -s[1])):
        if merged and start < merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end, label])
    out, cursor = [], 0
    for start, end, label in merged:
        out += [text[cursor:start], label]
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def redact_text(text: str, policy: Policy) -> str:
    if not policy.active or not text:
        return text
    return _merge(text, _spans(text, policy))


def redact_data(value: Any, policy: Policy) -> Any:
    """Every string inside a JSON value (tool arguments and results); keys are left alone."""
    if isinstance(value, str):
        return redact_text(value, policy)
    if isinstance(value, dict):
        return {key: redact_data(item, policy) for key, item in value.items()}
    if isinstance(value, list):
        return [redact_data(item, policy) for item in value]
    return value


def redact_turns(turns: list[str], policy: Policy) -> list[str]:
    """Redact one speaker's consecutive turns together, so a number read out over several
    turns ("four one one one" ... "one one one one" ...) is still found; each turn loses its
    part of it."""
    if not policy.active:
        return list(turns)
    joined = " ".join(turns)
    spans = _spans(joined, policy)
    out, offset = [], 0
    for turn in turns:
        local = [
            (max(start, offset) - offset, min(end, offset + len(turn)) - offset, label)
            for start, end, label in spans
            if start < offset + len(turn) and end > offset
        ]
        out.append(_merge(turn, local))
        offset += len(turn) + 1
    return out
