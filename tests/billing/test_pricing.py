"""Money arithmetic: tiers, included units, minimums, discounts, trials and currencies."""

from datetime import UTC, datetime
from typing import Any

import pytest

from billing.money import add_months, format_amount, percent_of, period_containing
from billing.pricing import charge, validate_tiers

METER = "resolved_conversation"


def pricing(**price: Any) -> dict[str, Any]:
    defaults = {"mode": "flat", "unit_amount": 70, "included_quantity": 0, "tiers": []}
    extra = {
        k: price.pop(k)
        for k in ("monthly_minimum", "discount_percent", "trial", "currency")
        if k in price
    }
    return {
        "plan": "p",
        "plan_name": "P",
        "currency": extra.get("currency", "usd"),
        "monthly_minimum": extra.get("monthly_minimum", 0),
        "discount_percent": extra.get("discount_percent", 0),
        "trial": extra.get("trial", False),
        "prices": {METER: {**defaults, **price}},
    }


TIERS = [
    {"up_to": 1000, "unit_amount": 70},
    {"up_to": 5000, "unit_amount": 50, "flat_amount": 1000},
    {"up_to": None, "unit_amount": 30},
]


def test_a_flat_price_charges_each_unit() -> None:
    bill = charge(pricing(), {METER: 12})
    assert [(line.quantity, line.unit_amount, line.amount) for line in bill.lines] == [
        (12, 70, 840)
    ]
    assert (bill.subtotal, bill.discount, bill.total) == (840, 0, 840)


@pytest.mark.parametrize(
    ("units", "total"),
    [
        (0, 0),
        (1, 70),
        (1000, 70_000),  # the last unit of tier one
        (1001, 70_000 + 1000 + 50),  # the first of tier two brings its flat amount
        (5000, 70_000 + 1000 + 4000 * 50),
        (5001, 70_000 + 1000 + 4000 * 50 + 30),
    ],
)
def test_graduated_tiers_price_each_tiers_units_at_its_rate(units: int, total: int) -> None:
    assert charge(pricing(mode="graduated", tiers=TIERS), {METER: units}).total == total


@pytest.mark.parametrize(
    ("units", "total"),
    [(1000, 1000 * 70), (1001, 1001 * 50 + 1000), (5000, 5000 * 50 + 1000), (5001, 5001 * 30)],
)
def test_volume_tiers_price_every_unit_at_the_rate_the_total_reaches(
    units: int, total: int
) -> None:
    assert charge(pricing(mode="volume", tiers=TIERS), {METER: units}).total == total


def test_included_units_are_free_and_tiers_count_after_them() -> None:
    bill = charge(pricing(mode="graduated", tiers=TIERS, included_quantity=100), {METER: 1100})
    assert [(line.quantity, line.amount) for line in bill.lines] == [(100, 0), (1000, 70_000)]
    assert charge(pricing(included_quantity=100), {METER: 40}).total == 0


def test_the_monthly_minimum_tops_usage_up_and_the_discount_rounds_half_up() -> None:
    bill = charge(pricing(monthly_minimum=5000, discount_percent=15), {METER: 10})
    assert [line.kind for line in bill.lines] == ["usage", "minimum", "discount"]
    assert bill.subtotal == 5000
    assert bill.discount == 750
    assert charge(pricing(discount_percent=10), {METER: 1}).discount == 7  # 7.0
    assert charge(pricing(discount_percent=5), {METER: 1}).discount == 4  # 3.5 rounds up
    assert charge(pricing(discount_percent=5, unit_amount=69), {METER: 1}).discount == 3  # 3.45


def test_a_trial_period_costs_nothing_and_has_no_minimum() -> None:
    bill = charge(pricing(trial=True, monthly_minimum=5000), {METER: 10})
    assert [line.kind for line in bill.lines] == ["usage", "trial"]
    assert (bill.subtotal, bill.total) == (700, 0)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (70, "usd", "0.70 USD"),
        (123_456, "usd", "1,234.56 USD"),
        (1234, "jpy", "1,234 JPY"),
        (1234, "kwd", "1.234 KWD"),
        (-5, "bhd", "-0.005 BHD"),
        (-70, "eur", "-0.70 EUR"),
    ],
)
def test_amounts_are_minor_units_shown_with_the_currencys_decimals(
    amount: int, currency: str, text: str
) -> None:
    assert format_amount(amount, currency) == text


def test_zero_and_three_decimal_currencies_are_priced_in_their_own_minor_units() -> None:
    assert charge(pricing(currency="jpy", unit_amount=100), {METER: 3}).total == 300
    kwd = charge(pricing(currency="kwd", unit_amount=215, discount_percent=10), {METER: 3})
    assert (kwd.subtotal, kwd.discount, kwd.total) == (645, 65, 580)  # 64.5 fils rounds up


def test_percent_of_rounds_half_away_from_zero() -> None:
    assert [percent_of(a, 50) for a in (1, 3, -3, 0)] == [1, 2, -2, 0]


def test_tier_problems_are_explained() -> None:
    assert validate_tiers("graduated", TIERS) == []
    assert validate_tiers("flat", []) == []
    assert validate_tiers("volume", []) == ["A tiered price needs at least one tier."]
    problems = validate_tiers(
        "graduated", [{"up_to": 10, "unit_amount": 1.5}, {"up_to": 5, "unit_amount": 1}]
    )
    assert "Tier 1: amounts are whole minor units, zero or more." in problems
    assert "Tier 2: the last tier has no upper bound (up_to null)." in problems


def test_months_keep_their_anchor_day_or_fall_back_to_the_last_day() -> None:
    anchor = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)
    assert add_months(anchor, 1) == datetime(2026, 2, 28, 9, 30, tzinfo=UTC)
    assert add_months(anchor, 2) == datetime(2026, 3, 31, 9, 30, tzinfo=UTC)
    assert add_months(anchor, -2) == datetime(2025, 11, 30, 9, 30, tzinfo=UTC)
    start, end = period_containing(anchor, datetime(2026, 3, 15, tzinfo=UTC))
    assert (start, end) == (add_months(anchor, 1), add_months(anchor, 2))
    assert period_containing(anchor, anchor) == (anchor, add_months(anchor, 1))
