"""Line charts as SVG text: series in, markup out, nothing fetched and nothing run.

The admin pages draw their figures on the server so they work without JavaScript and under
a Content-Security-Policy that loads nothing: colours and sizes are presentation
attributes (a `style` attribute or element would need the policy's permission), every
label is escaped, and each chart names itself (`title`, `desc`) for screen readers. Each
point carries its value in `data-*` attributes and a `title` tooltip, so the numbers drawn
can be read back exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

# Okabe and Ito's palette (distinguishable with the common colour-vision deficiencies),
# its orange and pink darkened and its yellow and sky blue left out, so that every line
# has the 3:1 contrast against the pages' white that graphics need (WCAG 1.4.11).
PALETTE = (
    "#0072b2",
    "#d55e00",
    "#009e73",
    "#b3589a",
    "#9e6b00",
    "#000000",
    "#5e3c99",
)
# Colour alone does not tell lines apart (colour-vision deficiencies, printouts): every
# series also has its own dash pattern from the first. Eight patterns against seven
# colours, lengths with no common factor, so no two of the first 56 series look alike.
DASHES = (
    "",
    "9 4",
    "2 3",
    "9 3 2 3",
    "4 4",
    "9 3 2 3 2 3",
    "16 4 4 4",
    "1 5",
)

WIDTH = 720
PLOT_HEIGHT = 220
LEFT, RIGHT, TOP = 64, 16, 12
AXIS_SPACE = 44  # below the plot: day labels, then the axis's name
LEGEND_ROW = 22
SWATCH = 36  # a legend's line: long enough to show a whole period of its dash pattern
CHAR_WIDTH = 7.2  # a generous average for the 12px legend text, to lay out legend rows
TICKS = 4
X_LABELS = 8
MAX_MARKERS = 100  # past this many days the points would be specks: lines only


@dataclass(frozen=True)
class Series:
    """One line: a stable key (for data attributes), its legend text, one value per day
    (None where there is nothing to show, such as a rate of nothing)."""

    key: str
    label: str
    values: Sequence[float | None]


def english_tip(day: str, label: str, value: str) -> str:
    """A point's tooltip ("Mar 2: Emails sent 3"); pages in other languages pass their own
    wording to `line_chart`."""
    return f"{day}: {label} {value}"


def plain_number(value: float) -> str:
    """A value as a short text: whole numbers without decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


def _raw(value: float) -> str:
    """The exact value for the data attributes."""
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def nice_top(highest: float, whole: bool = False) -> tuple[float, float]:
    """The axis top and tick step: 1, 2 or 5 times a power of ten, at least 1 for counts
    (`whole`), so that no tick reads half an email."""
    if highest <= 0 or not math.isfinite(highest):
        return 1.0, 1.0 if whole else 0.25
    rough = highest / TICKS
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    if whole:
        step = max(step, 1.0)
    return step * math.ceil(highest / step - 1e-9), step


def _f(number: float) -> str:
    return f"{number:.1f}"


