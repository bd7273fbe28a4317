"""rebuild_rows: after a restore, the consents, invitations and emails made since the
backup exist again, without an address.

The links in an email that left after the backup name its invitation (`tokens`), so
without its row they answer as a forged link would: the recipient could not unsubscribe
from it (RFC 8058), see why they got it, or accept. Without the rows the member could also
invite the same person again at once, past the "already invited" rule and the quotas, and
a recipient's acceptance could not land. So `reapply-stops` first writes, from the export
(`ledger_rows`), each row the restored database lacks, as the services would have left it
when the file ends, then applies the stops onto them.

What the ledger does not hold is not made up (invariant 10: it keeps digests, never
addresses):
- an invitation has no address, as a closed one keeps none; it is in its member's language
  (`previews.consent_language`), the one an invitation is written in when none is asked for;
- a consent rebuilt from its entry keeps its member, recipients, kind (an invitation), the
  hash of what was previewed and the reminders ticked; its note, the sentence shown, and
  where it was given from are empty, since only the lost database held them;
- an email's state is its last in the file. One handed to the mail server with no outcome
  is `unknown` (never sent twice, invariant 8). One never handed over, or put back after a
  refusal (which proves nothing left), cannot leave any more: it has no address to go to
  (and its consent no note to be written with), so it is cancelled, and its invitation, if
  that was its first email, blocked: nothing reached the recipient, so the member may
  invite them again. A reminder the file never mentions (scheduled, not yet decided on)
  is not made up: silence means stop (invariant 3);
- the member's record of each invitation that counts (`sender_activity`) is written with
  it, so the sender caps count them again.

The rows of a member the database does not know (registered after the backup) are not
written, and counted as such: a member's row holds their address and name, which the
ledger does not. The entries of the file that made each rebuilt row are recorded again,
as of the run, as the stops are: the restored ledger then explains every row it holds.
A row the database already holds is left as it is, so a second run writes nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import Connection, Table, select

from courtois.domain.errors import InvalidInput
from courtois.domain.invitations import InvitationState
from courtois.domain.ledger import EventType
from courtois.domain.members import SUPPORTED_LOCALES, check_locale
from courtois.domain.messages import (
    LEFT_AFTER_BACKUP,
    REBUILT_UNSENT,
    MessageKind,
    MessageState,
)
from courtois.services import sender_activity as activity
from courtois.services.context import Context
from courtois.services.ledger_rows import (
    ConsentSeen,
    InvitationSeen,
    MessageSeen,
    RowsRead,
    is_stop_move,
)
from courtois.services.locks import lock_member, lock_recipients
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.bulk import insert_rows
from courtois.store.tables import consent_recipients, consents, invitations, members, messages

_CHUNK = 500


def rebuild_rows(ctx: Context, read: RowsRead, now: datetime) -> dict[str, int]:
    """Write the rows the export shows made after the backup that this database lacks, as
    of `now`, in one transaction; how many of each were written, and how many were left
    out for a member this database does not know."""
    counts = {"consents": 0, "invitations": 0, "messages": 0, "member_unknown": 0}
    named = {c.member for c in read.consents.values()} | {
        i.member for i in read.invitations.values()
    }
    named |= {m.member for m in read.messages.values()}
    if not named:
        return counts
    with ctx.unit_of_work(now) as uow:
        known = {
            member for member in sorted(named) if lock_member(uow.conn, member, erased_too=True)
        }
        locales = _locales(uow.conn, known)
        plan = _Plan(uow.conn, read, known)
        counts["member_unknown"] = plan.unknown
        if not (plan.consents or plan.invitations or plan.messages):
            return counts
        digests = {d for c in plan.consents for d in c.recipients}
        digests |= {i.digest for i in plan.invitations} | {m.digest for m in plan.messages}
        lock_recipients(uow.conn, digests)
        _write_consents(uow, plan.consents, locales)
        _write_invitations(uow, ctx, plan, read, locales)
        _write_messages(uow, plan.messages, read.carriers())
        _record(uow, read, plan)
        uow.commit()
    counts.update(
        consents=len(plan.consents),
        invitations=len(plan.invitations),
        messages=len(plan.messages),
    )
    return counts


def _locales(connection: Connection, known: Collection[str]) -> dict[str, str]:
    """Each known member's language, as an invitation written for them is."""
    rows = connection.execute(
        select(members.c.id, members.c.locale).where(members.c.id.in_(sorted(known)))
    ).all()
    found = {}
    for row in rows:
        try:
            found[row.id] = check_locale(row.locale or "")
        except InvalidInput:
            found[row.id] = SUPPORTED_LOCALES[0]
    return found


