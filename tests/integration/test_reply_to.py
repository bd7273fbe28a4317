"""Replies reach the member only when the member chose so; never on a digest."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

from conftest import T0
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass


def ask(ctx: Context, member: str, to: str) -> None:
    preview = preview_invitations(ctx, member, 1, "", None, 0)
    request = InviteRequest(
        member, (to,), "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    invite(ctx, request, T0)


def test_reply_to_only_for_members_who_opted_in(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0, reply_to=True)
    register_member(ctx, "bo", "bo@members.example", "Bo", "en", T0)
    ask(ctx, "ana", "x@example.org")
    ask(ctx, "bo", "y@example.org")
    ask(ctx, "ana", "z@example.org")
    ask(ctx, "bo", "z@example.org")
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    replies = {}
    for outgoing in transport.sent:
        parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
        reply_to = parsed["Reply-To"]
        replies[outgoing.to] = (
            outgoing.kind,
            reply_to.addresses[0].addr_spec if reply_to is not None else None,
        )
    assert replies == {
        "x@example.org": ("invitation", "ana@members.example"),
        "y@example.org": ("invitation", None),
        "z@example.org": ("digest", None),
    }
