"""Applying bounces and complaints to a real store (both engines), and `bounces ingest`.

A hard bounce suppresses the address for good and the policy then refuses it; a soft bounce
changes nothing; a complaint suppresses and counts against the member whose invitation was
reported. Only digests are kept, and nothing lifts an opt-out.
"""

from __future__ import annotations

import dataclasses
import json
import mailbox
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from bounce_support import arf, list_unsubscribe_mailto, unsubscribe_request
from pages_site import ledger_size
from sqlalchemy import Row, select
from support import (
    EVERY_TABLE,
    T0,
    add_members,
    all_stored_text,
    by_email,
    count,
    counts,
    invitation,
    ledger_events,
    messages_of,
    rows,
    send_invites,
    verdicts_of,
)
from test_cli import EXECUTABLE, postgres_database
from typer.testing import CliRunner

from conftest import SECRET
from courtois.cli_bounces import bounces_app
from courtois.config import Settings
from courtois.delivery.bounces import BouncedRecipient, BounceReport, classify
from courtois.delivery.transport import MemoryTransport
from courtois.policy.facts import SenderFacts
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.facts import sender_facts, senders_facts
from courtois.services.listings import invitation_detail
from courtois.services.members import register_member
from courtois.services.recipients import unsubscribe
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import complaints, recipients, webhook_events


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhooks on (to a port nobody listens on): events are written only then, and some
    of these tests read them."""
    return dataclasses.replace(
        settings, webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec-0123456789abcdef"
    )


__all__ = ["postgres_database"]  # the fixture, shared with test_cli

DATA = Path(__file__).resolve().parents[1] / "data" / "bounces" / "bounces"
UNDO = timedelta(minutes=10)
BO, CY = "bo@example.com", "cy@example.net"


def bounce_for(sample: str, sample_address: str, address: str) -> BounceReport:
    """A real sample, rewritten so that it is about `address`, then classified."""
    raw = (DATA / sample).read_bytes().replace(sample_address.encode(), address.encode())
    return classify(raw, sample)


def recipient_row(ctx: Context, address: str) -> Row[Any]:
    (row,) = rows(ctx, recipients, recipients.c.digest == ctx.digest_email(address))
    return row


def no_address_in_ledger(ctx: Context) -> None:
    for _, payload in ledger_events(ctx):
        assert "@" not in json.dumps(payload)


def sent_invitation(ctx: Context, member: str, email: str, at: datetime = T0) -> str:
    """Invite and let the worker send it; the invitation's id."""
    answer = by_email(send_invites(ctx, member, [email], at))
    run_pass(ctx, at + UNDO, MemoryTransport())
    invitation_id = str(answer[email]["id"])
    assert invitation(ctx, invitation_id).state == "sent"
    return invitation_id


def test_a_hard_bounce_suppresses_and_later_invitations_are_refused(ctx: Context) -> None:
    add_members(ctx)
    sent = sent_invitation(ctx, "ana", BO)
    report = bounce_for("lhost-gmail-01.eml", "userunknown@example.jp", BO.upper())
    assert report.kind == "hard_bounce"

    now = T0 + timedelta(hours=1)
    result = apply_bounce(ctx, report, now)
    assert (result["suppressed"], result["bounced"], result["invalid"]) == (1, 1, 0)
    row = recipient_row(ctx, BO)
    assert (row.suppressed_reason, row.suppressed_at, row.unsubscribed_at) == (
        "hard-bounce",
        now,
        None,
    )
    bounced = invitation(ctx, sent)
    assert (bounced.state, bounced.address) == ("bounced", None)

    # Another address opted out: to the member, a bounce and an opt-out look the same
    # (invariant 11); the stored decisions say which it was.
    opted_out = "cy@example.org"
    unsubscribe(ctx, ctx.digest_email(opted_out), now)
    answers = by_email(send_invites(ctx, "bruno", [BO, opted_out], T0 + timedelta(days=30)))
    later = answers[BO]
    assert later["status"] == "blocked"
    assert later["decision"] == answers[opted_out]["decision"]
    verdicts = {v["rule"]: (v["outcome"], v["reason"]) for v in later["decision"]["verdicts"]}
    assert verdicts["recipient-available"] == ("deny", "unavailable")
    assert "not-suppressed" not in verdicts
    stored = {v["rule"]: v["outcome"] for v in verdicts_of(ctx, later["id"])[0]}
    assert (stored["not-suppressed"], stored["not-unsubscribed"]) == ("deny", "allow")

    events = [e for e, p in ledger_events(ctx) if e == "recipient.suppressed"]
    assert events == ["recipient.suppressed"]
    no_address_in_ledger(ctx)

    again = apply_bounce(ctx, report, now + timedelta(days=1))
    assert (again["suppressed"], again["already_suppressed"]) == (0, 1)
    assert recipient_row(ctx, BO).suppressed_at == now
    assert [e for e, _ in ledger_events(ctx)].count("recipient.suppressed") == 1


