"""DESIGN.md's invariants, checked after a load on the database it left and on the mail the
SMTP server received.

Order is the ledger's: every change is one entry in a hash chain written under one lock, so
its sequence numbers say what happened before what, whatever clock each writer used (the
load's worker runs `--now` past the undo window). A stop (unsubscribe, join, forget,
withdrawal, revocation) holds if no message was claimed for sending after it; the claim is
committed with the send decision, under the recipient's lock, before anything leaves.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from itertools import pairwise
from typing import Any

from sqlalchemy import Engine, func, select

from courtois.config import Settings
from courtois.delivery.compose import as_previewed, tokens_in
from courtois.delivery.render import Inviter, RenderContext, preview, sections
from courtois.domain.invitations import INVITATION_MACHINE, InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageKind, MessageState
from courtois.services.audit import iter_entries, verify_ledger
from courtois.services.context import Context
from courtois.store.tables import (
    consent_recipients,
    consents,
    contacts,
    decisions,
    invitations,
    members,
    messages,
    recipients,
)

ADDRESS = re.compile(rb"[\w.+-]+@[\w-]+(\.[\w-]+)+")
LEFT = (MessageState.SENDING.value, MessageState.SENT.value, MessageState.UNKNOWN.value)
ANSWERED = {
    InvitationState.ACCEPTED.value,
    InvitationState.DECLINED.value,
    InvitationState.WITHDRAWN.value,
    InvitationState.EXPIRED.value,
    InvitationState.BLOCKED.value,
    InvitationState.BOUNCED.value,
}
# What the checks below cannot see in a database; printed with the results.
NOT_CHECKED = (
    "7 (racing calls cannot exceed a cap): seen only through the caps of 6 and 12, checked",
    "8 (a crash between SMTP accept and write leaves `unknown`): no crash is caused here",
    "11 (a member sees 'unavailable', never why): wording of answers, not stored",
    "12 (pause and stop on complaints): the capture server makes no complaint",
    "3 ('remind me later' asked by the recipient): no recipient asks for it here",
    "4 (no login, cookie or JavaScript): the load's one-click POSTs carry none, by design",
)


@dataclass
class Check:
    """One invariant, held or not, with how many things were looked at."""

    invariant: str
    name: str
    checked: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, problem: str) -> None:
        self.problems.append(problem)


@dataclass
class ClientFacts:
    """What the load's clients saw, which the database is compared with."""

    # Idempotency keys whose invite was answered 201, and repeats answered differently.
    invite_keys: set[str] = field(default_factory=set)
    repeats: int = 0
    repeats_differing: int = 0
    server_errors: Counter[str] = field(default_factory=Counter)
    logs: bytes = b""


@dataclass
class Ledger:
    """The ledger read once: the first sequence number of each stop, and every claim."""

    claims: dict[str, int] = field(default_factory=dict)  # message -> seq of `sending`
    send_allows: list[tuple[int, str, str]] = field(default_factory=list)  # seq, digest, member
    stopped: dict[str, tuple[int, str]] = field(default_factory=dict)  # digest -> seq, why
    blocked: dict[tuple[str, str], int] = field(default_factory=dict)  # (digest, member) -> seq
    revoked: dict[str, int] = field(default_factory=dict)  # consent -> seq
    closed: dict[str, tuple[int, str]] = field(default_factory=dict)  # invitation -> seq, state
    decisions: int = 0
    entries: int = 0
    with_address: int = 0


def read_ledger(engine: Engine) -> Ledger:
    found = Ledger()
    stops = {
        EventType.JOINED.value: "joined",
        EventType.FORGOTTEN.value: "forgotten",
        EventType.SUPPRESSED.value: "suppressed",
    }
    for entry in iter_entries(engine):
        found.entries += 1
        event, payload, seq = entry.event, entry.payload, entry.seq
        if ADDRESS.search(repr(dict(payload)).encode()):
            found.with_address += 1
        if event == EventType.MESSAGE_STATE.value:
            if payload["to"] == MessageState.SENDING.value:
                found.claims.setdefault(payload["message"], seq)
        elif event == EventType.DECISION.value:
            found.decisions += 1
            if payload["stage"] == "send" and payload["outcome"] == "allow":
                found.send_allows.append((seq, payload["recipient"], payload["member"]))
        elif event == EventType.UNSUBSCRIBED.value:
            if payload["from"] == "everyone":
                found.stopped.setdefault(payload["recipient"], (seq, "unsubscribed"))
            else:
                found.blocked.setdefault((payload["recipient"], payload["from"]), seq)
        elif event in stops:
            found.stopped.setdefault(payload["recipient"], (seq, stops[event]))
        elif event == EventType.CONSENT_REVOKED.value:
            found.revoked.setdefault(payload["consent"], seq)
        elif event == EventType.INVITATION_STATE.value and payload["to"] in ANSWERED:
            found.closed.setdefault(payload["invitation"], (seq, payload["to"]))
    return found


