"""Charts drawn on the server as inline SVG: no script, and only presentation attributes (fill=,
stroke=), which the Content-Security-Policy allows where it forbids style attributes.

Each chart is an image with a title and a description that states its data in words, and each
bar carries its own <title> (a tooltip, read by screen readers). A chart without data says so,
and what would fill it, instead of drawing empty axes.
"""

import math
from dataclasses import dataclass

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

RESOLVED_COLOUR = "#127a3a"
OTHER_COLOUR = "#b8c2cf"
ACCENT_COLOUR = "#2454d6"
GRID_COLOUR = "#dde3ea"

# Sized for a half-width card, so the 11px text of app.css stays about 11px on screen.
WIDTH = 520
HEIGHT = 200
LEFT = 32  # room for the y axis' numbers
TOP = 28  # room for the legend
BOTTOM = 24  # room for the x axis' labels


@dataclass(frozen=True)
class Series:
    """One stacked layer of a column chart: a value per column."""

    label: str
    colour: str
    values: list[int]


@dataclass(frozen=True)
class Bar:
    """A horizontal bar: `value` long, of which `part` is drawn in the highlight colour."""

    label: str
    value: int
    part: int
    note: str


def nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above `value` (at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _empty(title: str, explanation: str) -> SafeString:
    return format_html(
        '<div class="empty" role="note"><strong>{}</strong>{}</div>', title, explanation
    )


def _svg(chart_id: str, title: str, description: str, height: int, body: list[str]) -> SafeString:
    return mark_safe(  # noqa: S308 - every text in `body` is escaped where it is built
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" data-testid="{chart_id}">'
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>' + "".join(body) + "</svg>"
    )


def _legend(series: list[Series]) -> list[str]:
    parts, x = [], LEFT
    for layer in series:
        parts.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{layer.colour}" aria-hidden="true"/>'
            f'<text x="{x + 14}" y="15">{escape(layer.label)}</text>'
        )
        x += 24 + 7 * len(layer.label)
    return parts


def column_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    labels: list[str],
    series: list[Series],
    empty: str,
) -> SafeString:
    """Stacked columns, one per label (a day), layered bottom-up in the order of `series`."""
    totals = [sum(layer.values[n] for layer in series) for n in range(len(labels))]
    if not any(totals):
        return _empty(title, empty)
    top = nice_ceiling(max(totals))
    plot_height = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT) / len(labels)
    width = min(max(slot * 0.7, 1), 40)  # a lone day is a column, not a wall
    body = _legend(series) if len(series) > 1 else []
    # A middle grid line where half the top is a whole number.
    for tick in sorted({0, top // 2 if top % 2 == 0 else 0, top}):
        y = TOP + plot_height - plot_height * tick / top
        body.append(
            f'<line x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    # At most about 8 labels under the axis, so they never overlap.
    every = max(1, math.ceil(len(labels) / 8))
    for n, label in enumerate(labels):
        x = LEFT + slot * n + (slot - width) / 2
        base: float = TOP + plot_height
        for layer in series:
            value = layer.values[n]
            if not value:
                continue
            height = plot_height * value / top
            base -= height
            body.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{width:.1f}" height="{height:.1f}" '
                f'fill="{layer.colour}"><title>{escape(f"{label}: {value} {layer.label.lower()}")}'
                "</title></rect>"
            )
        if n % every == 0:
            body.append(
                f'<text x="{x + width / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">'
                f"{escape(label)}</text>"
            )
    return _svg(chart_id, title, description, HEIGHT, body)


ROW = 30
LABEL_WIDTH = 130
NOTE_WIDTH = 150


def _shorten(text: str, characters: int = 20) -> str:
    return text if len(text) <= characters else text[: characters - 1] + "…"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    bars: list[Bar],
    legend: list[Series],
    empty: str,
) -> SafeString:
    """Horizontal bars, one per row, each with a highlighted part and a note at its end."""
    if not any(bar.value for bar in bars):
        return _empty(title, empty)
    top = max(bar.value for bar in bars)
    span = WIDTH - LABEL_WIDTH - NOTE_WIDTH
    height = TOP + ROW * len(bars)
    body = _legend(legend)
    for n, bar in enumerate(bars):
        y = TOP + ROW * n
        whole = span * bar.value / top
        part = span * bar.part / top
        text = escape(f"{bar.label}: {bar.note}")
        body.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 15}" text-anchor="end">'
            f"{escape(_shorten(bar.label))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{whole:.1f}" height="16" '
            f'fill="{legend[-1].colour}"><title>{text}</title></rect>'
        )
        if bar.part:
            body.append(
                f'<rect x="{LABEL_WIDTH}" y="{y + 4}" width="{part:.1f}" height="16" '
                f'fill="{legend[0].colour}"><title>{text}</title></rect>'
            )
        body.append(
            f'<text x="{LABEL_WIDTH + whole + 8:.1f}" y="{y + 15}">{escape(bar.note)}</text>'
        )
    return _svg(chart_id, title, description, height, body)