def test_a_hard_bounce_stops_what_is_still_scheduled(ctx: Context) -> None:
    add_members(ctx)
    sent = sent_invitation(ctx, "ana", CY)
    later = T0 + UNDO + timedelta(minutes=1)
    waiting = by_email(send_invites(ctx, "bruno", [CY], later))[CY]
    assert waiting["status"] == "scheduled"
    report = bounce_for("lhost-postfix-16.eml", "kijitora@example.go.jp", CY)
    assert report.kind == "hard_bounce"

    result = apply_bounce(ctx, report, later + timedelta(minutes=1))
    assert (result["bounced"], result["blocked"], result["cancelled"]) == (1, 1, 1)
    assert (invitation(ctx, sent).state, invitation(ctx, sent).address) == ("bounced", None)
    row = invitation(ctx, waiting["id"])
    assert (row.state, row.address) == ("blocked", None)
    assert [m.state for m in messages_of(ctx, waiting["id"])] == ["cancelled"]
    transport = MemoryTransport()
    run_pass(ctx, later + timedelta(days=30), transport)
    assert transport.sent == []
    assert CY not in all_stored_text(ctx)
    no_address_in_ledger(ctx)


def test_a_soft_bounce_or_an_auto_reply_changes_nothing(ctx: Context) -> None:
    add_members(ctx)
    sent_invitation(ctx, "ana", BO)
    before = counts(ctx, EVERY_TABLE)
    soft = bounce_for("lhost-yahoo-02.eml", "mailboxfull@example.jp", BO)
    assert (soft.kind, [r.hard for r in soft.recipients]) == ("soft_bounce", [False])
    auto = bounce_for("rfc3834-01.eml", "kijitora@example.net", BO)
    assert auto.kind == "auto_reply"
    for report in (soft, auto):
        result = apply_bounce(ctx, report, T0 + timedelta(hours=1))
        assert result["kind"] == report.kind
        assert not any(v for k, v in result.items() if k != "kind")
    assert counts(ctx, EVERY_TABLE) == before
    row = recipient_row(ctx, BO)
    assert (row.suppressed_reason, row.suppressed_at) == (None, None)


def test_a_user_unknown_not_said_at_rcpt_to_suppresses_nothing(ctx: Context) -> None:
    # "550 <a@b>: User unknown" with neither the SMTP command nor an X.1 code: a filter may
    # have said it about the message. The same words at RCPT TO do suppress.
    add_members(ctx)
    sent_invitation(ctx, "ana", BO)
    sent_invitation(ctx, "ana", CY)
    before = counts(ctx, EVERY_TABLE)
    filtered = bounce_for("lhost-postfix-07.eml", "kijitora@user.example.or.jp", BO)
    assert (filtered.kind, [r.hard for r in filtered.recipients]) == ("soft_bounce", [False])
    result = apply_bounce(ctx, filtered, T0 + timedelta(hours=1))
    assert not any(v for k, v in result.items() if k != "kind")
    assert counts(ctx, EVERY_TABLE) == before
    assert recipient_row(ctx, BO).suppressed_reason is None
    at_rcpt = bounce_for("lhost-yahoo-05.eml", "kijitora@example.co.jp", CY)
    assert (at_rcpt.kind, [r.hard for r in at_rcpt.recipients]) == ("hard_bounce", [True])
    apply_bounce(ctx, at_rcpt, T0 + timedelta(hours=1))
    assert recipient_row(ctx, CY).suppressed_reason == "hard-bounce"


