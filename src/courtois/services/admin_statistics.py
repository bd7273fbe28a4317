"""Figures per day for the admin pages: emails sent, refusals by rule, deferrals into a
digest, bounces, complaints, and the share of invitations accepted.

Each figure is one grouped query over an index on its instant (migration 0004), so a range
costs what it holds, not what the tables hold. Days are UTC days, as stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Column, Connection, Text, case, func, select, type_coerce

from courtois.domain.errors import InvalidInput
from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageState
from courtois.policy.chain import CHAIN
from courtois.policy.rules.recipient_quota import CODE as DIGEST_RULE
from courtois.policy.verdict import Outcome
from courtois.services.context import Context
from courtois.store.tables import complaints, decisions, invitations, messages

DEFAULT_DAYS = 30
MAX_DAYS = 366
RULE_ORDER = {rule.code: position for position, rule in enumerate(CHAIN)}


@dataclass(frozen=True)
class DailyFigures:
    """One value per day of `days` in each figure."""

    days: tuple[date, ...]
    # Emails that left (a digest counts once).
    sent: tuple[int, ...]
    # Messages put off to share a later email (the recipient's quota): each counts once a
    # day, however many decisions put it off that day (when asked, then before sending).
    deferred: tuple[int, ...]
    # Refusals, per rule that refused (a refusal by two rules counts for each), chain order;
    # only the rules that refused something in the range.
    blocked: tuple[tuple[str, tuple[int, ...]], ...]
    # Invitations closed as not delivered (refused for good, or reported dead later).
    bounced: tuple[int, ...]
    # Spam complaints, each charged to the member whose invitation was reported.
    complaints: tuple[int, ...]
    # Invitations sent that day, and how many of those were accepted since.
    invited: tuple[int, ...]
    accepted: tuple[int, ...]
    # The messages put off in the whole range, each once (a message put off on two days
    # counts on each day, once in all).
    deferred_total: int = 0

    @property
    def acceptance(self) -> tuple[float | None, ...]:
        """Of the invitations sent each day, the share accepted (None for a day with none)."""
        return tuple(
            accepted / invited if invited else None
            for invited, accepted in zip(self.invited, self.accepted, strict=True)
        )


YEARS = (1970, 9000)


def choose_range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """The days asked for (ISO dates, both ends included), by default the last 30 days up
    to today; InvalidInput for anything else, naming the bad field."""
    end = _day("to", last) if last else today
    start = _day("from", first) if first else end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput("The first day comes after the last.", {"from": "after to"})
    if (end - start).days + 1 > MAX_DAYS:
        raise InvalidInput(f"Choose at most {MAX_DAYS} days.", {"to": "range too long"})
    return start, end


def _day(field: str, value: str) -> date:
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("Choose a day as YYYY-MM-DD.", {field: "not a date"}) from None
    # A range is counted out day by day on either side of its ends: the calendar's first
    # and last years would step outside what a date can hold.
    if not YEARS[0] <= day.year <= YEARS[1]:
        raise InvalidInput(
            f"Choose a day between the years {YEARS[0]} and {YEARS[1]}.", {field: "out of range"}
        )
    return day


def daily_figures(ctx: Context, first: date, last: date) -> DailyFigures:
    """Every figure for each day from `first` to `last`, both included."""
    days = tuple(first + timedelta(days=n) for n in range((last - first).days + 1))
    start = datetime.combine(first, time(), UTC)
    end = datetime.combine(last + timedelta(days=1), time(), UTC)
    position = {day: index for index, day in enumerate(days)}
    with ctx.engine.connect() as connection:
        sent = _counts(
            connection,
            messages.c.sent_at,
            start,
            end,
            messages.c.state == MessageState.SENT.value,
            messages.c.carried_by.is_(None),
        )
        bounced = _counts(
            connection,
            invitations.c.updated_at,
            start,
            end,
            invitations.c.state == InvitationState.BOUNCED.value,
        )
        complained = _counts(connection, complaints.c.at, start, end)
        invited, accepted = _cohorts(connection, start, end)
        blocked = _refusals(connection, start, end, position)
        deferred, deferred_total = _deferrals(connection, start, end, position)

    def spread(found: Mapping[date, int]) -> tuple[int, ...]:
        return tuple(found.get(day, 0) for day in days)

    return DailyFigures(
        days=days,
        sent=spread(sent),
        deferred=tuple(deferred),
        blocked=tuple(
            (rule, tuple(blocked[rule]))
            for rule in sorted(blocked, key=lambda code: (RULE_ORDER.get(code, 99), code))
        ),
        bounced=spread(bounced),
        complaints=spread(complained),
        invited=spread(invited),
        accepted=spread(accepted),
        deferred_total=deferred_total,
    )


def _as_day(value: Any) -> date:
    """`date(...)` gives a date on PostgreSQL and ISO text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _counts(
    connection: Connection, column: Column[Any], start: datetime, end: datetime, *where: Any
) -> dict[date, int]:
    """Rows per day of `column` within [start, end), under extra conditions."""
    day = func.date(column)
    rows = connection.execute(
        select(day, func.count()).where(column >= start, column < end, *where).group_by(day)
    ).all()
    return {_as_day(found): int(number) for found, number in rows}