def check_all(
    ctx: Context,
    received: Sequence[bytes],
    client: ClientFacts,
    last_pass: datetime,
    earlier: Sequence[Check] = (),
) -> list[Check]:
    """Every invariant that the database and the received mail can show."""
    engine = ctx.engine
    ledger = read_ledger(engine)
    with engine.connect() as connection:
        sent = connection.execute(
            select(
                messages,
                invitations.c.consent_id,
                invitations.c.member_id.label("invitation_member"),
                invitations.c.state.label("invitation_state"),
                invitations.c.locale,
                invitations.c.remind_at,
                consents.c.member_id.label("consent_member"),
                consents.c.kind.label("consent_kind"),
                consents.c.reminders,
                consents.c.given_at,
                consents.c.revoked_at,
                consents.c.preview_hash,
                consents.c.note,
                members.c.name.label("member_name"),
            )
            .join(invitations, invitations.c.id == messages.c.invitation_id)
            .join(consents, consents.c.id == invitations.c.consent_id)
            .join(members, members.c.id == consents.c.member_id)
        ).all()
        named = {
            (r.consent_id, r.recipient_digest)
            for r in connection.execute(select(consent_recipients))
        }
        invitation_rows = connection.execute(select(invitations)).all()
        recipient_rows = connection.execute(select(recipients)).all()
        contact_rows = connection.execute(
            select(contacts.c.recipient_digest, contacts.c.selected, contacts.c.imported_at)
        ).all()
        decision_rows = connection.execute(select(func.count()).select_from(decisions)).scalar()
        consent_count = connection.execute(select(func.count()).select_from(consents)).scalar()
    by_id = {row.id: row for row in sent}
    policy = ctx.settings.policy
    return [
        *earlier,
        _ledger_holds(engine, ledger, int(decision_rows or 0)),
        _consent_covers(sent, named, ledger, policy.undo_window),
        _shown_is_sent(ctx.settings, received, by_id),
        _never_twice(received, sent, client, int(consent_count or 0)),
        _silence(sent, ledger, policy.reminder_cap, policy.reminder_interval),
        _recipients_stop(sent, ledger, recipient_rows, invitation_rows),
        _members_stop(sent, ledger),
        _inbox_protected(sent, policy.short_window, policy.long_window),
        _sender_caps(sent, policy.sender_daily_cap, policy.sender_weekly_cap),
        _one_visible_state(sent, invitation_rows, client),
        _compare_and_forget(
            ledger,
            invitation_rows,
            recipient_rows,
            contact_rows,
            client.logs,
            last_pass - timedelta(hours=policy.unselected_contact_hours),
        ),
    ]


def _ledger_holds(engine: Engine, ledger: Ledger, decision_rows: int) -> Check:
    check = Check("11", "the ledger's hash chain verifies; every decision is in it", ledger.entries)
    report = verify_ledger(engine)
    if not report.ok:
        check.fail(f"broken at entry {report.first_broken_seq}: {report.problem}")
    if ledger.decisions != decision_rows:
        check.fail(f"{decision_rows} decision rows, {ledger.decisions} decision entries")
    return check


def _consent_covers(
    sent: Sequence[Any], named: set[tuple[str, str]], ledger: Ledger, undo: timedelta
) -> Check:
    left = [m for m in sent if m.state in LEFT]
    check = Check(
        "1, 5", "every message that left: its member's consent, naming that recipient, "
        "past the undo window", len(left)
    )  # fmt: skip
    for m in left:
        if m.consent_member != m.member_id or m.invitation_member != m.member_id:
            check.fail(f"message {m.id}: consent of {m.consent_member}, sent for {m.member_id}")
        if (m.consent_id, m.recipient_digest) not in named:
            check.fail(f"message {m.id}: its consent does not name its recipient")
        if m.consent_kind != MessageKind.INVITATION.value:
            check.fail(f"message {m.id}: consent of kind {m.consent_kind}")
        if m.sent_at is not None and m.sent_at < m.given_at + undo:
            check.fail(f"message {m.id}: sent {m.sent_at - m.given_at} after the consent")
        if m.id not in ledger.claims:
            check.fail(f"message {m.id} left with no claim in the ledger")
    return check