def test_a_complaint_without_our_message_id_counts_against_the_member_who_sent_last(
    ctx: Context,
) -> None:
    add_members(ctx)
    sent_invitation(ctx, "ana", CY)
    # The per-recipient quota spaces the second member's invitation by two weeks.
    sent_invitation(ctx, "bruno", CY, T0 + timedelta(days=20))
    # Sent from our address, under a Message-ID a relay rewrote: found by the address.
    report = classify(
        (DATA / "arf-22.eml")
        .read_bytes()
        .replace(b"kijitora@example.com", CY.encode())
        .replace(b"sironeko@example.com", b"invitations@localhost"),
        "arf-22.eml",
    )
    assert (report.kind, [r.address for r in report.recipients]) == ("complaint", [CY])

    now = T0 + timedelta(days=21)
    result = apply_bounce(ctx, report, now)
    assert (result["suppressed"], result["complaints"]) == (1, 1)
    (complaint,) = rows(ctx, complaints)
    assert (complaint.member_id, complaint.recipient_digest, complaint.at) == (
        "bruno",
        ctx.digest_email(CY),
        now,
    )
    assert recipient_row(ctx, CY).suppressed_reason == "complaint"
    with ctx.engine.connect() as connection:
        assert sender_facts(connection, "bruno", now).complaints_90d == 1
        assert sender_facts(connection, "ana", now).complaints_90d == 0
        # Read together, as a worker's batch reads its members: the same facts each.
        together = senders_facts(connection, ["ana", "bruno", "nobody"], now)
        assert together == {
            member: sender_facts(connection, member, now) for member in ("ana", "bruno", "nobody")
        }
        assert (together["ana"].sent_90d, together["bruno"].sent_90d) == (1, 1)
        assert together["nobody"] == SenderFacts()

    # The same report twice counts once.
    assert apply_bounce(ctx, report, now + timedelta(hours=1))["complaints"] == 0
    assert len(rows(ctx, complaints)) == 1
    no_address_in_ledger(ctx)


def our_id(ctx: Context, invitation_id: str) -> str:
    """The Message-ID of the email that carried this invitation (no brackets)."""
    (message,) = messages_of(ctx, invitation_id)
    return f"{message.carried_by or message.id}@localhost"


def charged(ctx: Context) -> list[tuple[str, str]]:
    """Who was charged a complaint, about whom (member, digest), in order."""
    return sorted((c.member_id, c.recipient_digest) for c in rows(ctx, complaints))


def test_a_complaint_is_charged_to_the_member_whose_email_was_reported(ctx: Context) -> None:
    add_members(ctx)
    anas = sent_invitation(ctx, "ana", CY)
    sent_invitation(ctx, "bruno", CY, T0 + timedelta(days=20))
    # Ana's email is reported, after Bruno's left.
    report = classify(arf("abuse", CY, CY, our_id(ctx, anas)), "arf")
    result = apply_bounce(ctx, report, T0 + timedelta(days=21))
    assert (result["suppressed"], result["complaints"]) == (1, 1)
    assert charged(ctx) == [("ana", ctx.digest_email(CY))]
    no_address_in_ledger(ctx)


def test_a_redacted_complaint_is_known_by_our_message_id(ctx: Context) -> None:
    add_members(ctx)
    anas = sent_invitation(ctx, "ana", CY)
    sent_invitation(ctx, "bruno", BO)
    redacted = "redacted@dest.example"
    report = classify(arf("abuse", None, redacted, our_id(ctx, anas)), "arf")
    assert [r.address for r in report.recipients] == [redacted]
    result = apply_bounce(ctx, report, T0 + timedelta(hours=1))
    assert (result["suppressed"], result["complaints"]) == (1, 1)
    assert recipient_row(ctx, CY).suppressed_reason == "complaint"
    assert recipient_row(ctx, BO).suppressed_reason is None
    assert rows(ctx, recipients, recipients.c.digest == ctx.digest_email(redacted)) == []
    assert charged(ctx) == [("ana", ctx.digest_email(CY))]


def test_a_complaint_about_someone_elses_message_changes_nothing(ctx: Context) -> None:
    add_members(ctx)
    sent_invitation(ctx, "ana", CY)
    before = counts(ctx, EVERY_TABLE)
    raw = arf("abuse", CY, CY, "promo-1@shop.example", "news@shop.example")
    result = apply_bounce(ctx, classify(raw, "arf"), T0 + timedelta(hours=1))
    assert (result["not_ours"], result["suppressed"], result["complaints"]) == (1, 0, 0)
    assert counts(ctx, EVERY_TABLE) == before
    assert charged(ctx) == []


