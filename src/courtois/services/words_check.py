"""Which emails waiting to leave would be held by the words of this release and this
configuration, found before any worker holds them.

A member consents to the exact words previewed (invariant 2). A consent given since schema
0017 keeps those words, and its invitation and ticked reminder leave in them whatever the
release. Every other email is rendered again, so a release that changes the templates or
catalogues, or a configuration that changes what every email prints (the platform's name,
postal address, base URL), holds it when consented to before and not sent yet: the emails
of consents that kept no words (given before 0017, or whose written text holds a "{"), the
reminders recipients asked for, and digests (an invitation counted here as leaving alone
is rendered again if it leaves merged with another member's). The worker finds out one
email at a time, when each falls due, and then it is too late to choose the moment. This
check takes each waiting email's words as the worker would and compares them with what
its member consented to, changing nothing: run from the new release (or with the new
configuration) before switching, it says what the switch would cost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from courtois.delivery.compose import Carried, consented_hash
from courtois.delivery.consented_words import read
from courtois.domain.members import check_locale
from courtois.domain.messages import MessageKind, MessageState
from courtois.services.context import Context
from courtois.services.outgoing import carried_rows
from courtois.store.tables import messages

__all__ = ["WordsCheck", "WordsGroup", "check_words"]

# Messages read per query, in the order of their ids.
_PAGE = 500


@dataclass(frozen=True, slots=True)
class WordsGroup:
    """Emails of one kind in one language: how many wait, how many would be held."""

    kind: str
    locale: str
    waiting: int
    held: int


@dataclass(frozen=True, slots=True)
class WordsCheck:
    """What the check found: totals, the groups, and the members whose emails would be held
    (ids only: the platform may tell them; no address is read)."""

    waiting: int
    held: int
    groups: tuple[WordsGroup, ...]
    members: tuple[str, ...]


def check_words(ctx: Context) -> WordsCheck:
    """Every scheduled email, its words rendered by this release with these settings and
    hashed as the worker hashes them before sending; read-only. An email being sent right
    now (`sending`) is past the point where its words are judged, and is not counted."""
    waiting: Counter[tuple[str, str]] = Counter()
    held: Counter[tuple[str, str]] = Counter()
    members: set[str] = set()
    # Many emails share one member's words: each is rendered once.
    hashes: dict[tuple[str, str, str, int], str] = {}
    after = ""
    while True:
        with ctx.engine.connect() as connection:
            page = connection.execute(
                select(
                    messages.c.id, messages.c.invitation_id, messages.c.member_id, messages.c.kind
                )
                .where(messages.c.state == MessageState.SCHEDULED.value, messages.c.id > after)
                .order_by(messages.c.id)
                .limit(_PAGE)
            ).all()
        if not page:
            break
        after = page[-1].id
        rows = carried_rows(ctx, sorted({m.invitation_id for m in page}))
        for message in page:
            row = rows.get(message.invitation_id)
            if row is None:
                continue  # its invitation is gone since the page was read: it waits no more
            locale = check_locale(row.locale or row.member_locale)
            group = (MessageKind(message.kind).value, locale)
            waiting[group] += 1
            kind = MessageKind(message.kind)
            asked = kind is MessageKind.REMINDER and row.remind_at is not None
            kept = read(row.words)
            if kept is not None and kept.email(kind, asked, 1) is not None:
                differs = kept.preview_hash != row.preview_hash
            else:
                key = (locale, row.name, row.note, row.reminders)
                if key not in hashes:
                    carried = Carried(row.id, row.name, row.note, row.reminders)
                    hashes[key] = consented_hash(ctx.settings, locale, carried)
                differs = hashes[key] != row.preview_hash
            if differs:
                held[group] += 1
                members.add(message.member_id)
    groups = tuple(
        WordsGroup(kind, locale, count, held[(kind, locale)])
        for (kind, locale), count in sorted(waiting.items())
    )
    return WordsCheck(sum(waiting.values()), sum(held.values()), groups, tuple(sorted(members)))
