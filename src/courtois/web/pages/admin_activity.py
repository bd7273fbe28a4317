"""`/admin`: what happened each day, as charts drawn on the server, with their numbers.

The range is chosen with a plain GET form (`from`, `to`: ISO days), 30 days by default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, timedelta

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from courtois.domain.errors import InvalidInput
from courtois.services.admin_statistics import DailyFigures, choose_range, daily_figures
from courtois.web.charts import Series, english_tip, line_chart
from courtois.web.deps import Ctx, Now
from courtois.web.pages.admin_access import bad_request, problem_of, signed_in
from courtois.web.pages.admin_render import Formats, admin_locale, admin_page

router = APIRouter(include_in_schema=False)

PRESETS = (7, 30, 90, 365)


def plain(text: str) -> str:
    """A text the template handed over as it reads, not as HTML: `_()` in an autoescaping
    template gives markup ("day&#x27;s"), and the chart escapes what it draws itself, so
    each character is escaped once."""
    return text.unescape() if isinstance(text, Markup) else text


def _plain_tip(tip: Callable[[str, str, str], str]) -> Callable[[str, str, str], str]:
    """A template's tooltip macro as plain text in, plain text out."""
    return lambda day, label, value: plain(tip(day, label, value))


def _named(words: str, code: str) -> str:
    return code if words == code else f"{words} ({code})"


class ChartKit:
    """What the dashboard's template draws with: the days, in the reader's language."""

    def __init__(self, days: Sequence[date], formats: Formats) -> None:
        self.days = tuple(days)
        self.formats = formats
        self.labels = tuple(formats.short_day(day) for day in self.days)

    def series(self, key: str, label: str, values: Sequence[float | None]) -> Series:
        """One line of a chart."""
        return Series(key, plain(label), tuple(values))

    def rule_series(self, figures: DailyFigures, words: Callable[[str], str]) -> list[Series]:
        """One line per rule that refused something, named in the reader's words (a
        template macro) with its code after them, to match with the lookup and the
        ledger, which give the code alone."""
        return [
            Series(f"blocked-{rule}", _named(plain(words(rule)), rule), values)
            for rule, values in figures.blocked
        ]

    def draw(
        self,
        chart_id: str,
        title: str,
        description: str,
        series: Sequence[Series],
        y_label: str,
        x_label: str,
        rate: bool = False,
        tip: Callable[[str, str, str], str] | None = None,
    ) -> Markup:
        """The chart's SVG, ready to inline; `tip` (a macro of the template) words a
        point's tooltip in the page's language."""
        worded = english_tip if tip is None else _plain_tip(tip)
        svg = line_chart(
            chart_id=chart_id,
            title=plain(title),
            description=plain(description),
            x_labels=self.labels,
            x_keys=[day.isoformat() for day in self.days],
            series=series,
            y_label=plain(y_label),
            x_label=plain(x_label),
            y_max=1.0 if rate else None,
            y_text=self.formats.percent if rate else self.formats.number,
            tip=worded,
        )
        return Markup(svg)  # noqa: S704 - built by courtois.web.charts, every text escaped

    def text(self, value: float | None, rate: bool = False) -> str:
        """A value as the numbers' table shows it."""
        if rate:
            return self.formats.percent(value)
        return "–" if value is None else self.formats.number(value)


@router.get("/admin")
def activity(
    request: Request,
    ctx: Ctx,
    now: Now,
    start: str | None = Query(None, alias="from"),
    end: str | None = Query(None, alias="to"),
) -> Response:
    """The charts of the chosen days."""
    session = signed_in(request)
    if isinstance(session, Response):
        return session
    today = now.astimezone(UTC).date()
    try:
        first, last = choose_range(start, end, today)
    except InvalidInput as error:
        return bad_request(request, session, problem_of(error), here="activity")
    figures = daily_figures(ctx, first, last)
    kit = ChartKit(figures.days, Formats(admin_locale(request)))
    return admin_page(
        request,
        "admin_activity.html",
        session=session,
        here="activity",
        figures=figures,
        first=first,
        last=last,
        presets=[
            (size, (today - timedelta(days=size - 1)).isoformat(), today.isoformat())
            for size in PRESETS
        ],
        kit=kit,
    )
