"""A history written by the real use cases, for the tests of `simulate`: invitations from
two members that meet at one inbox, reminders, an opt-out, a decline, a join, a member's
registration, a complaint and a hard bounce, with the worker passing when mail is due."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from support import T0, add_members, by_email, send_invites

from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.delivery.transport import MemoryTransport
from courtois.domain.invitations import InvitationState
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.services.recipient_actions import Link, decline
from courtois.services.recipients import mark_joined, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.tables import invitations

MINUTE, DAY = timedelta(minutes=1), timedelta(days=1)
BO, CY, DEE, EVE = "bo@example.org", "cy@example.org", "dee@example.org", "eve@example.org"
FAY, GUS, HAL = "fay@example.org", "gus@example.org", "hal@example.org"
# What the story sends, as history records it.
SENT = {"emails": 8, "invitations_sent": 7, "reminders_sent": 1, "digests": 0, "requested": 9}


def link_to(ctx: Context, invitation_id: str) -> Link:
    with ctx.engine.connect() as connection:
        row = connection.execute(select(invitations).where(invitations.c.id == invitation_id)).one()
    state = InvitationState(row.state)
    return Link(invitation_id, row.member_id, row.recipient_digest, state, row.locale)


def report(kind: str, address: str) -> BounceReport:
    recipient = BouncedRecipient(address, "5.1.1", kind == "hard_bounce")
    return BounceReport("story", kind, (recipient,))  # type: ignore[arg-type]


def write_story(ctx: Context) -> None:
    """Play the story on the use cases (the worker's transport keeps what it is given)."""
    transport = MemoryTransport()
    add_members(ctx)
    ana = by_email(send_invites(ctx, "ana", [BO, CY, DEE, EVE], T0, reminders=1))
    send_invites(ctx, "bruno", [CY, FAY], T0 + MINUTE)
    # Ana's four leave after the undo window; Bruno's to Fay too, his to Cy must wait.
    run_pass(ctx, T0 + 10 * MINUTE, transport)
    run_pass(ctx, T0 + 11 * MINUTE, transport)
    unsubscribe(ctx, ctx.digest_email(DEE), T0 + 2 * DAY)
    decline(ctx, link_to(ctx, ana[EVE]["id"]), T0 + 3 * DAY)
    mark_joined(ctx, ctx.digest_email(FAY), T0 + 5 * DAY)
    # Fourteen days on: Bo's reminder, and Bruno's invitation to Cy. Cy's reminder, due with
    # it, never joins it (a digest reads as first invitations): it waits for Cy's quota,
    # which Ana's invitation does not outlive.
    run_pass(ctx, T0 + 14 * DAY + 10 * MINUTE, transport)
    send_invites(ctx, "ana", [BO], T0 + 20 * DAY)  # already invited
    run_pass(ctx, T0 + 45 * DAY, transport)  # Ana's invitations expire
    register_member(ctx, "gus", GUS, "Gus", "en", T0 + 46 * DAY)
    send_invites(ctx, "ana", [GUS], T0 + 47 * DAY)  # a member now
    apply_bounce(ctx, report("complaint", BO), T0 + 48 * DAY)
    send_invites(ctx, "bruno", [HAL], T0 + 49 * DAY)
    run_pass(ctx, T0 + 49 * DAY + 10 * MINUTE, transport)
    # Hal's address is dead: the email that reached it bounces (a bounce of mail that
    # never left would not be applied).
    apply_bounce(ctx, report("hard_bounce", HAL), T0 + 49 * DAY + 15 * MINUTE)
    assert len(transport.sent) == SENT["emails"]