def _legend_rows(series: Sequence[Series]) -> list[list[tuple[int, float]]]:
    """Legend entries (series index, x) laid out in rows that fit the width."""
    rows: list[list[tuple[int, float]]] = [[]]
    x = float(LEFT)
    for index, item in enumerate(series):
        width = SWATCH + 6 + CHAR_WIDTH * len(item.label) + 16
        if rows[-1] and x + width > WIDTH - RIGHT:
            rows.append([])
            x = float(LEFT)
        rows[-1].append((index, x))
        x += width
    return rows


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    y_label: str,
    x_label: str = "",
    x_keys: Sequence[str] | None = None,
    y_max: float | None = None,
    y_text: Callable[[float], str] = plain_number,
    tip: Callable[[str, str, str], str] = english_tip,
) -> str:
    """An SVG line chart of `series` over the points named by `x_labels`.

    `y_max` fixes the axis's top (1.0 for a rate); otherwise it is a round number above
    the highest value. `y_text` formats ticks and tooltips (a percentage, a localised
    number). `x_keys` are the points' machine names for the data attributes (ISO dates).
    `tip` words a point's tooltip from its day, series and value. Every text is plain
    text, escaped here.
    """
    count = len(x_labels)
    keys = list(x_keys) if x_keys is not None else list(x_labels)
    if len(keys) != count or any(len(s.values) != count for s in series):
        raise ValueError("every series needs one value per point")
    values = [v for s in series for v in s.values if v is not None]
    if y_max is not None:
        if not y_max > 0:
            raise ValueError("the axis's top must be above zero")
        top, step = y_max, y_max / TICKS
    else:
        whole = all(float(v).is_integer() for v in values)
        top, step = nice_top(max(values, default=0.0), whole)
    legend = _legend_rows(series)
    height = TOP + PLOT_HEIGHT + AXIS_SPACE + LEGEND_ROW * len(legend) + 8
    plot_width = WIDTH - LEFT - RIGHT
    bottom = TOP + PLOT_HEIGHT

    def x_at(index: int) -> float:
        return LEFT + (plot_width / 2 if count == 1 else plot_width * index / (count - 1))

    def y_at(value: float) -> float:
        return bottom - PLOT_HEIGHT * min(max(value, 0.0), top) / top

    cid = escape(chart_id)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{cid}" role="img" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{cid}-title {cid}-desc" font-family="inherit" font-size="12">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(description)}</desc>',
        '<g class="axes" fill="#444">',
    ]
    ticks = round(top / step)
    for tick in range(ticks + 1):
        value = step * tick
        y = _f(y_at(value))
        parts.append(
            f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" '
            f'stroke="{"#888" if tick == 0 else "#e4e4e0"}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y}" text-anchor="end" dominant-baseline="middle">'
            f"{escape(y_text(value))}</text>"
        )
    every = max(1, math.ceil(count / X_LABELS))
    for index in range(0, count, every):
        parts.append(
            f'<text x="{_f(x_at(index))}" y="{bottom + 16}" text-anchor="middle">'
            f"{escape(x_labels[index])}</text>"
        )
    parts.append(
        f'<text x="14" y="{_f(TOP + PLOT_HEIGHT / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 14 {_f(TOP + PLOT_HEIGHT / 2)})">{escape(y_label)}</text>'
    )
    if x_label:
        parts.append(
            f'<text x="{_f(LEFT + plot_width / 2)}" y="{bottom + 36}" text-anchor="middle">'
            f"{escape(x_label)}</text>"
        )
    parts.append("</g>")
    for index, item in enumerate(series):
        parts.append(_line(index, item, keys, x_labels, x_at, y_at, y_text, tip, count))
    parts.append(_legend(series, legend, bottom + AXIS_SPACE))
    parts.append("</svg>")
    return "".join(parts)


def stroke(index: int) -> tuple[str, str]:
    """The colour and dash pattern (empty: solid) of series number `index`."""
    return PALETTE[index % len(PALETTE)], DASHES[index % len(DASHES)]


def _stroke(index: int) -> tuple[str, str]:
    colour, dash = stroke(index)
    return colour, f' stroke-dasharray="{dash}"' if dash else ""


def _line(
    index: int,
    item: Series,
    keys: Sequence[str],
    labels: Sequence[str],
    x_at: Callable[[int], float],
    y_at: Callable[[float], float],
    y_text: Callable[[float], str],
    tip: Callable[[str, str, str], str],
    count: int,
) -> str:
    """One series: a polyline per unbroken run of values, and a marker per point."""
    colour, dash = _stroke(index)
    key = escape(item.key)
    parts = [f'<g class="series" data-series="{key}">']
    runs: list[list[str]] = [[]]
    for position, value in enumerate(item.values):
        if value is None:
            runs.append([])
            continue
        runs[-1].append(f"{_f(x_at(position))},{_f(y_at(value))}")
    for run in runs:
        if len(run) > 1:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2"{dash} '
                f'stroke-linejoin="round" points="{" ".join(run)}"/>'
            )
    values = item.values
    for position, value in enumerate(values):
        if value is None:
            continue
        # Past MAX_MARKERS days only a point no line passes through gets its marker:
        # otherwise a lone day (one day's acceptance in a long range) would not be drawn.
        alone = (position == 0 or values[position - 1] is None) and (
            position == len(values) - 1 or values[position + 1] is None
        )
        if count <= MAX_MARKERS or alone:
            tooltip = tip(labels[position], item.label, y_text(value))
            parts.append(
                f'<circle cx="{_f(x_at(position))}" cy="{_f(y_at(value))}" r="3" '
                f'fill="{colour}" data-series="{key}" data-day="{escape(keys[position])}" '
                f'data-value="{_raw(value)}"><title>{escape(tooltip)}</title></circle>'
            )
    parts.append("</g>")
    return "".join(parts)


def _legend(series: Sequence[Series], rows: list[list[tuple[int, float]]], top: float) -> str:
    parts = ['<g class="legend" fill="#1d1d1b">']
    for row_number, row in enumerate(rows):
        y = top + LEGEND_ROW * row_number + 8
        for index, x in row:
            colour, dash = _stroke(index)
            parts.append(
                f'<line x1="{_f(x)}" y1="{_f(y)}" x2="{_f(x + SWATCH)}" y2="{_f(y)}" '
                f'stroke="{colour}" stroke-width="3"{dash}/>'
                f'<text x="{_f(x + SWATCH + 6)}" y="{_f(y)}" dominant-baseline="middle">'
                f"{escape(series[index].label)}</text>"
            )
    parts.append("</g>")
    return "".join(parts)
