"""The email for a claim: what each member previewed, composed, signed, ready to go.

Before anything leaves, each invitation the email carries is rendered again and must hash
to the preview its consent pinned (invariant 2); a mismatch (the member renamed since,
the templates changed) holds the message instead of sending words nobody agreed to.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from courtois.delivery.compose import Carried, ComposeInput, compose, consent_hashes, to_bytes
from courtois.delivery.dkim import sign
from courtois.delivery.transport import Outgoing
from courtois.domain.members import check_locale
from courtois.domain.messages import MessageKind
from courtois.services.context import Context
from courtois.services.worker_due import Claim
from courtois.store.tables import consents, invitations, members


class PreviewMismatch(Exception):
    """The email that would leave is not the one the member consented to."""


def outgoing_for(ctx: Context, claim: Claim, now: datetime) -> Outgoing:
    """Compose the claim's email; raises PreviewMismatch rather than send other words."""
    ids = [m.invitation_id for m in claim.messages]
    with ctx.engine.connect() as connection:
        rows = {
            r.id: r
            for r in connection.execute(
                select(
                    invitations.c.id,
                    invitations.c.locale,
                    consents.c.note,
                    consents.c.reminders,
                    consents.c.preview_hash,
                    members.c.name,
                    members.c.email,
                    members.c.reply_to,
                    members.c.locale.label("member_locale"),
                )
                .join(consents, consents.c.id == invitations.c.consent_id)
                .join(members, members.c.id == invitations.c.member_id)
                .where(invitations.c.id.in_(ids))
            )
        }
    carried = tuple(
        Carried(
            invitation_id=m.invitation_id,
            member_name=rows[m.invitation_id].name,
            note=rows[m.invitation_id].note,
            reminders=rows[m.invitation_id].reminders,
            reply_to=rows[m.invitation_id].email if rows[m.invitation_id].reply_to else None,
        )
        for m in claim.messages
    )
    carrier = claim.carrier
    first = rows[carrier.invitation_id]
    kind = MessageKind.DIGEST if len(carried) > 1 else carrier.kind
    message = ComposeInput(
        message_id=carrier.id,
        to=carrier.address or "",
        kind=kind,
        locale=check_locale(first.locale or first.member_locale),
        invitations=carried,
        sent_at=now,
    )
    if list(consent_hashes(ctx.settings, message)) != [rows[i].preview_hash for i in ids]:
        raise PreviewMismatch(f"message {carrier.id} differs from its consented preview")
    email = compose(ctx.settings, message)
    body = email.get_body(("plain",))
    return Outgoing(
        message_id=carrier.id,
        to=message.to,
        kind=kind.value,
        member_names=tuple(c.member_name for c in carried),
        invitation_ids=tuple(ids),
        subject=str(email["Subject"]),
        text=body.get_content() if body is not None else "",
        raw=sign(to_bytes(email), ctx.settings),
        envelope_from=ctx.settings.mail_from,
    )