def contacts_start_unselected(engine: Engine) -> Check:
    """Read right after the load, before the last passes purge what nobody selected."""
    with engine.connect() as connection:
        rows = connection.execute(select(contacts.c.selected)).all()
    check = Check("1", "imported contacts start unselected", len(rows))
    picked = sum(1 for r in rows if r.selected)
    if picked:
        check.fail(f"{picked} contacts selected though nobody selected any")
    return check


def _shown_is_sent(settings: Settings, received: Sequence[bytes], by_id: dict[str, Any]) -> Check:
    """Each email, its tokens put back as placeholders, is what the member previewed, and
    the preview hashes to what the consent pinned; a digest holds each member's part as
    that member previewed it."""
    check = Check("2", "every email received is what its members previewed (hash pinned)", 0)
    carried: dict[str, list[Any]] = defaultdict(list)
    for row in by_id.values():
        if row.carried_by:
            carried[row.carried_by].append(row)
    for raw in received:
        check.checked += 1
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        message_id = str(parsed["Message-ID"]).strip("<>").partition("@")[0]
        carrier = by_id.get(message_id)
        if carrier is None:
            check.fail(f"email {message_id}: no such message")
            continue
        try:
            shown = as_previewed(parsed, tokens_in(parsed, settings))
        except ValueError as error:
            check.fail(f"email {message_id}: {error}")
            continue
        rows = [carrier, *carried.get(carrier.id, [])]
        for row in rows:
            context = RenderContext.from_settings(
                settings, (Inviter(row.member_name, row.note, row.reminders),)
            )
            previewed = preview(row.locale, context)
            if previewed.preview_hash != row.preview_hash:
                check.fail(f"email {message_id}: consent {row.consent_id} pins another preview")
            if carrier.kind == MessageKind.INVITATION.value:
                if shown != previewed.message:
                    check.fail(f"email {message_id}: differs from the invitation previewed")
            elif carrier.kind == MessageKind.REMINDER.value:
                if shown not in previewed.follow_ups:
                    check.fail(f"email {message_id}: differs from the reminder previewed")
            else:
                (part,) = sections(row.locale, context)
                if part.text not in shown.text:
                    check.fail(f"digest {message_id}: {row.member_name}'s part differs")
    return check