def test_a_complaint_about_a_digest_charges_every_member_it_carried(ctx: Context) -> None:
    add_members(ctx)
    first = by_email(send_invites(ctx, "ana", [CY], T0))[CY]["id"]
    second = by_email(send_invites(ctx, "bruno", [CY], T0 + timedelta(minutes=1)))[CY]["id"]
    run_pass(ctx, T0 + UNDO + timedelta(minutes=2), MemoryTransport())
    assert {invitation(ctx, i).state for i in (first, second)} == {"sent"}
    assert our_id(ctx, first) == our_id(ctx, second)  # one email carried both
    report = classify(arf("abuse", None, "x@dest.example", our_id(ctx, second)), "arf")
    result = apply_bounce(ctx, report, T0 + timedelta(hours=1))
    assert (result["suppressed"], result["complaints"]) == (1, 2)
    digest = ctx.digest_email(CY)
    assert charged(ctx) == [("ana", digest), ("bruno", digest)]
    events = [p for e, p in ledger_events(ctx) if e == "recipient.suppressed"]
    assert sorted(p["member"] for p in events) == ["ana", "bruno"]


def test_by_address_a_digest_charges_every_member_of_the_last_email(ctx: Context) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [CY], T0)
    send_invites(ctx, "bruno", [CY], T0 + timedelta(minutes=1))
    run_pass(ctx, T0 + UNDO + timedelta(minutes=2), MemoryTransport())
    report = BounceReport("arf", "complaint", (BouncedRecipient(CY, "", False),))
    assert apply_bounce(ctx, report, T0 + timedelta(hours=1))["complaints"] == 2
    assert [m for m, _ in charged(ctx)] == ["ana", "bruno"]


def test_a_forged_bounce_suppresses_only_the_recipients_we_mailed(ctx: Context) -> None:
    add_members(ctx)
    sent_invitation(ctx, "ana", BO)
    waiting = by_email(send_invites(ctx, "ana", [CY], T0 + timedelta(hours=1)))[CY]
    named = [BO, CY, *(f"u{i}@dest.example" for i in range(50))]
    report = BounceReport(
        "forged", "hard_bounce", tuple(BouncedRecipient(a, "5.1.1", True) for a in named)
    )
    result = apply_bounce(ctx, report, T0 + timedelta(hours=1, minutes=1))
    assert (result["suppressed"], result["not_mailed"]) == (1, 51)
    assert recipient_row(ctx, BO).suppressed_reason == "hard-bounce"
    # Invited but not yet mailed: a bounce cannot be about it.
    assert recipient_row(ctx, CY).suppressed_reason is None
    assert invitation(ctx, waiting["id"]).state == "scheduled"
    assert count(ctx, recipients) == 2


def test_forged_complaints_charge_no_member_who_never_mailed_them(ctx: Context) -> None:
    add_members(ctx)
    sent_invitation(ctx, "ana", BO)
    strangers = [f"s{i}@dest.example" for i in range(4)]
    for stranger in strangers:
        raw = arf("abuse", stranger, stranger, "forged-1@localhost")
        result = apply_bounce(ctx, classify(raw, "forged"), T0 + timedelta(hours=1))
        assert (result["not_mailed"], result["complaints"]) == (1, 0)
    assert charged(ctx) == []
    with ctx.engine.connect() as connection:
        assert sender_facts(connection, "ana", T0 + timedelta(hours=1)).complaints_90d == 0


def test_a_hard_bounce_of_our_message_suppresses_its_recipient(ctx: Context) -> None:
    # The returned message names the recipient: the report's own address is a forwarder's.
    add_members(ctx)
    sent = sent_invitation(ctx, "ana", CY)
    raw = (DATA / "lhost-postfix-16.eml").read_bytes()
    raw = raw.replace(b"kijitora@example.go.jp", b"elsewhere@dest.example")
    raw = raw.replace(b"0000000000000.FFFFFF000000@mx0.example.jp", our_id(ctx, sent).encode())
    report = classify(raw, "dsn")
    assert report.kind == "hard_bounce"
    assert f"{our_id(ctx, sent)}" in report.original_ids
    result = apply_bounce(ctx, report, T0 + timedelta(hours=1))
    assert (result["suppressed"], result["bounced"]) == (1, 1)
    assert recipient_row(ctx, CY).suppressed_reason == "hard-bounce"
    assert (
        rows(ctx, recipients, recipients.c.digest == ctx.digest_email("elsewhere@dest.example"))
        == []
    )


