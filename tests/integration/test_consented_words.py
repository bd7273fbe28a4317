"""A consent keeps the words its member previewed, and the worker sends those (invariant 2).

A setting the emails print, or the member's name, changed between the consent and the
send no longer holds the email: it leaves in the words consented to, which still hash to
the consent. Words altered where they are kept are held. A consent that could keep no
words (a "{" in what was written) or kept none (given before schema 0017) is rendered again
and held on a change, as before."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update
from support import T0, add_members, rows, send_invites

from courtois.config import Settings
from courtois.delivery.compose import as_previewed, tokens_in
from courtois.delivery.render import preview_hash
from courtois.delivery.transport import MemoryTransport, Outgoing
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.services.words_check import check_words
from courtois.services.worker import run_pass
from courtois.store.tables import consents, messages

BO, CY, DEE = "bo@example.com", "cy@example.net", "dee@example.org"
DUE = T0 + timedelta(minutes=11)
ADDRESS = "Agora, 1 Example Street, 99999 Exampleton"
MOVED = "Agora, 2 Other Street, 11111 Elsewhere"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A platform whose emails give its postal address, as the worker requires: words
    previewed without it are not kept."""
    return replace(settings, platform_postal_address=ADDRESS)


def _with(ctx: Context, **changes: object) -> Context:
    return Context(ctx.engine, replace(ctx.settings, **changes))  # type: ignore[arg-type]


def _email(outgoing: Outgoing) -> EmailMessage:
    parsed = message_from_bytes(outgoing.raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _hash_sent(ctx: Context, outgoing: Outgoing) -> str:
    """The preview hash of the email as it arrived, its tokens put back as placeholders."""
    email = _email(outgoing)
    return preview_hash(as_previewed(email, tokens_in(email, ctx.settings)))


def _consent(ctx: Context, member: str) -> tuple[str, str, str | None]:
    (row,) = rows(ctx, consents, consents.c.member_id == member)
    return row.id, row.preview_hash, row.words


def test_a_setting_changed_after_consenting_leaves_the_words_consented_to(ctx: Context) -> None:
    add_members(ctx)
    before = ctx
    send_invites(before, "ana", [BO], T0)
    _, consented, words = _consent(ctx, "ana")
    assert words is not None
    assert ADDRESS in words
    after = _with(ctx, platform_postal_address=MOVED, base_url="https://invite.example")

    assert check_words(after).held == 0
    transport = MemoryTransport()
    report = run_pass(after, DUE, transport)
    assert (report.sent, report.failed) == (1, 0)
    (sent,) = transport.sent
    assert ADDRESS in sent.text
    assert MOVED not in sent.text
    # Every word is the one previewed: the hash of what arrived is the consent's.
    assert _hash_sent(before, sent) == consented


def test_a_member_renamed_after_consenting_is_named_as_they_were_shown(ctx: Context) -> None:
    """The email says "Ana", as previewed, in its From line as in its words."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    register_member(ctx, "ana", "ana@example.com", "Ana Lima", "en", T0 + timedelta(minutes=5))

    transport = MemoryTransport()
    assert run_pass(ctx, DUE, transport).sent == 1
    (sent,) = transport.sent
    email = _email(sent)
    assert email["From"].addresses[0].display_name == "Ana via Agora"
    assert "Lima" not in sent.raw.decode("ascii", "replace")
    assert sent.member_names == ("Ana",)
    assert _hash_sent(ctx, sent) == _consent(ctx, "ana")[1]


def test_a_ticked_reminder_leaves_in_its_kept_words_too(ctx: Context) -> None:
    add_members(ctx)
    before = ctx
    send_invites(before, "ana", [BO], T0, reminders=1)
    transport = MemoryTransport()
    assert run_pass(before, DUE, transport).sent == 1

    after = _with(ctx, platform_postal_address=MOVED)
    assert check_words(after).held == 0
    reminded = DUE + ctx.settings.policy.reminder_interval + timedelta(hours=1)
    report = run_pass(after, reminded, transport)
    assert (report.sent, report.failed) == (1, 0)
    reminder = transport.sent[1]
    assert reminder.kind == "reminder"
    assert ADDRESS in reminder.text
    assert MOVED not in reminder.text
    # Threaded under the invitation it follows, as any reminder.
    assert _email(reminder)["In-Reply-To"] == _email(transport.sent[0])["Message-ID"]


def test_words_altered_where_they_are_kept_are_held(ctx: Context) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    consent_id, _, words = _consent(ctx, "ana")
    assert words is not None
    kept = json.loads(words)
    kept["emails"][0][1] = kept["emails"][0][1].replace("Ana", "Eve")
    with ctx.engine.begin() as connection:
        connection.execute(
            update(consents).where(consents.c.id == consent_id).values(words=json.dumps(kept))
        )

    found = check_words(ctx)
    assert (found.held, found.members) == (1, ("ana",))
    transport = MemoryTransport()
    report = run_pass(ctx, DUE, transport)
    assert (report.sent, report.failed, transport.sent) == (0, 1, [])
    with ctx.engine.connect() as connection:
        reason = connection.execute(select(messages.c.last_reason)).scalar_one()
    assert reason is not None
    assert "preview" in reason


def test_words_that_could_hold_a_placeholder_are_not_kept_and_are_rendered_again(
    ctx: Context,
) -> None:
    """A note with a "{" could read like a token's placeholder: nothing is kept, and the
    email is rendered again, sent while nothing changed and held after a change."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0, note="See {token:u} and {braces}")
    send_invites(ctx, "bruno", [CY], T0, note="See you there")
    assert _consent(ctx, "ana")[2] is None
    assert _consent(ctx, "bruno")[2] is not None
    # Nor where the email would not give the platform's postal address.
    send_invites(_with(ctx, platform_postal_address=""), "ana", [DEE], T0)
    assert rows(ctx, consents, consents.c.member_id == "ana")[-1].words is None

    moved = _with(ctx, platform_postal_address=MOVED)
    found = check_words(moved)
    assert (found.waiting, found.held, found.members) == (3, 2, ("ana",))
    transport = MemoryTransport()
    report = run_pass(moved, DUE, transport)
    assert (report.sent, report.failed) == (1, 2)
    assert [o.to for o in transport.sent] == [CY]


def test_the_note_as_written_reaches_the_email_through_the_kept_words(ctx: Context) -> None:
    """HTML in a note is kept escaped, as previewed, never as markup."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0, note="<b>Come</b> & see")
    transport = MemoryTransport()
    assert run_pass(ctx, DUE, transport).sent == 1
    html = _email(transport.sent[0]).get_body(("html",))
    assert html is not None
    content = html.get_content()
    assert "&lt;b&gt;Come&lt;/b&gt; &amp; see" in content
    assert "<b>Come</b>" not in content
