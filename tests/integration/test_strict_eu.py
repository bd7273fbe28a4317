"""strict-eu: the platform emails no non-member; the member gets a personal link and a
ready-to-send text, and the invitation is still tracked (acceptance, expiry, opt-outs)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import func, select

from conftest import T0
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipients import mark_joined
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages
from courtois.tokens import Scope, read_token


def strict(ctx: Context) -> Context:
    policy = replace(ctx.settings.policy, profile="strict-eu")
    return Context(ctx.engine, replace(ctx.settings, policy=policy))


def test_no_email_a_personal_link_and_tracking(ctx: Context) -> None:
    eu = strict(ctx)
    register_member(eu, "ana", "ana@members.example", "Ana", "en", T0)
    preview = preview_invitations(eu, "ana", 1, "", None, 0)
    request = InviteRequest(
        "ana",
        ("bo@example.org",),
        "",
        None,
        0,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    (item,) = invite(eu, request, T0)["invitations"]
    assert item["status"] == "sent"
    verdicts = {v["rule"]: v["outcome"] for v in item["decision"]["verdicts"]}
    assert verdicts["strict-eu-no-email"] == "deny"
    token = item["share_link"].rsplit("/join/", 1)[1]
    assert read_token(eu.settings.secret, Scope.JOIN, token) == item["id"]
    assert item["share_link"] in item["share_text"] or token in item["share_text"]

    transport = MemoryTransport()
    run_pass(eu, T0 + timedelta(minutes=11), transport)
    assert transport.sent == []
    with eu.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(messages)).scalar_one() == 0
        address = connection.execute(select(invitations.c.address)).scalar_one()
    assert address is None  # nothing to send, so nothing kept

    assert mark_joined(eu, eu.digest_email("bo@example.org"), T0 + timedelta(days=2)) == {
        "accepted": 1,
        "blocked": 0,
    }