def dsn_of(ctx: Context, invitation_id: str) -> BounceReport:
    """A real hard bounce of the email that carried this invitation, quoting its Message-ID
    (the report's own address is a forwarder's)."""
    raw = (DATA / "lhost-postfix-16.eml").read_bytes()
    raw = raw.replace(b"kijitora@example.go.jp", b"elsewhere@dest.example")
    raw = raw.replace(
        b"0000000000000.FFFFFF000000@mx0.example.jp", our_id(ctx, invitation_id).encode()
    )
    report = classify(raw, "dsn")
    assert report.kind == "hard_bounce"
    return report


def states(ctx: Context, *invitation_ids: str) -> list[str]:
    """Each invitation's status as GET /v1/invitations/{id} gives it."""
    return [str(invitation_detail(ctx, i)["status"]) for i in invitation_ids]


def bounced_events(ctx: Context) -> list[str]:
    """The invitations an `invitation.bounced` webhook event was written for."""
    found = rows(ctx, webhook_events, webhook_events.c.type == "invitation.bounced")
    return sorted(str(e.payload["data"]["invitation_id"]) for e in found)


@pytest.mark.parametrize("named", ["first", "last"])
def test_a_hard_bounce_marks_bounced_only_the_invitation_of_the_email_it_names(
    ctx: Context, named: str
) -> None:
    # Ana's email reached the address; weeks later Bruno's is returned (or the other way
    # round): Ana must not learn from Bruno's email that the address is dead (invariant
    # 11), which her own invitation, delivered, does not show either.
    add_members(ctx)
    anas = sent_invitation(ctx, "ana", CY)
    brunos = sent_invitation(ctx, "bruno", CY, T0 + timedelta(days=20))
    bounced, kept = (anas, brunos) if named == "first" else (brunos, anas)
    result = apply_bounce(ctx, dsn_of(ctx, bounced), T0 + timedelta(days=21))
    assert (result["suppressed"], result["bounced"]) == (1, 1)
    assert states(ctx, bounced, kept) == ["bounced", "sent"]
    assert bounced_events(ctx) == [bounced]
    # The recipient is suppressed all the same, and gone from every invitation.
    assert recipient_row(ctx, CY).suppressed_reason == "hard-bounce"
    assert (invitation(ctx, bounced).address, invitation(ctx, kept).address) == (None, None)
    # Reported again, nothing more moves.
    assert apply_bounce(ctx, dsn_of(ctx, bounced), T0 + timedelta(days=22))["bounced"] == 0
    assert states(ctx, bounced, kept) == ["bounced", "sent"]


def test_a_hard_bounce_without_our_message_id_marks_bounced_only_the_last_email(
    ctx: Context,
) -> None:
    add_members(ctx)
    anas = sent_invitation(ctx, "ana", CY)
    brunos = sent_invitation(ctx, "bruno", CY, T0 + timedelta(days=20))
    report = bounce_for("lhost-postfix-16.eml", "kijitora@example.go.jp", CY)
    assert report.kind == "hard_bounce"
    assert apply_bounce(ctx, report, T0 + timedelta(days=21))["bounced"] == 1
    assert states(ctx, anas, brunos) == ["sent", "bounced"]
    assert bounced_events(ctx) == [brunos]


def test_a_hard_bounce_of_a_digest_marks_bounced_every_invitation_it_carried(
    ctx: Context,
) -> None:
    add_members(ctx)
    register_member(ctx, "zed", "zed@example.com", "Zed", "en", T0)
    zeds = sent_invitation(ctx, "zed", CY)
    # Three weeks later, Ana's and Bruno's invitations leave together in one digest.
    later = T0 + timedelta(days=21)
    first = by_email(send_invites(ctx, "ana", [CY], later))[CY]["id"]
    second = by_email(send_invites(ctx, "bruno", [CY], later + timedelta(minutes=1)))[CY]["id"]
    run_pass(ctx, later + UNDO + timedelta(minutes=2), MemoryTransport())
    assert our_id(ctx, first) == our_id(ctx, second)
    result = apply_bounce(ctx, dsn_of(ctx, second), later + timedelta(hours=1))
    assert result["bounced"] == 2
    assert states(ctx, zeds, first, second) == ["sent", "bounced", "bounced"]
    assert bounced_events(ctx) == sorted([first, second])


