"""The emails for claims: what each member previewed, composed, signed, ready to go.

Before anything leaves, its words must hash to the preview its consent pinned (invariant
2). An invitation, or the reminder its member ticked, leaves in the words its consent kept
(`consented_words`), checked against that hash: a release or a setting that changed the
templates since does not change them. Any other email (a digest, a reminder the recipient
asked for, an email of a consent that kept no words) is rendered again, and each
invitation it carries must render to its consent's hash; a mismatch (the member renamed
since, the templates changed) holds the message instead of sending words nobody agreed to.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import select

from courtois.delivery.compose import Carried, ComposeInput, consent_hashes, make_tokens
from courtois.delivery.consented_words import read
from courtois.delivery.dkim import sign
from courtois.delivery.render import Tokens
from courtois.delivery.skeleton import compose_wire
from courtois.delivery.transport import Outgoing
from courtois.domain.errors import InvalidInput
from courtois.domain.members import check_locale
from courtois.domain.messages import MessageKind, MessageState
from courtois.services.context import Context
from courtois.services.worker_due import Claim, Due
from courtois.store.bulk import per_dialect, prebuilt
from courtois.store.tables import consents, invitations, members, messages

log = logging.getLogger("courtois.worker")

# Invitations read per query: well under every engine's limit on bound parameters.
_CHUNK = 500


class PreviewMismatch(Exception):
    """The email that would leave is not the one the member consented to: `differing`
    names the messages whose invitation's words changed (in a digest, perhaps not all)."""

    def __init__(self, reason: str, differing: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.differing = differing


class Uncomposable(Exception):
    """The claim's email cannot be written because of its own data (the recipient's or
    the member's address): it fails alone, and the rest of the batch still leaves."""


# The fields of a composition refusal that belong to one email, not to the configuration.
_OWN_FIELDS = frozenset({"to", "reply_to"})


def outgoing_batch(
    ctx: Context, claims: Sequence[Claim], now: datetime
) -> list[Outgoing | PreviewMismatch | Uncomposable]:
    """Each claim's email, or the mismatch that holds it, with what they carry read in one
    query for the batch."""
    rows = carried_rows(ctx, [m.invitation_id for claim in claims for m in claim.messages])
    followed = _first_emails(ctx, [claim.carrier for claim in claims if _reminds(claim)])
    return [_compose_or_not(ctx, claim, rows, followed, now) for claim in claims]


def _reminds(claim: Claim) -> bool:
    """Whether the claim leaves as a reminder (alone: a digest is written as first
    invitations, `leaving_together`)."""
    return len(claim.messages) == 1 and claim.carrier.kind is MessageKind.REMINDER


def _first_emails(ctx: Context, reminders: list[Due]) -> dict[str, str]:
    """For each invitation reminded of, the message id of the email that carried it first,
    when that email was sent: the invitation's own message, or the digest that carried it
    (whose id its `carried_by` names, as in the email's Message-ID). The reminder names it
    in In-Reply-To. One query per chunk of the batch's reminders (none without any), by the
    recipients' digests, the messages' shard; an email in doubt or never sent is not named:
    nobody may have it to thread the reminder under."""
    found: dict[str, str] = {}
    if not reminders:
        return found
    wanted = {(due.digest, due.invitation_id) for due in reminders}
    with ctx.engine.connect() as connection:
        for start in range(0, len(reminders), _CHUNK):
            chunk = reminders[start : start + _CHUNK]
            rows = connection.execute(
                select(
                    messages.c.recipient_digest,
                    messages.c.invitation_id,
                    messages.c.id,
                    messages.c.carried_by,
                ).where(
                    messages.c.recipient_digest.in_(sorted({due.digest for due in chunk})),
                    messages.c.invitation_id.in_(sorted({due.invitation_id for due in chunk})),
                    messages.c.kind != MessageKind.REMINDER.value,
                    messages.c.state == MessageState.SENT.value,
                )
            )
            for row in rows:
                if (row.recipient_digest, row.invitation_id) in wanted:
                    found[row.invitation_id] = row.carried_by or row.id
    return found


def _compose_or_not(
    ctx: Context,
    claim: Claim,
    rows: dict[str, CarriedRow],
    followed: dict[str, str],
    now: datetime,
) -> Outgoing | PreviewMismatch | Uncomposable:
    """The batch is claimed (`sending`) before it is composed: one email that cannot be
    written must not take the others down with it, or they would be left `sending`, then
    `unknown`, and never sent. Any other failure (a configuration that cannot sign or
    name the sender) is every email's: it is raised, and the worker puts the batch back."""
    try:
        return _compose(ctx, claim, rows, followed, now)
    except InvalidInput as error:
        if not _OWN_FIELDS.intersection(error.details):
            raise
        log.error("message %s could not be composed: its %s", claim.carrier.id, *error.details)
        return Uncomposable(", ".join(error.details))


class CarriedRow(NamedTuple):
    """What composing needs of one invitation, its consent and its member."""

    id: str
    locale: str | None
    note: str
    reminders: int
    preview_hash: str
    name: str
    email: str
    reply_to: bool
    member_locale: str
    words: str | None = None
    # Set by the recipient's "remind me later": the reminder is theirs, not the member's.
    remind_at: datetime | None = None


# `carried_rows`' three lookups, each unpacked by position in its column order.
_CARRIED_INVITATIONS = per_dialect(
    lambda within: select(
        invitations.c.id,
        invitations.c.locale,
        invitations.c.consent_id,
        invitations.c.member_id,
        invitations.c.remind_at,
    ).where(within(invitations.c.id, "b_ids"))
)
_CARRIED_CONSENTS = per_dialect(
    lambda within: select(
        consents.c.id,
        consents.c.note,
        consents.c.reminders,
        consents.c.preview_hash,
        consents.c.words,
    ).where(within(consents.c.member_id, "b_members"), within(consents.c.id, "b_ids"))
)
_CARRIED_MEMBERS = per_dialect(
    lambda within: select(
        members.c.id, members.c.name, members.c.email, members.c.reply_to, members.c.locale
    ).where(within(members.c.id, "b_ids"))
)


def carried_rows(ctx: Context, ids: list[str]) -> dict[str, CarriedRow]:
    """Read as three lookups by key, not one join: invitations live with their recipient,
    consents and members with their member (docs/scaling.md), so on a distributed database
    each lookup stays on the shards that hold its rows."""
    found: dict[str, CarriedRow] = {}
    with ctx.engine.connect() as connection:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            rows = connection.execute(
                prebuilt(_CARRIED_INVITATIONS, connection), {"b_ids": chunk}
            ).all()
            # By position (see `worker_due.due_messages`).
            member_ids = sorted({member_id for _, _, _, member_id, _ in rows})
            consent_ids = sorted({consent_id for _, _, consent_id, _, _ in rows})
            consent_of = {
                id_: (note, reminders, preview_hash, words)
                for id_, note, reminders, preview_hash, words in connection.execute(
                    prebuilt(_CARRIED_CONSENTS, connection),
                    {"b_members": member_ids, "b_ids": consent_ids},
                )
            }
            member_of = {
                id_: (name, email, reply_to, member_locale)
                for id_, name, email, reply_to, member_locale in connection.execute(
                    prebuilt(_CARRIED_MEMBERS, connection), {"b_ids": member_ids}
                )
            }
            for id_, locale, consent_id, member_id, remind_at in rows:
                note, reminders, preview_hash, words = consent_of[consent_id]
                name, email, reply_to, member_locale = member_of[member_id]
                found[id_] = CarriedRow(
                    id_,
                    locale,
                    note,
                    reminders,
                    preview_hash,
                    name,
                    email,
                    reply_to,
                    member_locale,
                    words,
                    remind_at,
                )
    return found


def _compose(
    ctx: Context,
    claim: Claim,
    rows: dict[str, CarriedRow],
    followed: dict[str, str],
    now: datetime,
) -> Outgoing | PreviewMismatch:
    ids = [m.invitation_id for m in claim.messages]
    carrier = claim.carrier
    first = rows[carrier.invitation_id]
    kind = MessageKind.DIGEST if len(ids) > 1 else carrier.kind
    # The invitation's remind_at is set only by the recipient's "remind me later", which
    # replaces any reminder the member ticked: this reminder is theirs.
    asked_by_recipient = kind is MessageKind.REMINDER and carrier.remind_at is not None
    kept = read(first.words)
    words = kept.email(kind, asked_by_recipient, len(ids)) if kept else None
    if kept is not None and words is not None and kept.preview_hash != first.preview_hash:
        return PreviewMismatch(
            f"message {carrier.id} differs from its consented preview",
            tuple(m.id for m in claim.messages),
        )
    # Kept words name the member as they were when consenting (one invitation alone).
    named = {carrier.invitation_id: kept.name} if kept is not None and words is not None else {}
    carried = tuple(
        Carried(
            invitation_id=m.invitation_id,
            member_name=named.get(m.invitation_id, rows[m.invitation_id].name),
            note=rows[m.invitation_id].note,
            reminders=rows[m.invitation_id].reminders,
            reply_to=rows[m.invitation_id].email if rows[m.invitation_id].reply_to else None,
        )
        for m in claim.messages
    )
    message = ComposeInput(
        message_id=carrier.id,
        to=carrier.address or "",
        kind=kind,
        locale=check_locale(first.locale or first.member_locale),
        invitations=carried,
        sent_at=now,
        asked_by_recipient=asked_by_recipient,
        in_reply_to=followed.get(carrier.invitation_id) if _reminds(claim) else None,
        words=words,
    )
    if words is None:
        hashes = consent_hashes(ctx.settings, message)
        differing = tuple(
            m.id
            for m, rendered in zip(claim.messages, hashes, strict=True)
            if rendered != rows[m.invitation_id].preview_hash
        )
        if differing:
            return PreviewMismatch(
                f"message {carrier.id} differs from its consented preview", differing
            )
    tokens = make_tokens(ctx.settings, message.invitation_ids)
    email = compose_wire(ctx.settings, message, tokens)
    return Outgoing(
        message_id=carrier.id,
        to=message.to,
        kind=kind.value,
        member_names=message.member_names,
        invitation_ids=tuple(ids),
        subject=email.subject,
        text=email.text,
        raw=sign(email.raw, ctx.settings),
        envelope_from=ctx.settings.mail_from,
        raw_ascii=_without_reply_to(ctx, message, tokens, email.raw),
    )


def _without_reply_to(ctx: Context, message: ComposeInput, tokens: Tokens, raw: bytes) -> bytes:
    """The email again, signed, without the member's Reply-To, when that header alone
    makes it need SMTPUTF8 (a local part outside ASCII): what a server without SMTPUTF8
    gets instead of refusing it (`smtp_envelope.plan` says why). Same words and tokens;
    empty when the email needs no SMTPUTF8 or needs it for its recipient's address."""
    if raw.isascii() or all(carried.reply_to is None for carried in message.invitations):
        return b""
    if not message.to.rpartition("@")[0].isascii():
        return b""  # the recipient's own address needs SMTPUTF8: no fallback can help
    plain = replace(
        message, invitations=tuple(replace(c, reply_to=None) for c in message.invitations)
    )
    written = compose_wire(ctx.settings, plain, tokens)
    return sign(written.raw, ctx.settings) if written.raw.isascii() else b""
