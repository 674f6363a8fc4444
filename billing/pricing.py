"""Turning quantities into invoice lines with a plan's prices, as snapshotted on the invoice.

Order of operations (docs/billing.md): each meter's units after its included quantity are priced
flat, by graduated tiers (each tier's units at its own rate) or by volume (every unit at the rate
of the tier the total falls in), plus a tier's flat amount when any of its units are used; the
monthly minimum tops the usage subtotal up; the discount is taken off that subtotal, rounded half
up; a trial period's total is brought to zero. All amounts are integer minor units.
"""

from dataclasses import dataclass, field
from typing import Any

from billing.models import Meter
from billing.money import format_amount, percent_of

Pricing = dict[str, Any]


@dataclass(frozen=True)
class Draft:
    kind: str
    description: str
    amount: int
    meter: str = ""
    quantity: int = 0
    unit_amount: int | None = None


@dataclass
class Bill:
    lines: list[Draft] = field(default_factory=list)
    subtotal: int = 0
    discount: int = 0
    total: int = 0


def _label(meter: str) -> str:
    return str(Meter(meter).label) + "s" if meter in Meter.values else meter


def _usage_lines(meter: str, price: dict[str, Any], quantity: int, currency: str) -> list[Draft]:
    label = _label(meter)
    quantity = max(quantity, 0)
    included = min(quantity, price["included_quantity"])
    lines = []
    if included:
        lines.append(Draft("usage", f"{label}, included", 0, meter, included, 0))
    billable = quantity - included
    if price["mode"] == "flat" or not price["tiers"]:
        unit = price["unit_amount"]
        if billable or not included:
            lines.append(Draft("usage", label, billable * unit, meter, billable, unit))
        return lines
    below = 0
    for tier in price["tiers"]:
        up_to = tier["up_to"]
        if price["mode"] == "volume":
            if up_to is not None and billable > up_to:
                continue
            units, first = billable, 1
        else:
            top = billable if up_to is None else min(billable, up_to)
            units, first = top - below, below + 1
        if units > 0:
            unit, flat = tier["unit_amount"], tier.get("flat_amount", 0)
            last = first + units - 1
            span = f"{first:,}-{last:,}" if price["mode"] == "graduated" else f"all {units:,}"
            text = f"{label}, {span} at {format_amount(unit, currency)}"
            if flat:
                text += f" + {format_amount(flat, currency)}"
            lines.append(Draft("usage", text, units * unit + flat, meter, units, unit))
        if price["mode"] == "volume" or up_to is None or billable <= up_to:
            break
        below = up_to
    if not lines:
        lines.append(Draft("usage", label, 0, meter, 0, 0))
    return lines


def charge(pricing: Pricing, quantities: dict[str, int]) -> Bill:
    """The lines and totals of a period billed `quantities` (units per meter) under `pricing`."""
    currency = pricing["currency"]
    bill = Bill()
    for meter, price in pricing["prices"].items():
        bill.lines += _usage_lines(meter, price, quantities.get(meter, 0), currency)
    usage = sum(line.amount for line in bill.lines)
    minimum = pricing["monthly_minimum"]
    if usage < minimum and not pricing["trial"]:
        bill.lines.append(Draft("minimum", "Monthly minimum", minimum - usage))
    bill.subtotal = max(usage, 0 if pricing["trial"] else minimum)
    bill.discount = percent_of(bill.subtotal, pricing["discount_percent"])
    if bill.discount:
        text = f"Discount, {pricing['discount_percent']}%"
        bill.lines.append(Draft("discount", text, -bill.discount))
    bill.total = bill.subtotal - bill.discount
    if pricing["trial"] and bill.total:
        bill.lines.append(Draft("trial", "Free trial", -bill.total))
        bill.discount += bill.total
        bill.total = 0
    return bill


def validate_tiers(mode: str, tiers: list[dict[str, Any]]) -> list[str]:
    """Problems with a price's tiers, in words an operator can act on; empty when sound."""
    if mode == "flat":
        return ["A flat price has no tiers."] if tiers else []
    if not tiers:
        return ["A tiered price needs at least one tier."]
    problems, previous = [], 0
    for n, tier in enumerate(tiers, 1):
        if set(tier) - {"up_to", "unit_amount", "flat_amount"}:
            problems.append(f"Tier {n}: only up_to, unit_amount and flat_amount are allowed.")
        amounts = (tier.get("unit_amount"), tier.get("flat_amount", 0))
        if not all(isinstance(a, int) and not isinstance(a, bool) and a >= 0 for a in amounts):
            problems.append(f"Tier {n}: amounts are whole minor units, zero or more.")
        up_to = tier.get("up_to")
        last = n == len(tiers)
        if last and up_to is not None:
            problems.append(f"Tier {n}: the last tier has no upper bound (up_to null).")
        if not last and (not isinstance(up_to, int) or up_to <= previous):
            problems.append(f"Tier {n}: up_to must be a whole number above {previous}.")
        if isinstance(up_to, int):
            previous = up_to
    return problems