def test_a_complaint_marks_no_invitation_bounced(ctx: Context) -> None:
    add_members(ctx)
    anas = sent_invitation(ctx, "ana", CY)
    brunos = sent_invitation(ctx, "bruno", CY, T0 + timedelta(days=20))
    report = classify(arf("abuse", CY, CY, our_id(ctx, brunos)), "arf")
    result = apply_bounce(ctx, report, T0 + timedelta(days=21))
    assert (result["suppressed"], result["complaints"], result["bounced"]) == (1, 1, 0)
    assert states(ctx, anas, brunos) == ["sent", "sent"]
    assert bounced_events(ctx) == []


@pytest.mark.parametrize("kind", ["hard_bounce", "complaint"])
def test_a_suppression_leaves_the_address_in_no_stored_answer(ctx: Context, kind: str) -> None:
    add_members(ctx)
    answer = send_invites(ctx, "ana", [BO, CY], T0, key="k-1")
    run_pass(ctx, T0 + UNDO, MemoryTransport())
    assert BO in all_stored_text(ctx)
    report = BounceReport("t", kind, (BouncedRecipient(BO, "5.1.1", kind == "hard_bounce"),))  # type: ignore[arg-type]
    assert apply_bounce(ctx, report, T0 + timedelta(hours=1))["suppressed"] == 1
    assert BO not in all_stored_text(ctx)
    # The answer stays, for a repeat of its request, without the address.
    repeat = send_invites(ctx, "ana", [BO, CY], T0 + timedelta(hours=2), key="k-1")
    assert [i["id"] for i in repeat["invitations"]] == [i["id"] for i in answer["invitations"]]
    assert sorted(str(i["email"]) for i in repeat["invitations"]) == ["None", CY]


@pytest.mark.parametrize("feedback_type", ["auth-failure", "not-spam"])
def test_a_dmarc_failure_or_not_spam_report_changes_nothing(
    ctx: Context, feedback_type: str
) -> None:
    add_members(ctx)
    sent = sent_invitation(ctx, "ana", BO)
    (message,) = messages_of(ctx, sent)
    before = counts(ctx, EVERY_TABLE)
    raw = arf(feedback_type, BO, BO, f"{message.id}@localhost")
    report = classify(raw, "report")
    assert report.kind == "not_a_bounce"
    result = apply_bounce(ctx, report, T0 + timedelta(hours=1))
    assert not any(v for k, v in result.items() if k != "kind")
    assert counts(ctx, EVERY_TABLE) == before
    assert recipient_row(ctx, BO).suppressed_reason is None
    assert invitation(ctx, sent).state == "sent"


def test_a_suppression_never_lifts_an_unsubscribe(ctx: Context) -> None:
    add_members(ctx)
    sent_invitation(ctx, "ana", BO)
    unsubscribed_at = T0 + timedelta(hours=1)
    unsubscribe(ctx, ctx.digest_email(BO), unsubscribed_at)
    report = bounce_for("lhost-gmail-01.eml", "userunknown@example.jp", BO)
    apply_bounce(ctx, report, T0 + timedelta(hours=2))
    row = recipient_row(ctx, BO)
    assert row.unsubscribed_at == unsubscribed_at
    assert row.suppressed_reason == "hard-bounce"


