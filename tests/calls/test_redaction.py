"""PII redaction over generated corpora: every Luhn-valid card number, written or spoken, in
any grouping, is gone; so are SSNs, emails and phone numbers; ordinary speech is untouched."""

import random

import pytest

from calls.redaction import (
    CARD,
    CVV,
    EMAIL,
    NOT_STORED,
    PHONE,
    SSN,
    Policy,
    luhn_valid,
    redact_data,
    redact_text,
    redact_turns,
)

STANDARD = Policy()
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
PREFIXES = {13: "4", 15: "37", 16: "5", 19: "6"}


def luhn_number(rng: random.Random, length: int) -> str:
    body = PREFIXES.get(length, "4") + "".join(
        str(rng.randrange(10)) for _ in range(length - len(PREFIXES.get(length, "4")) - 1)
    )
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


def spoken(digits: str, rng: random.Random) -> str:
    """Digits as a caller says them: words, sometimes "oh" for zero, "double" for pairs,
    pauses as commas between groups."""
    out, index = [], 0
    while index < len(digits):
        digit = digits[index]
        if index + 1 < len(digits) and digits[index + 1] == digit and rng.random() < 0.5:
            out.append(f"double {WORDS[int(digit)]}")
            index += 2
        else:
            out.append("oh" if digit == "0" and rng.random() < 0.3 else WORDS[int(digit)])
            index += 1
        if index % 4 == 0 and index < len(digits) and rng.random() < 0.5:
            out[-1] += ","
    return " ".join(out)


def written(digits: str, rng: random.Random) -> str:
    separator = rng.choice(["", " ", "-", " - "])
    size = rng.choice([4, 4, 3, 5])
    return separator.join(digits[i : i + size] for i in range(0, len(digits), size))


TEMPLATES = [
    "my card number is {}",
    "sure, it's {} and that's a visa",
    "{}",
    "okay so the number on the card is {}, expiry next year",
    "Card: {}.",
]


def card_corpus(seed: int, size: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    corpus = []
    for _ in range(size):
        digits = luhn_number(rng, rng.choice([13, 15, 16, 16, 16, 19]))
        form = spoken(digits, rng) if rng.random() < 0.5 else written(digits, rng)
        corpus.append((rng.choice(TEMPLATES).format(form), digits))
    return corpus


def no_digits_left(text: str) -> bool:
    return not any(char.isdigit() for char in text)


def test_every_luhn_valid_card_number_is_redacted_written_or_spoken() -> None:
    corpus = card_corpus(seed=20261123, size=2000)
    missed = [
        (text, redact_text(text, STANDARD))
        for text, _ in corpus
        if CARD not in redact_text(text, STANDARD)
        or any(w in redact_text(text, STANDARD).split() for w in WORDS[1:])
    ]
    assert missed == []
    for text, digits in corpus[:200]:
        assert digits not in redact_text(text, STANDARD).replace(" ", "").replace("-", "")


def test_a_card_number_read_over_several_turns_is_redacted_in_each() -> None:
    rng = random.Random(7)
    for _ in range(200):
        digits = luhn_number(rng, 16)
        words = spoken(digits, rng).replace(",", "").split()
        cut = rng.randrange(4, len(words) - 3)
        turns = ["it's " + " ".join(words[:cut]), " ".join(words[cut:]) + " thanks"]
        redacted = redact_turns(turns, STANDARD)
        assert all(CARD in turn for turn in redacted), (turns, redacted)
        assert redacted[1].endswith("thanks")
        assert not any(w in " ".join(redacted).split() for w in WORDS[1:])


def test_security_codes_after_card_context_are_redacted() -> None:
    assert redact_text("card 4111 1111 1111 1111, code 123", STANDARD) == f"card {CARD}, code {CVV}"
    assert redact_text("the CVV is seven three two", STANDARD) == f"the CVV is {CVV}"
    assert redact_text("the security code is 0421", STANDARD) == f"the security code is {CVV}"
    # Three digits with no card context are just a number.
    assert redact_text("I need 123 widgets", STANDARD) == "I need 123 widgets"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my SSN is 123-45-6789", f"my SSN is {SSN}"),
        ("social security one two three four five six seven eight nine", f"social security {SSN}"),
        ("write to jane.doe+calls@example.co.uk please", f"write to {EMAIL} please"),
        ("it's jane dot doe at example dot com", f"it's {EMAIL}"),
        ("call me at +1 415 555 0199", f"call me at {PHONE}"),
        ("my number is (415) 555-0199", f"my number is {PHONE}"),
        ("four one five, five five five, oh one nine nine", PHONE),
        ("+44 20 7946 0958 is the office", f"{PHONE} is the office"),
    ],
)
def test_ssns_emails_and_phone_numbers_are_redacted(text: str, expected: str) -> None:
    assert redact_text(text, STANDARD) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I'd like two tickets for the three o'clock show",
        "We open at 9 and close at 5 on Saturdays",
        "Order 12345 arrived yesterday",
        "One moment please, I'll check that for you",
        "The total is $1,249.99",
    ],
)
def test_ordinary_speech_is_left_alone(text: str) -> None:
    assert redact_text(text, STANDARD) == text


def test_redacting_twice_changes_nothing_the_second_time() -> None:
    for text, _ in card_corpus(seed=3, size=300):
        once = redact_text(text + " cvv 123, email a@b.io, ssn 123-45-6789", STANDARD)
        assert redact_text(once, STANDARD) == once


def test_tenant_patterns_and_modes() -> None:
    policy = Policy.of(
        {"mode": "standard", "patterns": [{"name": "member id", "pattern": r"M-\d{6}"}]}
    )
    assert redact_text("member M-123456 here", policy) == "member [member id] here"
    assert redact_text("card 4111111111111111", Policy.of({"mode": "off"})) == (
        "card 4111111111111111"
    )
    pci = Policy.of({"mode": "pci", "patterns": []})
    assert not pci.keeps_transcripts and not pci.keeps_recordings
    assert NOT_STORED.startswith("[")


def test_tool_data_is_redacted_in_every_string_but_keys_are_kept() -> None:
    data = {
        "email": "jane@example.com",
        "cards": ["4111 1111 1111 1111"],
        "nested": {"note": "call +14155550199", "count": 3},
    }
    assert redact_data(data, STANDARD) == {
        "email": EMAIL,
        "cards": [CARD],
        "nested": {"note": f"call {PHONE}", "count": 3},
    }
