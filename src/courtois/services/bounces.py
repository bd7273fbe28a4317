"""apply_bounce: what an incoming bounce, complaint or unsubscribe request changes.

A hard bounce (the address is dead) suppresses the recipient for good: scheduled
invitations to it are blocked, pending mail cancelled, the address leaves every address
book (`suppression.stop_suppressed`), and the invitations the bounced email carried are
marked bounced. Only those: another member's invitation whose email reached the address
before keeps its state, as after an opt-out, or that member would learn from someone
else's email why this person is unavailable (invariant 11), and be told, untruly, that
their own email bounced. A spam complaint suppresses too, and counts against the
member(s) whose email was reported (sender reputation, invariant 12). Soft bounces and
auto-replies change nothing. An "unsubscribe TOKEN" mail (the `mailto:` of an email's
List-Unsubscribe) stops everything, as the one-click link does and through the same
service: the token, signed, names the invitation, so a forged, unknown or expired one
changes nothing.

A report is applied only to the mail it can be tied to, since anyone can send one (a
forged "bounce" listing 3,000 addresses must not suppress them all, nor four forged
complaints stop a member):

- when it quotes one of our Message-IDs (`<{messages.id}@{our domain}>`), that email
  names the recipient to suppress, the invitations a hard bounce marks bounced and the
  member(s) a complaint charges (every invitation a digest carried), whatever address
  the report gives, or redacts;
- otherwise, by the addresses it names, each only if we did mail it (a message to its
  digest sent, or unknown); the report is taken to be about the last email to it, whose
  invitations a hard bounce marks bounced and whose member(s) a complaint charges;
- a complaint about a message that is visibly not ours (neither our Message-ID nor our
  sending domain in the original it shows) is applied to nobody.

The rest is reported (the command line still prints every recipient) and changes nothing.
Each recipient is known by its digest only (invariant 10): the address in the report is
digested and dropped, and the ledger records the digest. Nothing here touches an opt-out
(invariant 4): a suppression only ever adds a reason not to send.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, or_, select, update

from courtois.delivery.bounce_origin import ours, sent_by_us
from courtois.delivery.bounces import BounceReport
from courtois.domain.errors import InvalidAddress, NotFound
from courtois.domain.ledger import EventType
from courtois.domain.messages import MessageState
from courtois.services.context import Context
from courtois.services.locks import lock_recipients
from courtois.services.recipient_actions import unsubscribe_request
from courtois.services.recipients import checkpoint
from courtois.services.suppression import COMPLAINT, HARD_BOUNCE, stop_suppressed
from courtois.services.unit_of_work import UnitOfWork
from courtois.store.tables import complaints, messages, recipients

# The states of an email that may have reached its recipient.
_MAILED = (MessageState.SENT.value, MessageState.UNKNOWN.value)
# Digests looked up per query: well under every engine's limit on bound parameters.
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class Reported:
    """The email a report is about, to one recipient: the invitations it carried (one, or
    each of a digest's) and their members."""

    invitations: tuple[str, ...]
    members: tuple[str, ...]


def _reported(carried: Iterable[tuple[str, str]]) -> Reported:
    """The email that carried these (invitation, member) pairs."""
    pairs = set(carried)
    return Reported(tuple(sorted({i for i, _ in pairs})), tuple(sorted({m for _, m in pairs})))


def suppression_counts() -> dict[str, Any]:
    """What `suppress_recipient` counts, each at zero."""
    keys = ("suppressed", "already_suppressed", "blocked", "bounced", "cancelled", "complaints")
    return dict.fromkeys(keys, 0)


def apply_bounce(ctx: Context, report: BounceReport, now: datetime) -> dict[str, Any]:
    """Apply one classified message; returns what changed (counts only, no address):
    `not_mailed` counts the recipients named that we never mailed, `not_ours` those of a
    complaint about someone else's message, both left alone; an unsubscribe request
    counts one of `unsubscribed`, `already_unsubscribed` or `unknown_token`."""
    result: dict[str, Any] = {
        "kind": report.kind,
        **suppression_counts(),
        "invalid": 0,
        "not_mailed": 0,
        "not_ours": 0,
        "unsubscribed": 0,
        "already_unsubscribed": 0,
        "unknown_token": 0,
    }
    if report.kind == "unsubscribe":
        result[_unsubscribe(ctx, report.token, now)] += 1
        return result
    if report.kind == "hard_bounce":
        addresses = [r.address for r in report.recipients if r.hard]
        reason = HARD_BOUNCE
    elif report.kind == "complaint":
        addresses = [r.address for r in report.recipients]
        reason = COMPLAINT
    else:
        return result  # soft bounces and auto-replies: reported, nothing changes
    domain = ctx.settings.mail_from.rpartition("@")[2]
    with ctx.engine.connect() as connection:
        targets = _by_message_id(connection, ours(report.original_ids, domain))
        if targets is None:
            digests = _digests(ctx, addresses, result)
            shown = bool(report.original_ids or report.original_senders)
            if reason == COMPLAINT and shown and not sent_by_us(report.original_senders, domain):
                result["not_ours"] += len(digests)
                return result
            targets = _by_address(connection, digests, result)
    if not targets:
        return result
    with ctx.unit_of_work(now) as uow:
        locked = lock_recipients(uow.conn, sorted(targets))
        for digest in sorted(targets):
            fresh = locked[digest].suppressed_at is None
            suppress_recipient(uow, digest, fresh, reason, targets[digest], result)
        uow.commit()
    checkpoint(ctx)  # no page quoting a scrubbed address stays in SQLite's log
    return result


def _unsubscribe(ctx: Context, token: str, now: datetime) -> str:
    """Honour one "unsubscribe TOKEN" mail; which of the three outcomes it had. A bad
    token is no error of the run: the mailbox holds whatever anyone sent."""
    try:
        _, stopped = unsubscribe_request(ctx, token, now)
    except NotFound:
        return "unknown_token"
    return "unsubscribed" if stopped else "already_unsubscribed"


def _digests(ctx: Context, addresses: Iterable[str], result: dict[str, Any]) -> list[str]:
    """The digests of the addresses a report names (an unreadable one is counted)."""
    digests = set()
    for address in addresses:
        try:
            digests.add(ctx.digest_email(address, any_local_length=True))
        except InvalidAddress:
            result["invalid"] += 1
    return sorted(digests)


def _by_message_id(connection: Connection, ids: tuple[str, ...]) -> dict[str, Reported] | None:
    """The recipient of the emails with these ids of ours, with what they carried (a
    digest email: every message it carried), or None when none is known (no id of ours,
    or one purged since)."""
    if not ids:
        return None
    rows = connection.execute(
        select(messages.c.recipient_digest, messages.c.invitation_id, messages.c.member_id).where(
            or_(messages.c.id.in_(ids), messages.c.carried_by.in_(ids))
        )
    ).all()
    found: dict[str, set[tuple[str, str]]] = {}
    for row in rows:
        carried = (str(row.invitation_id), str(row.member_id))
        found.setdefault(str(row.recipient_digest), set()).add(carried)
    return {d: _reported(c) for d, c in found.items()} or None


def _by_address(
    connection: Connection, digests: list[str], result: dict[str, Any]
) -> dict[str, Reported]:
    """The digests we did mail, each with what the last email that reached it carried
    (all that a digest email carried); the others are counted in `not_mailed`."""
    emails: dict[str, dict[str, tuple[Any, set[tuple[str, str]]]]] = {}
    for start in range(0, len(digests), _CHUNK):
        rows = connection.execute(
            select(
                messages.c.recipient_digest,
                messages.c.id,
                messages.c.carried_by,
                messages.c.invitation_id,
                messages.c.member_id,
                messages.c.sent_at,
                messages.c.updated_at,
            ).where(
                messages.c.recipient_digest.in_(digests[start : start + _CHUNK]),
                messages.c.state.in_(_MAILED),
            )
        ).all()
        for row in rows:
            email = str(row.carried_by or row.id)
            of_digest = emails.setdefault(str(row.recipient_digest), {})
            when, carried = of_digest.get(email, (None, set()))
            at = row.sent_at or row.updated_at
            carried.add((str(row.invitation_id), str(row.member_id)))
            of_digest[email] = (max(at, when) if when is not None else at, carried)
    result["not_mailed"] += len(set(digests) - set(emails))
    targets = {}
    for digest, sent in emails.items():
        _, last = max(sent.items(), key=lambda item: (item[1][0], item[0]))
        targets[digest] = _reported(last[1])
    return targets


def suppress_recipient(
    uow: UnitOfWork,
    digest: str,
    fresh: bool,
    reason: str,
    reported: Reported,
    result: dict[str, Any],
    source: str | None = "report",
) -> None:
    """Suppress one locked recipient (keeping the first reason and instant), stop what
    was going to it and, for a hard bounce, mark bounced the invitations the email carried
    or, for a complaint, charge the members whose email was reported. `source` is what the
    ledger entry says the suppression came from (none: the entry names no source, as a
    refusal at send time writes it)."""
    if fresh:
        uow.conn.execute(
            update(recipients)
            .where(recipients.c.digest == digest, recipients.c.suppressed_at.is_(None))
            .values(suppressed_reason=reason, suppressed_at=uow.now)
        )
        result["suppressed"] += 1
    else:
        result["already_suppressed"] += 1
    # Sent invitations count as bounced only when the address itself is dead, and only
    # those whose email bounced: the others' emails reached it.
    bounced = reported.invitations if reason == HARD_BOUNCE else ()
    stopped = stop_suppressed(uow, digest, reason, bounced)
    result["cancelled"] += stopped.cancelled
    result["blocked"] += stopped.blocked
    result["bounced"] += stopped.bounced
    payload: dict[str, Any] = {"recipient": digest, "reason": reason}
    if source is not None:
        payload["source"] = source
    members = reported.members if reason == COMPLAINT else ()
    charged = [m for m in members if not _complained(uow, m, digest)]
    for member in charged:
        uow.conn.execute(
            insert(complaints).values(member_id=member, recipient_digest=digest, at=uow.now)
        )
        result["complaints"] += 1
    # One entry per member charged, each naming them; a report repeated, changing
    # nothing, adds nothing to the ledger.
    if charged:
        for member in charged:
            uow.record(EventType.SUPPRESSED, {**payload, "member": member})
    elif fresh:
        uow.record(EventType.SUPPRESSED, payload)


def _complained(uow: UnitOfWork, member: str, digest: str) -> bool:
    """One recipient counts once against one member, however often the report comes."""
    found = uow.conn.execute(
        select(complaints.c.id).where(
            complaints.c.member_id == member, complaints.c.recipient_digest == digest
        )
    ).first()
    return found is not None
