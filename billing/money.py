"""Money and billing periods: plain functions with no database access.

Amounts are integers in the currency's minor unit (cents for usd, yen for jpy, fils for kwd); the
only rounding is in `percent_of`, half up to a whole minor unit.
"""

import calendar
from datetime import datetime

# ISO 4217 exponents that are not 2 (the rest of the world's currencies have cents).
ZERO_DECIMAL = "bif clp djf gnf isk jpy kmf krw pyg rwf ugx uyi vnd vuv xaf xof xpf"
THREE_DECIMAL = "bhd iqd jod kwd lyd omr tnd"
EXPONENTS = {**dict.fromkeys(ZERO_DECIMAL.split(), 0), **dict.fromkeys(THREE_DECIMAL.split(), 3)}


def exponent(currency: str) -> int:
    return EXPONENTS.get(currency.lower(), 2)


def format_amount(amount: int, currency: str) -> str:
    """`1234, "usd"` -> "12.34 USD"; `1234, "jpy"` -> "1,234 JPY"; `-5, "kwd"` -> "-0.005 KWD"."""
    places = exponent(currency)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**places)
    text = f"{units:,}" + (f".{minor:0{places}d}" if places else "")
    return f"{sign}{text} {currency.upper()}"


def percent_of(amount: int, percent: int) -> int:
    """`percent`% of `amount`, rounded half up (away from zero) to a whole minor unit."""
    numerator = abs(amount) * percent
    rounded = (numerator + 50) // 100
    return rounded if amount >= 0 else -rounded


def add_months(anchor: datetime, months: int) -> datetime:
    """The same day and time `months` later; a day the month lacks becomes its last day."""
    index = anchor.year * 12 + anchor.month - 1 + months
    year, month = divmod(index, 12)
    day = min(anchor.day, calendar.monthrange(year, month + 1)[1])
    return anchor.replace(year=year, month=month + 1, day=day)


def period_containing(anchor: datetime, at: datetime) -> tuple[datetime, datetime]:
    """The monthly period [start, end) counted from `anchor` that contains `at`."""
    months = (at.year - anchor.year) * 12 + at.month - anchor.month
    start = add_months(anchor, months)
    while start > at:
        months -= 1
        start = add_months(anchor, months)
    while add_months(anchor, months + 1) <= at:
        months += 1
        start = add_months(anchor, months)
    return start, add_months(anchor, months + 1)
