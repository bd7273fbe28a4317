"""The SVG line charts: well-formed, named for screen readers, every label escaped, every
point where its value says, and nothing that a strict Content-Security-Policy would refuse
or that could fetch or run anything."""

from __future__ import annotations

import re

import pytest
from defusedxml.ElementTree import fromstring

from courtois.web.charts import (
    DASHES,
    PALETTE,
    PLOT_HEIGHT,
    TOP,
    Series,
    line_chart,
    nice_top,
    plain_number,
)

SVG = "{http://www.w3.org/2000/svg}"
DAYS = ["Mar 1", "Mar 2", "Mar 3", "Mar 4"]
KEYS = ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]


def _chart(*series: Series, **options: object) -> str:
    arguments: dict[str, object] = {
        "chart_id": "c1",
        "title": "Emails sent",
        "description": "Emails that left each day.",
        "x_labels": DAYS,
        "x_keys": KEYS,
        "series": list(series),
        "y_label": "per day",
        "x_label": "Day (UTC)",
    }
    arguments.update(options)
    return line_chart(**arguments)  # type: ignore[arg-type]


def _points(svg: str) -> dict[tuple[str, str], tuple[float, float]]:
    """(series, day) -> (value, y) of every marker."""
    root = fromstring(svg)
    return {
        (c.get("data-series", ""), c.get("data-day", "")): (
            float(c.get("data-value", "nan")),
            float(c.get("cy", "nan")),
        )
        for c in root.iter(f"{SVG}circle")
    }


def test_the_chart_is_named_for_screen_readers() -> None:
    svg = _chart(Series("sent", "Sent", [1, 2, 0, 4]))
    root = fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-title c1-desc"
    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None
    assert desc is not None
    assert (title.get("id"), title.text) == ("c1-title", "Emails sent")
    assert (desc.get("id"), desc.text) == ("c1-desc", "Emails that left each day.")
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "per day" in texts  # the vertical axis's name
    assert "Day (UTC)" in texts  # the horizontal axis's name
    assert "Sent" in texts  # the legend
    assert {"Mar 1", "Mar 4"} <= set(texts)  # day labels


def test_each_point_carries_its_value_and_sits_at_its_height() -> None:
    svg = _chart(Series("sent", "Sent", [1, 2, 0, 4]), Series("deferred", "Deferred", [0, 1, 0, 0]))
    points = _points(svg)
    assert {key: value for key, (value, _) in points.items()} == {
        ("sent", "2026-03-01"): 1,
        ("sent", "2026-03-02"): 2,
        ("sent", "2026-03-03"): 0,
        ("sent", "2026-03-04"): 4,
        ("deferred", "2026-03-01"): 0,
        ("deferred", "2026-03-02"): 1,
        ("deferred", "2026-03-03"): 0,
        ("deferred", "2026-03-04"): 0,
    }
    bottom = TOP + PLOT_HEIGHT
    # The axis tops at 4 (a round number): 4 is at the top, 2 halfway, 0 at the bottom.
    assert points[("sent", "2026-03-04")][1] == pytest.approx(TOP, abs=0.1)
    assert points[("sent", "2026-03-02")][1] == pytest.approx(TOP + PLOT_HEIGHT / 2, abs=0.1)
    assert points[("sent", "2026-03-03")][1] == pytest.approx(bottom, abs=0.1)
    tips = [t.text for c in fromstring(svg).iter(f"{SVG}circle") for t in c]
    assert "Mar 4: Sent 4" in tips


def test_a_rate_uses_its_own_axis_and_skips_days_without_value() -> None:
    svg = _chart(
        Series("acceptance", "Accepted", [0.5, None, None, 0.25]),
        y_max=1.0,
        y_text=lambda v: f"{v:.0%}",
    )
    points = _points(svg)
    assert set(points) == {("acceptance", "2026-03-01"), ("acceptance", "2026-03-04")}
    assert points[("acceptance", "2026-03-01")][0] == 0.5
    assert points[("acceptance", "2026-03-01")][1] == pytest.approx(TOP + PLOT_HEIGHT / 2, abs=0.1)
    texts = {t.text for t in fromstring(svg).iter(f"{SVG}text")}
    assert {"0%", "25%", "50%", "75%", "100%"} <= texts
    # The gap breaks the line: no polyline joins days 1 and 4 across the missing days.
    assert fromstring(svg).find(f".//{SVG}polyline") is None


def test_counts_never_get_fractional_ticks() -> None:
    svg = _chart(Series("complaints", "Complaints", [0, 1, 0, 0]))
    ticks = {t.text for t in fromstring(svg).iter(f"{SVG}text") if t.get("text-anchor") == "end"}
    assert ticks == {"0", "1"}


@pytest.mark.parametrize(
    ("highest", "whole", "expected"),
    [
        (0, False, (1.0, 0.25)),
        (0, True, (1.0, 1.0)),
        (1, True, (1.0, 1.0)),
        (3, True, (3.0, 1.0)),
        (7, True, (8.0, 2.0)),
        (42, True, (60.0, 20.0)),
        (0.3, False, (0.3, 0.1)),
        (9_900, True, (10_000.0, 5_000.0)),
    ],
)
def test_the_axis_tops_at_a_round_number(
    highest: float, whole: bool, expected: tuple[float, float]
) -> None:
    top, step = nice_top(highest, whole)
    assert (top, step) == pytest.approx(expected)
    assert top >= highest