def _never_twice(
    received: Sequence[bytes], sent: Sequence[Any], client: ClientFacts, consent_count: int
) -> Check:
    emails = {m.id for m in sent if m.state == MessageState.SENT.value and not m.carried_by}
    check = Check("8", "each message received once; repeated calls create nothing twice", 0)
    ids = Counter(
        str(email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"])
        .strip("<>")
        .partition("@")[0]
        for raw in received
    )
    check.checked = len(ids) + client.repeats
    twice = [i for i, n in ids.items() if n > 1]
    if twice:
        check.fail(f"{len(twice)} messages received more than once, e.g. {twice[0]}")
    if set(ids) != emails:
        check.fail(
            f"{len(emails)} emails recorded sent, {len(ids)} received; "
            f"{len(emails - set(ids))} sent but not received, "
            f"{len(set(ids) - emails)} received but not recorded sent"
        )
    if client.repeats_differing:
        check.fail(f"{client.repeats_differing} of {client.repeats} repeats answered differently")
    if consent_count != len(client.invite_keys):
        check.fail(f"{len(client.invite_keys)} invites answered 201, {consent_count} consents")
    return check


def _silence(sent: Sequence[Any], ledger: Ledger, cap: int, interval: timedelta) -> Check:
    """Per invitation, the emails that left in order: the first, then at most the reminders
    its consent ticked (a reminder may travel as a digest's carrier, so kinds are not
    trusted here), each at least the interval after the one before."""
    left: dict[str, list[Any]] = defaultdict(list)
    for m in sent:
        if m.state in LEFT:
            left[m.invitation_id].append(m)
    check = Check("3", "reminders only if ticked, at most the cap, 14 days on, unanswered", 0)
    for invitation, emails in left.items():
        emails.sort(key=lambda m: (m.sent_at is None, m.sent_at))
        for earlier, later in pairwise(emails):
            check.checked += 1
            if later.reminders < 1 and later.remind_at is None:
                check.fail(f"reminder {later.id}: its consent ticked no reminder")
            if earlier.sent_at is None or later.sent_at is None:
                check.fail(f"invitation {invitation}: a second email after one in doubt")
            elif later.sent_at - earlier.sent_at < interval:
                check.fail(f"reminder {later.id}: {later.sent_at - earlier.sent_at} after")
        if len(emails) > 1 + cap:
            check.fail(f"invitation {invitation}: {len(emails)} emails, reminder cap {cap}")
    return check


def _recipients_stop(
    sent: Sequence[Any],
    ledger: Ledger,
    recipient_rows: Sequence[Any],
    invitation_rows: Sequence[Any],
) -> Check:
    check = Check(
        "4, 7", "nothing claimed after an unsubscribe, join, forget or block; never lifted",
        len(ledger.stopped) + len(ledger.blocked),
    )  # fmt: skip
    for m in sent:
        claim = ledger.claims.get(m.id)
        if claim is None:
            continue
        stop = ledger.stopped.get(m.recipient_digest)
        if stop is not None and stop[0] < claim:
            check.fail(f"message {m.id} claimed (entry {claim}) after {stop[1]} ({stop[0]})")
        block = ledger.blocked.get((m.recipient_digest, m.member_id))
        if block is not None and block < claim:
            check.fail(f"message {m.id} claimed after its member was blocked")
    for seq, digest, member in ledger.send_allows:
        stop = ledger.stopped.get(digest)
        if stop is not None and stop[0] < seq:
            check.fail(f"send allowed (entry {seq}) after {stop[1]} ({stop[0]})")
        block = ledger.blocked.get((digest, member))
        if block is not None and block < seq:
            check.fail(f"send allowed (entry {seq}) after a block ({block})")
    stored = {r.digest: r for r in recipient_rows}
    for digest, (_, why) in ledger.stopped.items():
        row = stored.get(digest)
        if why == "unsubscribed" and (row is None or row.unsubscribed_at is None):
            check.fail("an unsubscribe was lifted")
        if why == "joined" and (row is None or row.joined_at is None):
            check.fail("a join was lifted")
    waiting = [
        m.id
        for m in sent
        if m.state == MessageState.SCHEDULED.value
        and m.recipient_digest in ledger.stopped
        and ledger.stopped[m.recipient_digest][1] != "joined"
    ]
    if waiting:
        check.fail(f"{len(waiting)} messages still scheduled to stopped recipients")
    open_invites = [
        r.id
        for r in invitation_rows
        if r.recipient_digest in ledger.stopped and r.state == InvitationState.SCHEDULED.value
    ]
    if open_invites:
        check.fail(f"{len(open_invites)} invitations still scheduled to stopped recipients")
    return check


def _members_stop(sent: Sequence[Any], ledger: Ledger) -> Check:
    check = Check(
        "5, 7", "nothing claimed after a withdrawal, revocation, answer or expiry",
        len(ledger.revoked) + len(ledger.closed),
    )  # fmt: skip
    for m in sent:
        claim = ledger.claims.get(m.id)
        revoked = ledger.revoked.get(m.consent_id)
        if claim is not None and revoked is not None and revoked < claim:
            check.fail(f"message {m.id} claimed after its consent was revoked")
        closed = ledger.closed.get(m.invitation_id)
        if claim is not None and closed is not None and closed[0] < claim:
            check.fail(f"message {m.id} claimed after its invitation was {closed[1]}")
        if m.state == MessageState.SCHEDULED.value and (
            m.revoked_at is not None or m.consent_id in ledger.revoked
        ):
            check.fail(f"message {m.id} still scheduled under a revoked consent")
    return check


def _inbox_protected(sent: Sequence[Any], short: timedelta, long: timedelta) -> Check:
    times: dict[str, list[datetime]] = defaultdict(list)
    for m in sent:
        if m.state == MessageState.SENT.value and not m.carried_by and m.sent_at is not None:
            times[m.recipient_digest].append(m.sent_at)
    check = Check("6", "per recipient: one email per 14 days, two per 90 days", len(times))
    for digest, moments in times.items():
        moments.sort()
        for earlier, later in pairwise(moments):
            if later - earlier < short:
                check.fail(f"{digest[:12]}: two emails {later - earlier} apart")
        for first, third in zip(moments, moments[2:], strict=False):
            if third - first < long:
                check.fail(f"{digest[:12]}: three emails within {third - first}")
    return check


def _sender_caps(sent: Sequence[Any], daily: int, weekly: int) -> Check:
    created: dict[str, list[datetime]] = defaultdict(list)
    for m in sent:
        if m.kind != MessageKind.REMINDER.value and m.state in LEFT:
            created[m.member_id].append(m.created_at)
    check = Check("12", f"per member: at most {daily} a day, {weekly} a week", len(created))
    for member, moments in created.items():
        moments.sort()
        for window, cap in ((timedelta(days=1), daily), (timedelta(days=7), weekly)):
            start = 0
            for end, moment in enumerate(moments):
                while moment - moments[start] >= window:
                    start += 1
                if end - start + 1 > cap:
                    check.fail(f"{member}: {end - start + 1} emails within {window}")
                    break
    return check


def _one_visible_state(
    sent: Sequence[Any], invitation_rows: Sequence[Any], client: ClientFacts
) -> Check:
    check = Check(
        "9", "each message in one known state, none in doubt; no server error",
        len(sent) + len(invitation_rows),
    )  # fmt: skip
    known = {s.value for s in MessageState}
    states = Counter(m.state for m in sent)
    for state in set(states) - known:
        check.fail(f"{states[state]} messages in unknown state {state!r}")
    for state in (MessageState.SENDING.value, MessageState.UNKNOWN.value):
        if states[state]:
            check.fail(f"{states[state]} messages left {state}")
    for m in sent:
        final = INVITATION_MACHINE.is_final(InvitationState(m.invitation_state))
        if m.state == MessageState.SCHEDULED.value and final:
            check.fail(f"message {m.id} scheduled for a {m.invitation_state} invitation")
    for row in invitation_rows:
        InvitationState(row.state)
    for operation, count in client.server_errors.items():
        check.fail(f"{count} server errors (5xx) on {operation}")
    return check


def _compare_and_forget(
    ledger: Ledger,
    invitation_rows: Sequence[Any],
    recipient_rows: Sequence[Any],
    contact_rows: Sequence[Any],
    logs: bytes,
    purge_before: datetime,
) -> Check:
    check = Check(
        "10", "no address kept when closed or stopped, none in the ledger or the logs; "
        "contacts purged within a day, picked or not",
        len(invitation_rows) + ledger.entries,
    )  # fmt: skip
    gone = {d for d, (_, why) in ledger.stopped.items() if why != "joined"}
    gone |= {r.digest for r in recipient_rows if r.unsubscribed_at or r.forgotten_at}
    kept = [
        r.id
        for r in invitation_rows
        if r.address is not None
        and (r.recipient_digest in gone or INVITATION_MACHINE.is_final(InvitationState(r.state)))
    ]
    if kept:
        check.fail(f"{len(kept)} closed or stopped invitations still hold an address")
    lingering = [r for r in contact_rows if r.recipient_digest in gone]
    if lingering:
        check.fail(f"{len(lingering)} contacts of stopped recipients remain")
    stale = [r for r in contact_rows if r.imported_at < purge_before]
    if stale:
        check.fail(f"{len(stale)} contacts older than a day remain")
    if ledger.with_address:
        check.fail(f"{ledger.with_address} ledger entries hold an address")
    found = ADDRESS.search(logs)
    if found:
        check.fail(f"an address in the logs: {found.group()[:3].decode(errors='replace')}...")
    return check


def report(checks: Iterable[Check]) -> bool:
    """Print every check; True when all hold."""
    ok = True
    for check in checks:
        ok = ok and check.ok
        verdict = "ok" if check.ok else "FAILED"
        print(f"  [{verdict:>6}] {check.invariant:<5} {check.name} ({check.checked:,} checked)")
        for problem in check.problems[:5]:
            print(f"           {problem}")
        if len(check.problems) > 5:
            print(f"           ... and {len(check.problems) - 5} more")
    print("  not checkable here:")
    for line in NOT_CHECKED:
        print(f"    {line}")
    return ok
