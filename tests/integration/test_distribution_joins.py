"""No statement the services run joins tables of the two distributions (docs/scaling.md).

Every statement run while the use cases and read models work on a small platform (invite,
send, remind, withdraw, revoke, the recipient's pages and choices, a member's lists and
export, the admin views) is recorded as SQLAlchemy built it and held to the rules in
`distribution_joins`: one statement names tables of one distribution only, and two tables
of the same one are joined through their distribution columns. The joins the read models
used to run are kept here as references: the check flags each of them, and the lookups by
key that replaced them must give the same rows in the same order, page for page.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from distribution_joins import join_problems, tables_named
from pages_site import deliver
from sqlalchemy import BindParameter, Connection, event, func, select, text
from sqlalchemy.sql.elements import ClauseElement
from support import T0, add_members, send_invites
from test_query_plans import EXPLAINABLE, run_scenario, unserved

from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.services.admin_lookup import look_up_recipient
from courtois.services.admin_statistics import daily_figures
from courtois.services.admin_unknown import unknown_messages
from courtois.services.contacts import import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.explain import explain
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.listings import (
    consent_detail,
    contacts_page,
    invitation_detail,
    invitations_page,
)
from courtois.services.member_export import export_member
from courtois.services.member_overview import consents_overview, invitations_overview
from courtois.services.members import register_member
from courtois.services.recipient_actions import (
    Link,
    decline,
    forget_me,
    inviting_member,
    resolve_link,
    stop_member,
)
from courtois.services.recipient_view import what_is_held
from courtois.services.worker import run_pass
from courtois.store.tables import (
    consent_recipients,
    consents,
    invitations,
    members,
    messages,
    recipient_blocks,
    recipients,
)
from courtois.tokens import Scope

DAY = timedelta(days=1)
# After `run_scenario`'s last worker pass, so this part's history starts on a quiet platform.
LATER = T0 + timedelta(days=121)
# Each statement run with its parameters, what it would cross on Citus, the tables it names.
Recorded = list[tuple[str, Any, list[str], set[str]]]


# The joins across the distributions the read models ran before they read by key.
def old_why_rows(digest: str) -> Any:
    """The /why page's invitations with their member's name and consent time."""
    return (
        select(
            invitations.c.id,
            invitations.c.sent_at,
            invitations.c.state,
            members.c.name,
            consents.c.given_at,
        )
        .join(members, members.c.id == invitations.c.member_id)
        .join(consents, consents.c.id == invitations.c.consent_id)
        .where(invitations.c.recipient_digest == digest)
        .order_by(invitations.c.created_at.desc(), invitations.c.id)
    )


def old_overview_rows(member_id: str) -> Any:
    """A member's invitations, newest first, with when each one's consent was given."""
    return (
        select(invitations.c.id, invitations.c.created_at, consents.c.given_at)
        .join(consents, consents.c.id == invitations.c.consent_id)
        .where(invitations.c.member_id == member_id)
        .order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
    )


def old_named_counts(member_id: str) -> Any:
    """How many people each of a member's consents names."""
    return (
        select(consent_recipients.c.consent_id, func.count())
        .join(consents, consents.c.id == consent_recipients.c.consent_id)
        .where(consents.c.member_id == member_id)
        .group_by(consent_recipients.c.consent_id)
    )


def test_the_check_flags_each_kind_of_join_across_shards() -> None:
    digest = "d" * 64
    assert join_problems(old_why_rows(digest)) == [
        "joins invitations (by recipient) with consents (by member)",
        "joins invitations (by recipient) with members (by member)",
        "joins consents and members (by member) not through the distribution column",
    ]
    assert join_problems(old_overview_rows("ana")) == [
        "joins invitations (by recipient) with consents (by member)"
    ]
    assert join_problems(old_named_counts("ana")) == [
        "joins consent_recipients (by recipient) with consents (by member)"
    ]
    # Implicit (FROM a, b) and subquery joins count as much as JOIN does.
    implicit = select(invitations.c.id, members.c.name).where(
        invitations.c.member_id == members.c.id
    )
    assert join_problems(implicit) == ["joins invitations (by recipient) with members (by member)"]
    nested = select(invitations.c.id).where(
        invitations.c.consent_id.in_(select(consents.c.id).where(consents.c.member_id == "ana"))
    )
    assert join_problems(nested) == ["joins invitations (by recipient) with consents (by member)"]
    # Same distribution: through the id alone is not co-located; through the digest too is.
    by_id = select(messages.c.id).join(invitations, invitations.c.id == messages.c.invitation_id)
    assert join_problems(by_id) == [
        "joins invitations and messages (by recipient) not through the distribution column"
    ]
    co_located = select(messages.c.id, invitations.c.locale).join(
        invitations,
        (invitations.c.recipient_digest == messages.c.recipient_digest)
        & (invitations.c.id == messages.c.invitation_id),
    )
    assert join_problems(co_located) == []
    assert join_problems(select(consents).where(consents.c.member_id == "ana")) == []

    # Held to the same digest, both tables are on one shard; to different ones, they are not.
    def one_inbox(other: str) -> Any:
        return select(recipients.c.digest).where(
            recipients.c.digest == digest,
            recipients.c.digest.in_(
                select(recipient_blocks.c.recipient_digest).where(
                    recipient_blocks.c.recipient_digest == other
                )
            ),
        )

    assert join_problems(one_inbox(digest)) == []
    assert join_problems(one_inbox("e" * 64)) == [
        "joins recipient_blocks and recipients (by recipient) not through the distribution column"
    ]
    assert join_problems(text("SELECT 1 FROM invitations JOIN consents ON true")) == [
        "names consents and invitations in hand-written SQL"
    ]
    assert join_problems("INSERT INTO recipients (digest) SELECT unnest(:d)") == []


