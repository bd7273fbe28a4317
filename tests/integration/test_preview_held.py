"""What was shown is what is sent (invariant 2), enforced at the last moment: when the
words would differ from the preview the member consented to (here, the member renamed
themselves after consenting), the message is held, not sent. A consent that kept the words
previewed (schema 0017 on) sends those instead (`test_consented_words.py`); a digest is
rendered again, and so is every email of a consent given before."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from support import without_kept_words

from conftest import T0
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages


def test_a_message_that_differs_from_its_preview_is_held(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    preview = preview_invitations(ctx, "ana", 2, "", None, 0)
    request = InviteRequest(
        "ana",
        ("bo@example.org", "cy@example.org"),
        "",
        None,
        0,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    invite(ctx, request, T0)
    without_kept_words(ctx)
    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", T0 + timedelta(minutes=5))

    transport = MemoryTransport()
    report = run_pass(ctx, T0 + timedelta(minutes=11), transport)
    assert transport.sent == []
    assert report.failed == 2
    with ctx.engine.connect() as connection:
        rows = connection.execute(
            select(messages.c.state, messages.c.last_reason, invitations.c.state.label("inv")).join(
                invitations, invitations.c.id == messages.c.invitation_id
            )
        ).all()
    assert {(r.state, r.inv) for r in rows} == {("failed", "blocked")}
    assert all("preview" in (r.last_reason or "") for r in rows)


def test_in_a_digest_only_the_changed_invitation_is_held(ctx: Context) -> None:
    """Ana and Bruno invite Bo; Ana renames herself before the digest leaves. Her section is
    held; Bruno's invitation still leaves, alone, as the email he previewed."""
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    register_member(ctx, "bruno", "bruno@members.example", "Bruno", "en", T0)
    made = {}
    for member in ("ana", "bruno"):
        preview = preview_invitations(ctx, member, 1, "", None, 0)
        request = InviteRequest(
            member,
            ("bo@example.org",),
            "",
            None,
            0,
            preview.preview_hash,
            ConsentInput(preview.consent_text),
        )
        made[member] = invite(ctx, request, T0)["invitations"][0]["id"]
    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", T0 + timedelta(minutes=5))

    transport = MemoryTransport()
    report = run_pass(ctx, T0 + timedelta(minutes=11), transport)
    (email,) = transport.sent
    assert (email.kind, email.invitation_ids, email.member_names) == (
        "invitation",
        (made["bruno"],),
        ("Bruno",),
    )
    assert (report.sent, report.failed) == (1, 1)
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(
                messages.c.id,
                messages.c.invitation_id,
                messages.c.state,
                messages.c.carried_by,
                messages.c.kind,
                invitations.c.state.label("inv"),
            ).join(invitations, invitations.c.id == messages.c.invitation_id)
        ).all()
    by_invitation = {r.invitation_id: r for r in found}
    ana, bruno = by_invitation[made["ana"]], by_invitation[made["bruno"]]
    assert (ana.state, ana.inv) == ("failed", "blocked")
    assert (bruno.state, bruno.inv, bruno.carried_by, bruno.kind) == (
        "sent",
        "sent",
        None,
        "invitation",
    )
    assert email.message_id == bruno.id
