"""The email for a claim: what the member previewed, for each invitation it carries."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy import select

from courtois.delivery.transport import Outgoing
from courtois.domain.messages import MessageKind
from courtois.domain.preview import TOKEN_PLACEHOLDER
from courtois.services.context import Context
from courtois.services.members import get_member
from courtois.services.previews import render_for
from courtois.services.worker_due import Claim
from courtois.store.tables import consents, invitations


def outgoing_for(ctx: Context, claim: Claim) -> Outgoing:
    """The plain-text message as previewed; a digest lists every member who invited."""
    names: list[str] = []
    texts: list[str] = []
    subject = ""
    with ctx.engine.connect() as connection:
        for message in claim.messages:
            row = connection.execute(
                select(consents.c.note, consents.c.reminders, invitations.c.locale)
                .join(invitations, invitations.c.consent_id == consents.c.id)
                .where(invitations.c.id == message.invitation_id)
            ).one()
            member = get_member(ctx, message.member_id)
            rendered, _ = render_for(ctx, member, row.note, row.locale, row.reminders)
            names.append(member.name)
            texts.append(rendered.text.replace(TOKEN_PLACEHOLDER, message.invitation_id))
            subject = rendered.subject
    if len(claim.messages) > 1:
        subject = (
            f"{', '.join(names[:-1])} and {names[-1]} invited you to {ctx.settings.platform_name}"
        )
    carrier = claim.carrier
    to = carrier.address or ""
    email = EmailMessage()
    email["From"] = ctx.settings.mail_from
    email["To"] = to
    email["Subject"] = subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(idstring=carrier.id)
    email.set_content("\n\n".join(texts))
    return Outgoing(
        message_id=carrier.id,
        to=to,
        kind=MessageKind.DIGEST.value if len(claim.messages) > 1 else carrier.kind.value,
        member_names=tuple(names),
        invitation_ids=tuple(m.invitation_id for m in claim.messages),
        subject=subject,
        text="\n\n".join(texts),
        raw=email.as_bytes(),
        envelope_from=ctx.settings.mail_from,
    )
