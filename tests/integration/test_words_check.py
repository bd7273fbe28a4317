"""`check_words`: before a release or a configuration change is switched on, which emails
waiting to leave it would hold (invariant 2), found without changing anything, and the
same emails the worker then holds.

A member renaming themselves changes their emails' words as a new template would; the
platform's name changes every email's. Consents keep the words previewed since schema 0017
(`test_consented_words.py`), so these tests hold emails of consents that kept none, as
every consent given before it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from security_support import snapshot
from support import T0, add_members, request_for, send_invites, without_kept_words

from courtois.config import Settings
from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.invitations import invite
from courtois.services.members import register_member
from courtois.services.words_check import WordsCheck, WordsGroup, check_words
from courtois.services.worker import run_pass

BO, CY, DEE = "bo@example.com", "cy@example.net", "dee@example.org"
UNDO = timedelta(minutes=10)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A platform whose emails give its postal address (without it no words are kept)."""
    return replace(settings, platform_postal_address="Agora, 1 Example Street, 99999 Exampleton")


def _groups(found: WordsCheck) -> set[tuple[str, str, int, int]]:
    return {(g.kind, g.locale, g.waiting, g.held) for g in found.groups}


def test_with_nothing_waiting_nothing_would_be_held(ctx: Context) -> None:
    assert check_words(ctx) == WordsCheck(0, 0, (), ())


def test_a_member_renamed_after_consenting_is_found_before_the_worker_holds_them(
    ctx: Context,
) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [BO, CY], T0)
    invite(ctx, request_for(ctx, "bruno", [DEE], locale="fr"), T0)
    assert check_words(ctx) == WordsCheck(
        3,
        0,
        (WordsGroup("invitation", "en", 2, 0), WordsGroup("invitation", "fr", 1, 0)),
        (),
    )

    register_member(ctx, "ana", "ana@example.com", "Ana Lima", "en", T0 + timedelta(minutes=5))
    assert check_words(ctx).held == 0  # each consent kept the words Ana previewed
    without_kept_words(ctx)
    before = snapshot(ctx)
    found = check_words(ctx)
    assert (found.waiting, found.held, found.members) == (3, 2, ("ana",))
    assert _groups(found) == {("invitation", "en", 2, 2), ("invitation", "fr", 1, 0)}
    # Read-only: not a row, a state or a ledger entry more.
    assert snapshot(ctx) == before

    # What the check announced is what the worker does.
    transport = MemoryTransport()
    report = run_pass(ctx, T0 + UNDO + timedelta(minutes=1), transport)
    assert (report.sent, report.failed) == (1, 2)
    assert [email.to for email in transport.sent] == [DEE]
    assert check_words(ctx) == WordsCheck(0, 0, (), ())


def test_a_configuration_that_changes_every_email_is_found_and_the_current_one_is_not(
    ctx: Context,
) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    send_invites(ctx, "bruno", [CY], T0)
    renamed = Context(ctx.engine, replace(ctx.settings, platform_name="Agora Pro"))
    assert check_words(renamed).held == 0
    without_kept_words(ctx)

    found = check_words(renamed)
    assert (found.waiting, found.held, found.members) == (2, 2, ("ana", "bruno"))
    assert check_words(ctx).held == 0


def test_reminders_still_to_come_are_counted_and_held_alike(ctx: Context) -> None:
    """A reminder is queued weeks after the consent: the words it will carry are judged
    against that consent too, and a change since holds it as the worker will."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0, reminders=1)
    send_invites(ctx, "bruno", [CY], T0)
    transport = MemoryTransport()
    assert run_pass(ctx, T0 + UNDO, transport).sent == 2
    assert _groups(check_words(ctx)) == {("reminder", "en", 1, 0)}
    without_kept_words(ctx)

    register_member(ctx, "ana", "ana@example.com", "Ana Lima", "en", T0 + timedelta(days=1))
    found = check_words(ctx)
    assert _groups(found) == {("reminder", "en", 1, 1)}
    assert found.members == ("ana",)

    reminded = T0 + UNDO + ctx.settings.policy.reminder_interval + timedelta(hours=1)
    report = run_pass(ctx, reminded, transport)
    assert (report.sent, report.failed) == (0, 1)
    assert len(transport.sent) == 2


def test_policy_days_the_emails_state_are_words_too(ctx: Context) -> None:
    """The email says when its reminder would come and how long the invitation stays open:
    a policy that changes those days changes the words consented to."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0, reminders=1)
    send_invites(ctx, "bruno", [CY], T0)
    without_kept_words(ctx)
    policy = ctx.settings.policy
    # Only Ana ticked a reminder; both emails say when the invitation expires.
    for changed, held in (
        (replace(policy, reminder_min_days=policy.reminder_min_days + 7), ("ana",)),
        (
            replace(policy, invitation_expiry_days=policy.invitation_expiry_days + 30),
            ("ana", "bruno"),
        ),
    ):
        other = Context(ctx.engine, replace(ctx.settings, policy=changed))
        assert check_words(other).members == held, changed
