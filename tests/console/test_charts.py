import re

from console import charts


def test_the_axis_ends_on_a_round_number() -> None:
    assert [charts.nice_ceiling(n) for n in (0, 1, 2, 3, 7, 10, 11, 40, 51, 999)] == [
        1,
        1,
        2,
        5,
        10,
        10,
        20,
        50,
        100,
        1000,
    ]


def _columns(values: list[int], labels: list[str] | None = None) -> str:
    labels = labels or [f"day {n}" for n in range(len(values))]
    return charts.column_chart(
        chart_id="test",
        title="Calls per day",
        description="Three days of calls.",
        labels=labels,
        series=[
            charts.Series("Resolved", charts.RESOLVED_COLOUR, values),
            charts.Series("Not resolved", charts.OTHER_COLOUR, [1 for _ in values]),
        ],
        empty="No calls yet.",
    )


def test_a_column_chart_is_an_accessible_image_drawn_with_presentation_attributes() -> None:
    svg = _columns([2, 0, 5])
    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert 'aria-labelledby="test-title test-desc"' in svg
    assert '<title id="test-title">Calls per day</title>' in svg
    assert '<desc id="test-desc">Three days of calls.</desc>' in svg
    # The content security policy forbids style attributes.
    assert "style=" not in svg
    assert f'fill="{charts.RESOLVED_COLOUR}"' in svg
    # Two resolved columns (the zero draws nothing), three "not resolved" ones, two legend keys.
    assert len(re.findall(r"<rect [^>]*><title>", svg)) == 5
    assert "<title>day 2: 5 resolved</title>" in svg


def test_a_chart_without_data_explains_itself_instead_of_drawing_axes() -> None:
    html = charts.column_chart(
        chart_id="test",
        title="Calls per day",
        description="",
        labels=["a", "b"],
        series=[charts.Series("Resolved", charts.RESOLVED_COLOUR, [0, 0])],
        empty="No calls yet: publish an agent.",
    )
    assert "<svg" not in html
    assert 'class="empty"' in html
    assert "No calls yet: publish an agent." in html


def test_text_in_a_chart_is_escaped() -> None:
    svg = charts.bar_chart(
        chart_id="agents",
        title="Per agent",
        description="<b>",
        bars=[charts.Bar("<script>alert(1)</script>", 4, 3, "4 calls, 75% resolved")],
        legend=[
            charts.Series("Resolved", charts.RESOLVED_COLOUR, []),
            charts.Series("Other", charts.OTHER_COLOUR, []),
        ],
        empty="",
    )
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert '<desc id="agents-desc">&lt;b&gt;</desc>' in svg


def test_a_bar_chart_draws_the_highlighted_part_over_the_whole() -> None:
    svg = charts.bar_chart(
        chart_id="agents",
        title="Per agent",
        description="",
        bars=[charts.Bar("Front desk", 4, 1, "4 calls"), charts.Bar("Billing", 2, 0, "2 calls")],
        legend=[
            charts.Series("Resolved", charts.RESOLVED_COLOUR, []),
            charts.Series("Other", charts.OTHER_COLOUR, []),
        ],
        empty="",
    )
    widths = [float(w) for w in re.findall(r'<rect x="130" y="\d+" width="([\d.]+)"', svg)]
    # Front desk: the whole span, then its quarter resolved; Billing: half, nothing resolved.
    assert widths == [240.0, 60.0, 120.0]
    assert ">Front desk</text>" in svg