def _held(connection: Connection, table: Table, ids: Collection[str]) -> set[str]:
    ordered = sorted(ids)
    held: set[str] = set()
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        held.update(connection.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
    return held


class _Plan:
    """Which rows to write: those the database lacks, of members it knows, each with what
    it hangs on (an invitation its consent, an email its invitation)."""

    def __init__(self, connection: Connection, read: RowsRead, known: Collection[str]) -> None:
        self.unknown = 0
        held_consents = _held(connection, consents, read.consents)
        wanted_invitations = set(read.invitations) | {m.invitation for m in read.messages.values()}
        held_invitations = _held(connection, invitations, wanted_invitations)
        held_messages = _held(connection, messages, read.messages)

        def missing(member: str, held: bool) -> bool:
            if held:
                return False
            if member not in known:
                self.unknown += 1
                return False
            return True

        self.consents: list[ConsentSeen] = [
            c for c in read.consents.values() if missing(c.member, c.id in held_consents)
        ]
        have_consents = held_consents | {c.id for c in self.consents}
        self.invitations: list[InvitationSeen] = [
            i
            for i in read.invitations.values()
            if missing(i.member, i.id in held_invitations)
            and i.consent is not None
            and i.consent in have_consents
        ]
        have_invitations = held_invitations | {i.id for i in self.invitations}
        self.messages: list[MessageSeen] = [
            m
            for m in read.messages.values()
            if missing(m.member, m.id in held_messages) and m.invitation in have_invitations
        ]
        self.consent_ids = {c.id for c in self.consents}
        self.invitation_ids = {i.id for i in self.invitations}
        self.message_ids = {m.id for m in self.messages}


def _write_consents(uow: UnitOfWork, seen: Sequence[ConsentSeen], locales: dict[str, str]) -> None:
    insert_rows(
        uow.conn,
        consents,
        [
            {
                "id": c.id,
                "member_id": c.member,
                "kind": MessageKind.INVITATION.value,
                "preview_hash": c.preview_hash,
                "reminders": c.reminders,
                "locale": locales[c.member],
                # Only the lost database held these: empty, not made up.
                "note": "",
                "text_shown": "",
                "ip": "",
                "user_agent": "",
                "given_at": c.given_at,
                # A revocation is a stop: applied again afterwards, by its service.
                "revoked_at": None,
            }
            for c in seen
        ],
    )
    insert_rows(
        uow.conn,
        consent_recipients,
        [{"consent_id": c.id, "recipient_digest": d} for c in seen for d in sorted(c.recipients)],
    )


def _last_state(seen: InvitationSeen) -> InvitationState:
    """Its last state in the file short of the stops, else where its decision put it."""
    if seen.state is not None:
        return InvitationState(seen.state)
    if seen.shared:
        return InvitationState.SENT
    return InvitationState.BLOCKED if seen.refused else InvitationState.SCHEDULED


def _never_leaves(seen: InvitationSeen, first: MessageSeen | None) -> bool:
    """Whether it is still to be sent, by a first email that cannot leave (`_unsent`)."""
    waiting = _last_state(seen) in (InvitationState.DRAFTED, InvitationState.SCHEDULED)
    return waiting and (first is None or _unsent(first))


def _invitation_state(seen: InvitationSeen, first: MessageSeen | None) -> InvitationState:
    """Its last state, or blocked when its first email never leaves."""
    return InvitationState.BLOCKED if _never_leaves(seen, first) else _last_state(seen)


def _unsent(seen: MessageSeen) -> bool:
    """Whether the email was never handed to the mail server, or put back since: rebuilt,
    it has no address to go to, and is cancelled."""
    return seen.state is None or seen.state == MessageState.SCHEDULED.value


def _first_emails(read: RowsRead) -> dict[str, MessageSeen]:
    """Each invitation's first email (not a reminder)."""
    first: dict[str, MessageSeen] = {}
    for message in read.messages.values():
        if message.kind != MessageKind.REMINDER.value:
            first.setdefault(message.invitation, message)
    return first


def _write_invitations(
    uow: UnitOfWork, ctx: Context, plan: _Plan, read: RowsRead, locales: dict[str, str]
) -> None:
    """The invitations, and the sender's record of each that counts (one with an email, or
    shared by the member): expiring as `invite` and the worker's `sent` set it."""
    policy = ctx.settings.policy
    expiry = timedelta(days=policy.invitation_expiry_days)
    first_emails = _first_emails(read)
    rows = []
    for seen in plan.invitations:
        sent_at = seen.sent_at or (seen.created_at if seen.shared else None)
        expires_at = sent_at + expiry if sent_at else seen.created_at + policy.long_window + expiry
        rows.append(
            {
                "id": seen.id,
                "member_id": seen.member,
                "consent_id": seen.consent,
                "recipient_digest": seen.digest,
                "address": None,
                "locale": locales[seen.member],
                "state": _invitation_state(seen, first_emails.get(seen.id)).value,
                "created_at": seen.created_at,
                "updated_at": seen.updated_at or seen.created_at,
                "expires_at": expires_at,
                "sent_at": sent_at,
                "answered_at": None,
                "remind_at": None,
            }
        )
    insert_rows(uow.conn, invitations, rows)
    counted = []
    for row, seen in zip(rows, plan.invitations, strict=True):
        email = first_emails.get(seen.id)
        if seen.refused and not seen.shared:
            continue
        live = email is not None and _message_state(email) is not MessageState.CANCELLED
        counted.append({**row, "message_id": email.id if live and email else None})
    activity.record_invitations(uow.conn, counted)


def _message_state(seen: MessageSeen) -> MessageState:
    """Its last state in the file; handed to the mail server with no outcome: unknown;
    never handed over: cancelled (`_unsent`)."""
    if _unsent(seen):
        return MessageState.CANCELLED
    state = MessageState(str(seen.state))
    return MessageState.UNKNOWN if state is MessageState.SENDING else state


def _write_messages(uow: UnitOfWork, seen: Sequence[MessageSeen], carriers: set[str]) -> None:
    rows = []
    for message in seen:
        state = _message_state(message)
        left = state in (MessageState.SENT, MessageState.UNKNOWN, MessageState.FAILED)
        kind = MessageKind.DIGEST.value if left and message.id in carriers else message.kind
        reason = message.last_reason
        if message.state == MessageState.SENDING.value:
            reason = LEFT_AFTER_BACKUP.format(seq=message.last_seq)
        elif _unsent(message):
            reason = REBUILT_UNSENT
        rows.append(
            {
                "id": message.id,
                "invitation_id": message.invitation,
                "member_id": message.member,
                "recipient_digest": message.digest,
                "kind": kind,
                "state": state.value,
                "scheduled_at": message.updated_at or message.created_at,
                "attempts": message.attempts,
                "created_at": message.created_at,
                "updated_at": message.updated_at or message.created_at,
                "sent_at": message.sent_at if state is MessageState.SENT else None,
                "lease_until": None,
                "first_attempt_at": message.first_attempt_at,
                "carried_by": message.carried_by if left else None,
                "last_reason": reason[:200] if reason else None,
            }
        )
    insert_rows(uow.conn, messages, rows)


def _record(uow: UnitOfWork, read: RowsRead, plan: _Plan) -> None:
    """The file's entries that made the rebuilt rows, again, in their order; then the move
    to `unknown` of each email they leave handed to the mail server, and the cancelling of
    each they leave waiting (and the blocking of its invitation)."""
    for entry in read.entries:
        payload = entry.payload
        if entry.event == EventType.CONSENT_GIVEN.value:
            ours = payload.get("consent") in plan.consent_ids
        elif entry.event == EventType.DECISION.value:
            ours = (
                payload.get("invitation") in plan.invitation_ids
                or payload.get("message") in plan.message_ids
            )
        elif entry.event == EventType.INVITATION_STATE.value:
            ours = payload.get("invitation") in plan.invitation_ids and not is_stop_move(payload)
        else:
            ours = payload.get("message") in plan.message_ids
        if ours:
            uow.record(entry.event, payload)
    first_emails = _first_emails(read)
    for invitation in plan.invitations:
        if _never_leaves(invitation, first_emails.get(invitation.id)):
            uow.record(
                EventType.INVITATION_STATE,
                {
                    "invitation": invitation.id,
                    "from": _last_state(invitation).value,
                    "to": InvitationState.BLOCKED.value,
                    "reason": REBUILT_UNSENT,
                },
            )
    for message in plan.messages:
        if _unsent(message):
            uow.record(
                EventType.MESSAGE_STATE,
                {
                    "message": message.id,
                    "from": MessageState.SCHEDULED.value,
                    "to": MessageState.CANCELLED.value,
                    "reason": REBUILT_UNSENT,
                },
            )
        if message.state == MessageState.SENDING.value:
            uow.record(
                EventType.MESSAGE_STATE,
                {
                    "message": message.id,
                    "from": MessageState.SENDING.value,
                    "to": MessageState.UNKNOWN.value,
                    "reason": LEFT_AFTER_BACKUP.format(seq=message.last_seq),
                },
            )