@pytest.fixture
def recorded(ctx: Context) -> Iterator[Recorded]:
    """Every statement run on the context's engine while the test runs, judged as it runs
    (its parameters' values are known only then)."""
    seen: Recorded = []

    def record(_conn, _cursor, statement, parameters, context, _executemany):  # type: ignore[no-untyped-def]
        compiled = context.compiled if context is not None else None
        if compiled is None:
            seen.append((statement, parameters, join_problems(statement), set()))
            return
        values = context.compiled_parameters[0] if context.compiled_parameters else {}

        def value_of(bind: BindParameter[Any]) -> Any:
            return values.get(compiled.bind_names.get(bind))

        built = compiled.statement
        named = tables_named(built) if isinstance(built, ClauseElement) else set()
        seen.append((statement, parameters, join_problems(built, value_of), named))

    event.listen(ctx.engine, "before_cursor_execute", record)
    yield seen
    event.remove(ctx.engine, "before_cursor_execute", record)


def test_no_statement_joins_the_two_distributions(ctx: Context, recorded: Recorded) -> None:
    run_scenario(ctx)
    links = _recipients_history(ctx)
    for link in links:
        what_is_held(ctx, link, LATER + DAY)
        inviting_member(ctx, link, None)
    stop_member(ctx, links[0], LATER + DAY)
    decline(ctx, links[1], LATER + DAY)
    forget_me(ctx, links[2], LATER + DAY)
    _member_reads(ctx, "ana")
    _member_reads(ctx, "bruno")
    explain(ctx, "ana", "r1@example.net", LATER + DAY)
    for person in ("r0@example.net", "r4@example.net", "nobody@example.net"):
        look_up_recipient(ctx, person)
    daily_figures(ctx, T0.date(), (LATER + DAY).date())
    unknown_messages(ctx)

    flagged = {" ".join(sql.split()): found for sql, _values, found, _named in recorded if found}
    assert {sql[:300]: flagged[sql] for sql in flagged} == {}
    read = set().union(*(named for *_rest, named in recorded))
    assert {"invitations", "consents", "members", "consent_recipients"} <= read
    assert len({sql for sql, *_rest in recorded}) > 100  # the services really ran


def _recipients_history(ctx: Context) -> list[Link]:
    """Ana then Bruno invite overlapping people (some twice at the same instant), the
    worker sends; each recipient's /why link, resolved as the page resolves it."""
    people = [f"r{i}@example.net" for i in range(8)]
    import_contacts(ctx, "ana", [ContactInput(p) for p in people], "csv", LATER)
    select_contacts(ctx, "ana", people[:4], LATER)
    send_invites(ctx, "ana", people[:5], LATER, reminders=1, note="hello")
    send_invites(ctx, "bruno", people[2:7], LATER)
    send_invites(ctx, "ana", people[5:8], LATER)
    mails = deliver(ctx, LATER + timedelta(minutes=11))
    assert len(mails) >= 5
    run_pass(ctx, LATER + timedelta(days=15), MemoryTransport())
    return [resolve_link(ctx, Scope.WHY, mail.tokens.why) for mail in mails]