def test_every_label_is_escaped() -> None:
    hostile = '<script>alert(1)</script> & "quotes"'
    svg = _chart(
        Series('x" onload="alert(1)', hostile, [1, 2, 3, 4]),
        title=hostile,
        description=hostile,
        chart_id='c"><script>',
        x_labels=[hostile] * 4,
        y_label=hostile,
    )
    root = fromstring(svg)  # still well-formed
    assert "<script" not in svg
    assert root.find(f"{SVG}title").text == hostile  # type: ignore[union-attr]
    for element in root.iter():
        assert not any(name.startswith("on") for name in element.attrib)


def test_nothing_is_fetched_run_or_styled_inline() -> None:
    svg = _chart(*(Series(f"s{i}", f"Rule {i}", [i, 0, i, 0]) for i in range(12)))
    root = fromstring(svg)
    for element in root.iter():
        assert element.tag.removeprefix(SVG) not in {"script", "style", "image", "a", "use"}
        assert "style" not in element.attrib
        assert not any("href" in name for name in element.attrib)
    assert re.findall(r'https?://[^"]*', svg) == ["http://www.w3.org/2000/svg"]  # the namespace
    # Twelve series, twelve looks.
    lines = root.findall(f".//{SVG}g[@class='series']/{SVG}polyline")
    styles = {(line.get("stroke"), line.get("stroke-dasharray")) for line in lines}
    assert len(styles) == 12


def _luminance(colour: str) -> float:
    """WCAG 2's relative luminance of a `#rrggbb` colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    """WCAG 2's contrast ratio of two colours, from 1 to 21."""
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#e69f00", "#ffffff") == pytest.approx(2.25, abs=0.01)


@pytest.mark.parametrize("colour", PALETTE)
def test_every_line_reads_against_the_pages_white(colour: str) -> None:
    """Graphics need 3:1 against what they are drawn on (WCAG 1.4.11)."""
    assert contrast(colour, "#ffffff") >= 3.0


def _looks(svg: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(colour, dash pattern) of each series' line, and of each legend entry, in order."""
    root = fromstring(svg)
    lines = [
        group.find(f"{SVG}polyline")
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "series"
    ]
    legend = root.findall(f".//{SVG}g[@class='legend']/{SVG}line")
    return (
        [
            (line.get("stroke", ""), line.get("stroke-dasharray", ""))
            for line in lines
            if line is not None
        ],
        [(line.get("stroke", ""), line.get("stroke-dasharray", "")) for line in legend],
    )


def test_every_series_has_its_own_dash_pattern_from_the_first() -> None:
    """Not colour alone: the first series each have a dash pattern no other has, the
    legend draws each as its line is drawn, and no two series look alike at all."""
    many = len(PALETTE) * len(DASHES)
    svg = _chart(*(Series(f"s{i}", f"Rule {i}", [i, 0, i, 1]) for i in range(many)))
    lines, legend = _looks(svg)
    assert len(lines) == many
    assert legend == lines
    first = [dash for _colour, dash in lines[: len(DASHES)]]
    assert len(set(first)) == len(DASHES) >= 6
    assert len(set(lines)) == many


def test_long_ranges_draw_lines_without_markers_and_the_legend_wraps() -> None:
    days = [f"d{i}" for i in range(365)]
    many = [Series(f"rule-{i}", f"a-rather-long-rule-name-{i}", [1] * 365) for i in range(8)]
    svg = line_chart(
        chart_id="year",
        title="A year",
        description="Every day of a year.",
        x_labels=days,
        series=many,
        y_label="per day",
    )
    root = fromstring(svg)
    assert root.find(f".//{SVG}circle") is None
    legend_rows = {t.get("y") for t in root.findall(f".//{SVG}g[@class='legend']/{SVG}text")}
    assert len(legend_rows) > 1
    labels = [
        t.text
        for t in root.findall(f"./{SVG}g[@class='axes']/{SVG}text")
        if (t.text or "").startswith("d")
    ]
    assert 2 <= len(labels) <= 8  # thinned out, not 365 overlapping labels


def test_in_a_long_range_a_point_no_line_reaches_still_gets_its_marker() -> None:
    """A year of acceptance rates with three days of data: a lone day would be drawn by
    neither a line (a run of one) nor a marker (too many days for markers)."""
    days = [f"d{i}" for i in range(200)]
    values: list[float | None] = [None] * 200
    values[0], values[120], values[121], values[199] = 1.0, 0.5, 0.25, 0.75
    svg = line_chart(
        chart_id="rates",
        title="Acceptance",
        description="Share accepted.",
        x_labels=days,
        x_keys=days,
        series=[Series("rate", "accepted", values)],
        y_label="share",
    )
    marked = {day: value for (_, day), (value, _) in _points(svg).items()}
    assert marked == {"d0": 1.0, "d199": 0.75}  # d120 and d121 are joined by a line
    assert len(fromstring(svg).findall(f".//{SVG}polyline")) == 1


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="one value per point"):
        _chart(Series("sent", "Sent", [1, 2]))
    with pytest.raises(ValueError, match="above zero"):
        _chart(Series("sent", "Sent", [1, 2, 3, 4]), y_max=0.0)


def test_plain_numbers() -> None:
    assert plain_number(3.0) == "3"
    assert plain_number(0.25) == "0.25"
    assert plain_number(1 / 3) == "0.333"