def _cohorts(
    connection: Connection, start: datetime, end: datetime
) -> tuple[dict[date, int], dict[date, int]]:
    """Invitations sent per day, and how many of those have been accepted."""
    day = func.date(invitations.c.sent_at)
    is_accepted = case((invitations.c.state == InvitationState.ACCEPTED.value, 1), else_=0)
    rows = connection.execute(
        select(day, func.count(), func.sum(is_accepted))
        .where(invitations.c.sent_at >= start, invitations.c.sent_at < end)
        .group_by(day)
    ).all()
    invited = {_as_day(found): int(number) for found, number, _ in rows}
    accepted = {_as_day(found): int(number or 0) for found, _, number in rows}
    return invited, accepted


def _refusals(
    connection: Connection, start: datetime, end: datetime, position: Mapping[date, int]
) -> dict[str, list[int]]:
    """Refusals per rule, per day. Decisions are grouped by their stored verdicts in the
    database, so a day of ten thousand identical refusals comes back as one row to read."""
    day = func.date(decisions.c.decided_at)
    rows = connection.execute(
        select(day, decisions.c.verdicts, func.count())
        .where(
            decisions.c.outcome == Outcome.DENY.value,
            decisions.c.decided_at >= start,
            decisions.c.decided_at < end,
        )
        .group_by(day, decisions.c.verdicts)
    ).all()
    blocked: dict[str, list[int]] = {}
    for found, verdicts, number in rows:
        index = position[_as_day(found)]
        for rule in _rules_saying(verdicts, Outcome.DENY):
            blocked.setdefault(rule, [0] * len(position))[index] += int(number)
    return blocked


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching itself anywhere (escaped with a backslash)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The recipient's quota putting a message off, as its verdict is stored (canonical JSON,
# `decisions.verdicts_text`): `["recipient-quota","defer",` opens it.
_QUOTA_DEFERS = _like(
    json.dumps([DIGEST_RULE, Outcome.DEFER.value], separators=(",", ":")).removesuffix("]") + ","
)


def _deferrals(
    connection: Connection, start: datetime, end: datetime, position: Mapping[date, int]
) -> tuple[list[int], int]:
    """Messages the recipient's quota put off into a digest, per day and in all, each
    message once: one is decided when asked for and again right before it leaves, and each
    decision may put it off. Counted in the database, by the message a deferral always
    names."""
    where = (
        decisions.c.outcome == Outcome.DEFER.value,
        decisions.c.decided_at >= start,
        decisions.c.decided_at < end,
        type_coerce(decisions.c.verdicts, Text).like(_QUOTA_DEFERS, escape="\\"),
    )
    day = func.date(decisions.c.decided_at)
    messages_put_off = func.count(func.distinct(decisions.c.message_id))
    deferred = [0] * len(position)
    for found, number in connection.execute(
        select(day, messages_put_off).where(*where).group_by(day)
    ):
        deferred[position[_as_day(found)]] = int(number)
    total = int(connection.execute(select(messages_put_off).where(*where)).scalar_one())
    return deferred, total


def _rules_saying(verdicts: Iterable[list[str]], outcome: Outcome) -> set[str]:
    """The rules whose stored verdict is `outcome`."""
    return {item[0] for item in verdicts if len(item) > 1 and item[1] == outcome.value}