def _member_reads(ctx: Context, member_id: str) -> None:
    """Every page a member or the host API reads, paged two at a time to the end."""
    now = LATER + DAY
    before: tuple[datetime, str] | None = None
    while True:
        lines = invitations_overview(ctx, member_id, before, 2)
        if lines.after is None:
            break
        before = lines.after
    consents_overview(ctx, member_id, None, 2)
    contacts_page(ctx, member_id, None, 3)
    page = invitations_page(ctx, member_id, None, 2, states=("sent", "scheduled"))
    for item in page.items:
        invitation_detail(ctx, item["id"])
        consent_detail(ctx, item["consent_id"])
    exported = export_member(ctx, member_id, now)
    still_open = [i["id"] for i in exported["invitations"] if i["status"] in ("scheduled", "sent")]
    withdraw(ctx, still_open[0], now, member_id)
    given = [c["id"] for c in exported["consents"] if c["revoked_at"] is None]
    revoke_consent(ctx, given[-1], now, member_id)


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_read_models_run_on_indexes(ctx: Context, recorded: Recorded) -> None:
    """As in test_query_plans: with sequential scans priced out, no plan scans a table."""
    run_scenario(ctx)
    links = _recipients_history(ctx)
    recorded.clear()
    for link in links:
        what_is_held(ctx, link, LATER + DAY)
    _member_reads(ctx, "ana")
    distinct = {
        sql: values
        for sql, values, *_rest in recorded
        if EXPLAINABLE.match(sql) and not isinstance(values, list)  # one run, not many
    }
    assert any(s.startswith("SELECT consents.id, consents.given_at") for s in distinct)
    assert unserved(ctx, distinct) == {}


# Same rows, same order: the lookups by key against the joins they replaced.


def test_the_why_page_lists_what_the_join_listed(ctx: Context) -> None:
    add_members(ctx)
    bo = "bo@example.net"
    send_invites(ctx, "ana", [bo, "cy@example.net"], T0, note="first")
    register_member(ctx, "cleo", "cleo@example.com", "Cleo", "en", T0)
    send_invites(ctx, "bruno", [bo], T0)  # the same instant: ordered by id
    send_invites(ctx, "cleo", [bo], T0 + timedelta(minutes=3))
    mails = deliver(ctx, T0 + timedelta(minutes=14))
    digest = ctx.digest_email(bo)
    links = [resolve_link(ctx, Scope.WHY, m.tokens.why) for m in mails]
    (link,) = [link for link in links if link.digest == digest]
    held = what_is_held(ctx, link, T0 + DAY)
    with ctx.engine.connect() as connection:
        expected = [
            (r.id, r.name, r.given_at, r.sent_at, r.state)
            for r in connection.execute(old_why_rows(digest))
            if r.sent_at is not None or r.id == link.invitation_id
        ]
    shown = [
        (i.invitation_id, i.member_name, i.consented_at, i.sent_at, i.state.value)
        for i in held.invitations
    ]
    assert len(expected) == 3
    assert shown == expected
    assert {name for _id, name, *_rest in shown} == {"Ana", "Bruno", "Cleo"}


def test_the_dashboard_pages_as_the_join_paged(ctx: Context) -> None:
    add_members(ctx)
    people = [f"p{i}@example.net" for i in range(7)]
    # One consent's invitations share their instant, so ties are broken by id.
    send_invites(ctx, "ana", people[:4], T0)
    send_invites(ctx, "ana", people[4:], T0 + timedelta(minutes=1))
    send_invites(ctx, "bruno", people[:2], T0)
    window = ctx.settings.policy.undo_window
    with ctx.engine.connect() as connection:
        expected: list[tuple[str, datetime | None]] = [
            (r.id, r.given_at + window) for r in connection.execute(old_overview_rows("ana"))
        ]
    assert len(expected) == 7
    for limit in (1, 2, 3, 7, 8):
        shown: list[tuple[str, datetime | None]] = []
        before: tuple[datetime, str] | None = None
        for _ in range(10):
            lines = invitations_overview(ctx, "ana", before, limit)
            assert len(lines.items) == limit or lines.after is None  # only the last is short
            shown += [(line.id, line.undo_ends) for line in lines.items]
            before = lines.after
            if before is None:
                break
        assert shown == expected, limit


def test_the_export_counts_whom_each_consent_names_as_the_join_counted(ctx: Context) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", ["a@example.net", "b@example.net", "c@example.net"], T0)
    send_invites(ctx, "ana", ["d@example.net"], T0 + timedelta(minutes=1))
    send_invites(ctx, "bruno", ["a@example.net", "e@example.net"], T0)
    with ctx.engine.connect() as connection:
        expected = _counts(connection, "ana")
    exported = export_member(ctx, "ana", T0 + DAY)
    assert {c["id"]: c["recipients"] for c in exported["consents"]} == expected
    assert sorted(expected.values()) == [1, 3]


def _counts(connection: Connection, member_id: str) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in connection.execute(old_named_counts(member_id))}