def test_an_unreadable_address_is_counted_and_nothing_is_written(ctx: Context) -> None:
    before = counts(ctx, EVERY_TABLE)
    report = BounceReport("x", "hard_bounce", (BouncedRecipient("not an address", "5.1.1", True),))
    assert apply_bounce(ctx, report, T0)["invalid"] == 1
    assert counts(ctx, EVERY_TABLE) == before


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    """A migrated SQLite database and the environment that points the CLI at it."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    env.update(COURTOIS_SECRET_KEY=SECRET, COURTOIS_DATABASE_URL=url)
    return env


def test_ingest_says_what_changed_not_what_the_report_asked(cli_env: dict[str, str]) -> None:
    """A dead address we never mailed is reported as dead, and said to change nothing:
    not "suppressed", which it is not."""
    runner = CliRunner()
    args = ["ingest", str(DATA / "lhost-gmail-01.eml"), "--now", T0.isoformat()]
    done = runner.invoke(bounces_app, args, env=cli_env)
    assert done.exit_code == 0, done.output
    assert "userunknown@example.jp  5.1.1  dead address" in done.stdout
    assert "-> 1 never mailed by us: nothing changed" in done.stdout
    assert "suppressed" not in done.stdout


def test_ingest_reports_one_json_line_per_message(cli_env: dict[str, str], tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "in.mbox")
    for name in ("lhost-gmail-01.eml", "lhost-yahoo-02.eml"):
        box.add(mailbox.mboxMessage((DATA / name).read_bytes()))
    box.flush()
    box.close()
    single = DATA / "arf-22.eml"
    runner = CliRunner()
    args = ["ingest", str(tmp_path / "in.mbox"), str(single), "--json", "--now", T0.isoformat()]
    done = runner.invoke(bounces_app, args, env=cli_env)
    assert done.exit_code == 0, done.output
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(x["source"], x["kind"]) for x in lines] == [
        (f"{tmp_path / 'in.mbox'}#1", "hard_bounce"),
        (f"{tmp_path / 'in.mbox'}#2", "soft_bounce"),
        (str(single), "complaint"),
    ]
    for line in lines:
        assert set(line) == {"source", "kind", "recipients"}
        for recipient in line["recipients"]:
            assert set(recipient) == {"address", "status", "hard"}
    assert lines[0]["recipients"] == [
        {"address": "userunknown@example.jp", "status": "5.1.1", "hard": True}
    ]
    engine = make_engine(cli_env["COURTOIS_DATABASE_URL"])
    try:
        with engine.connect() as connection:
            stored = dict(
                connection.execute(
                    select(recipients.c.suppressed_reason, recipients.c.suppressed_at)
                ).all()
            )
    finally:
        engine.dispose()
    # Nobody here was ever mailed: every message is reported, and nothing is suppressed.
    assert stored == {}


def test_ingest_refuses_a_missing_path_with_one_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.mbox"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from courtois.cli_bounces import bounces_app; bounces_app()",
            "ingest",
            str(DATA / "lhost-gmail-01.eml"),
            str(missing),
            "--json",
        ],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("courtois: ")
    assert "nowhere.mbox" in line


def _dump(url: str) -> list[str]:
    """Every row of the SQLite database, to see that a refused run changed nothing."""
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        return list(connection.iterdump())


def test_ingest_refuses_a_maildir_with_an_unreadable_message_before_applying_any(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The second message of a Maildir cannot be read (a dangling link, or for a user root
    is not a file without read permission): nothing is applied, not even the first."""
    box = mailbox.Maildir(tmp_path / "box", create=True)
    box.add((DATA / "arf-22.eml").read_bytes())
    box.close()
    (tmp_path / "box" / "new" / "zz-gone").symlink_to(tmp_path / "never-there")
    broken = [tmp_path / "box" / "new" / "zz-gone"]
    if os.geteuid() != 0:
        locked = tmp_path / "box" / "cur" / "zz-locked"
        locked.write_bytes((DATA / "arf-22.eml").read_bytes())
        locked.chmod(0)
        broken.append(locked)
    before = _dump(cli_env["COURTOIS_DATABASE_URL"])
    for args in ([], ["--json"]):
        done = subprocess.run(
            [EXECUTABLE, "bounces", "ingest", str(tmp_path / "box"), *args],
            env=cli_env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert done.stdout == ""
        (line,) = done.stderr.splitlines()
        assert line.startswith("courtois: ")
        assert "cannot be read" in line
        assert any(str(path) in line for path in broken), line
    assert _dump(cli_env["COURTOIS_DATABASE_URL"]) == before


@pytest.mark.parametrize("as_json", [False, True])
def test_ingest_says_a_failed_output_is_the_output(cli_env: dict[str, str], as_json: bool) -> None:
    """`| head` that stops reading, or a full disk: named as what failed, in one line."""
    args = [EXECUTABLE, "bounces", "ingest", *map(str, sorted(DATA.glob("*.eml")))]
    args += ["--json"] if as_json else []
    reader, writer = os.pipe()
    os.close(reader)
    try:
        closed = subprocess.run(
            args, env=cli_env, stdout=writer, stderr=subprocess.PIPE, text=True, check=False
        )
    finally:
        os.close(writer)
    with open("/dev/full", "w", encoding="utf-8") as full:
        filled = subprocess.run(
            args, env=cli_env, stdout=full, stderr=subprocess.PIPE, text=True, check=False
        )
    assert closed.returncode == 1
    assert closed.stderr == "courtois: cannot write the output: Broken pipe\n"
    assert filled.returncode == 1
    assert filled.stderr == "courtois: cannot write the output: No space left on device\n"


# --- the mailto of List-Unsubscribe, fed to `bounces ingest` ---------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database on each engine, that the command line can be pointed at."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ingest.db'}"
    else:
        url = str(request.getfixturevalue("postgres_database"))
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


@pytest.fixture
def store(store_url: str, settings: Settings) -> Iterator[Context]:
    """The use cases' context on that database (the secret the command line is given)."""
    engine = make_engine(store_url)
    yield Context(engine=engine, settings=settings)
    engine.dispose()


def ingest(store_url: str, message: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`courtois bounces ingest` run on one message file, as a mailbox pipe runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    env.update(COURTOIS_SECRET_KEY=SECRET, COURTOIS_DATABASE_URL=store_url)
    return subprocess.run(
        [EXECUTABLE, "bounces", "ingest", str(message), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def said(output: str) -> str:
    """The human-readable output with its spacing folded (long paths wrap its lines)."""
    return " ".join(output.split())


def unsubscribed_at(ctx: Context, address: str) -> datetime | None:
    value: datetime | None = recipient_row(ctx, address).unsubscribed_at
    return value


def test_ingest_honours_the_mailto_of_list_unsubscribe(
    store: Context, store_url: str, tmp_path: Path
) -> None:
    """The platform pipes its mailbox into `bounces ingest`: the mail a recipient's client
    sent for the email's List-Unsubscribe mailto stops everything, as the one-click link
    does. A forged token, and a repeat, change nothing; neither the token nor an address
    is printed, only what happened."""
    add_members(store)
    transport = MemoryTransport()
    send_invites(store, "ana", [BO], T0)
    run_pass(store, T0 + UNDO, transport)
    (email_sent,) = transport.sent
    to, subject = list_unsubscribe_mailto(email_sent.raw)
    token = subject.split()[1]
    request = tmp_path / "request.eml"
    now = T0 + timedelta(hours=1)

    request.write_bytes(unsubscribe_request(BO, to, f"unsubscribe {token}x"))
    before = (all_stored_text(store), ledger_size(store))
    forged = ingest(store_url, request, "--now", now.isoformat())
    assert said(forged.stdout) == (
        f"{request}: unsubscribe -> unknown, forged or expired token: nothing changed"
        " 1 messages: 1 unsubscribe"
    )
    assert (all_stored_text(store), ledger_size(store)) == before
    assert unsubscribed_at(store, BO) is None

    request.write_bytes(unsubscribe_request(BO, to, subject))
    done = ingest(store_url, request, "--now", now.isoformat())
    assert said(done.stdout) == (
        f"{request}: unsubscribe -> unsubscribed from every member 1 messages: 1 unsubscribe"
    )
    assert unsubscribed_at(store, BO) == now
    assert "recipient.unsubscribed" in [event for event, _ in ledger_events(store)]
    later = by_email(send_invites(store, "bruno", [BO], T0 + timedelta(days=1)))
    assert later[BO]["status"] == "blocked"

    stored = (all_stored_text(store), ledger_size(store))
    again = ingest(store_url, request, "--json", "--now", (now + timedelta(days=2)).isoformat())
    assert json.loads(again.stdout) == {
        "source": str(request),
        "kind": "not_a_bounce",
        "recipients": [],
        "unsubscribe_request": "already_unsubscribed",
    }
    assert (all_stored_text(store), ledger_size(store)) == stored
    assert unsubscribed_at(store, BO) == now
    for output in (forged.stdout, done.stdout, again.stdout):
        assert token not in output
        assert BO not in output.lower()
