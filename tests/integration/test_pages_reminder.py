""" "Remind me later" from `/why`: one reminder, on a day the recipient picks (1 to 90 days
on), which passes the policy like every other message: now (refused under strict-eu,
postponed by the inbox's quota) and again when the worker sends it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from page_reading import ERROR, box_of, title_of
from pages_site import SENT_AT, Site, deliver, invite_and_deliver, ledger_size, serve
from sqlalchemy import update
from support import (
    T0,
    add_members,
    all_stored_text,
    count,
    invitation,
    ledger_events,
    messages_of,
    rows,
    send_invites,
)

from courtois.services.context import Context
from courtois.services.decisions import expand_verdicts
from courtois.store.tables import decisions, invitations, messages

BO = "bo@example.com"
ASKED_AT = SENT_AT + timedelta(hours=2)
TODAY = SENT_AT.date()


def _remind(site: Site, token: str, day: date | str) -> tuple[int, str]:
    response = site.post(f"/why/{token}", data={"action": "remind", "date": str(day)})
    return response.status_code, response.text


def _reminders(ctx: Context, invitation_id: str) -> list[tuple[str, object]]:
    return [
        (m.state, m.scheduled_at) for m in messages_of(ctx, invitation_id) if m.kind == "reminder"
    ]


def test_one_reminder_on_the_day_asked(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])  # Ana ticked no reminder
    (invitation_id,) = mail.ids
    day = TODAY + timedelta(days=20)
    due = SENT_AT + timedelta(days=20)  # the day asked, at the hour the invitation arrived
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        status, done = _remind(site, mail.tokens.why, day)
        assert status == 200
        assert "One reminder, on March 22, 2026, and nothing after it." in done
        assert "later than the day you picked" not in done
        events, stored = ledger_size(ctx), all_stored_text(ctx)
        assert _remind(site, mail.tokens.why, day) == (200, done)
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
        page = site.get(f"/why/{mail.tokens.why}").text
        assert "We will remind you once, on March 22, 2026." in page
    assert _reminders(ctx, invitation_id) == [("scheduled", due)]
    row = invitation(ctx, invitation_id)
    assert row.remind_at == due
    assert row.expires_at == due + timedelta(days=30)  # the address waits for the answer
    (decision,) = rows(ctx, decisions, decisions.c.kind == "reminder")
    assert (decision.stage, decision.outcome, decision.decided_at) == ("queue", "defer", ASKED_AT)
    verdicts = {v["rule"]: v["outcome"] for v in expand_verdicts(decision.verdicts)}
    assert verdicts["reminder-allowed"] == "defer"
    assert "deny" not in verdicts.values()
    logged = [p for e, p in ledger_events(ctx) if e == "decision" and p["kind"] == "reminder"]
    assert [(p["invitation"], p["stage"], p["outcome"]) for p in logged] == [
        (invitation_id, "queue", "defer")
    ]

    # The worker decides again when it is due, and sends exactly one reminder.
    assert deliver(ctx, due - timedelta(minutes=1)) == []
    (reminder,) = deliver(ctx, due)
    assert (reminder.outgoing.kind, reminder.outgoing.to, reminder.ids) == (
        "reminder",
        BO,
        (invitation_id,),
    )
    # Ana ticked no reminder: the email says the recipient asked for it, not that she did.
    assert reminder.outgoing.subject.startswith("The reminder you asked for: Ana")
    assert "You asked us to remind you of" in " ".join(reminder.outgoing.text.split())
    assert "asked us to send" not in reminder.outgoing.text
    with serve(ctx) as site:
        site.clock.now = due + timedelta(days=1)
        assert (
            "You already had the one reminder you asked for."
            in site.get(f"/why/{reminder.tokens.why}").text
        )
        events = ledger_size(ctx)
        status, again = _remind(site, reminder.tokens.why, TODAY + timedelta(days=30))
        assert status == 200
        assert "No further reminder" in again
        assert ledger_size(ctx) == events
    assert count(ctx, decisions, decisions.c.kind == "reminder") == 2  # queue, then send
    assert deliver(ctx, due + timedelta(days=60)) == []


def test_a_day_too_soon_for_the_inbox_waits_for_its_quota(ctx: Context) -> None:
    """One email per 14 days reaches an inbox: a reminder asked for 3 days on goes at 14."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        status, done = _remind(site, mail.tokens.why, TODAY + timedelta(days=3))
    assert status == 200
    assert "One reminder, on March 16, 2026" in done
    assert "later than the day you picked (March 5, 2026)" in done
    assert _reminders(ctx, invitation_id) == [("scheduled", SENT_AT + timedelta(days=14))]
    assert invitation(ctx, invitation_id).remind_at == SENT_AT + timedelta(days=3)
    assert deliver(ctx, SENT_AT + timedelta(days=13)) == []
    assert [d.outgoing.kind for d in deliver(ctx, SENT_AT + timedelta(days=14))] == ["reminder"]


def test_a_day_out_of_bounds_changes_nothing(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    before, events = all_stored_text(ctx), ledger_size(ctx)
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        for day in (TODAY, TODAY + timedelta(days=91), TODAY - timedelta(days=1), "soon", ""):
            status, text = _remind(site, mail.tokens.why, day)
            assert status == 400, day
            assert "Nothing was changed" in text
        status, text = _remind(site, mail.tokens.why, TODAY + timedelta(days=91))
        assert "Choose a day between March 3, 2026 and May 31, 2026." in text
        assert (all_stored_text(ctx), ledger_size(ctx)) == (before, events)
        # The bounds themselves are accepted.
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=90))[0] == 200
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=1))[0] == 200


def test_the_recipients_day_replaces_the_members_reminder(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO], reminders=1)
    (invitation_id,) = mail.ids
    assert _reminders(ctx, invitation_id) == [("scheduled", SENT_AT + timedelta(days=14))]
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=30))[0] == 200
        # Asking again for another day moves it: still one reminder.
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=40))[0] == 200
    assert sorted(_reminders(ctx, invitation_id), key=str) == sorted(
        [
            ("cancelled", SENT_AT + timedelta(days=14)),
            ("cancelled", SENT_AT + timedelta(days=30)),
            ("scheduled", SENT_AT + timedelta(days=40)),
        ],
        key=str,
    )
    sent = [
        d.outgoing.kind
        for at in (14, 30, 40, 80)
        for d in deliver(ctx, SENT_AT + timedelta(days=at))
    ]
    assert sent == ["reminder"]


def test_strict_eu_refuses_a_reminder(ctx: Context) -> None:
    """No platform email to non-members at all under strict-eu, asked for or not; and the
    link in a hand-sent text, which its member holds too, asks for none in the recipient's
    name: refused before any decision."""
    eu = Context(
        ctx.engine, replace(ctx.settings, policy=replace(ctx.settings.policy, profile="strict-eu"))
    )
    add_members(eu)
    (item,) = send_invites(eu, "ana", [BO], T0)["invitations"]
    assert item["status"] == "sent"
    why = item["share_text"].split("/why/", 1)[1].split()[0]
    with serve(eu) as site:
        site.clock.now = ASKED_AT
        page = site.get(f"/why/{why}").text
        assert 'value="remind"' not in page
        status, done = _remind(site, why, TODAY + timedelta(days=10))
    assert status == 200
    assert "We cannot send you a reminder:" in done
    assert box_of(done, "We cannot send you a reminder:") == ERROR
    assert title_of(done) == "Error: No reminder – Agora"
    assert "This invitation came from the member's own mailbox" in done.replace("&#39;", "'")
    assert "Agora sends no email about it." in done
    assert messages_of(eu, item["id"]) == []
    assert invitation(eu, item["id"]).remind_at is None
    assert rows(eu, decisions, decisions.c.kind == "reminder") == []


def test_reminders_that_meet_in_one_inbox_never_go_as_a_digest_of_invitations(
    ctx: Context,
) -> None:
    """Ana and Bruno both tick the reminder and invite Bo: one digest on day 0. On day 14
    both reminders fall due together. A digest is written as first invitations ("Ana and
    Bruno invited you", a reminder promised), so it would have been the first email again
    under another consent's words: one reminder goes alone, as a reminder; the other waits
    for Bo's quota."""
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0, reminders=1)
    send_invites(ctx, "bruno", [BO], T0, reminders=1)
    (first,) = deliver(ctx, SENT_AT)
    assert first.outgoing.kind == "digest"
    later = deliver(ctx, SENT_AT + timedelta(days=14, minutes=1))
    assert [d.outgoing.kind for d in later] == ["reminder"]
    assert later[0].outgoing.subject.startswith("Reminder: ")
    assert "invited you" not in later[0].outgoing.subject


def test_a_reminder_stopped_before_it_left_is_not_said_received(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=20))[0] == 200
        site.post(f"/why/{mail.tokens.why}", data={"action": "stop-everyone"})
        page = site.get(f"/why/{mail.tokens.why}").text
    assert "You already had the one reminder you asked for." not in page
    assert "The reminder you asked for was stopped before it was sent." in page


def test_the_day_asked_holds_its_place_in_the_inbox(ctx: Context) -> None:
    """Ana's invitation reached Bo; Bruno's, made the next day, waits for Bo's quota (one
    email per 14 days) until day 14. Bo then asks Ana's reminder for day 20: it keeps that
    day. Bruno's may not take the second of Bo's two emails in 90 days on day 14, which
    would have pushed the reminder past its invitation's expiry and cancelled it: it waits
    until the 90 days after Ana's invitation are over."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    send_invites(ctx, "bruno", [BO], T0 + timedelta(days=1))
    assert deliver(ctx, T0 + timedelta(days=1, hours=1)) == []  # held by Bo's quota
    with serve(ctx) as site:
        site.clock.now = SENT_AT + timedelta(days=3)
        status, done = _remind(site, mail.tokens.why, TODAY + timedelta(days=20))
    assert status == 200
    assert "One reminder, on March 22, 2026, and nothing after it." in done
    day_20 = SENT_AT + timedelta(days=20)
    sent = {
        at: [(d.outgoing.kind, d.ids) for d in deliver(ctx, SENT_AT + timedelta(days=at))]
        for at in (14, 15, 20, 34, 60, 89, 90, 91)
    }
    assert sent[14] == sent[15] == []
    assert sent[20] == [("reminder", (invitation_id,))]
    assert sent[34] == sent[60] == sent[89] == []
    assert [kind for kind, _ in sent[90] + sent[91]] == ["invitation"]
    assert _reminders(ctx, invitation_id) == [("sent", day_20)]


def test_a_reminder_asked_for_the_moment_another_invitation_waits_for_leaves_first(
    ctx: Context,
) -> None:
    """Bruno's invitation waits for Bo's quota until day 14, at the hour Ana's reached Bo,
    and Bo asks Ana's reminder for day 14: both fall due at the same instant. The reminder
    leaves (a reminder never rides in a digest, so leaving together would have held it back
    and then past its expiry); Bruno's waits."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    send_invites(ctx, "bruno", [BO], T0 + timedelta(days=1))
    assert deliver(ctx, T0 + timedelta(days=1, hours=1)) == []
    day_14 = SENT_AT + timedelta(days=14)
    bruno = [m for m in rows(ctx, messages) if m.invitation_id != invitation_id]
    assert [(m.kind, m.scheduled_at) for m in bruno] == [("invitation", day_14)]
    with serve(ctx) as site:
        site.clock.now = SENT_AT + timedelta(days=3)
        status, done = _remind(site, mail.tokens.why, TODAY + timedelta(days=14))
    assert status == 200
    assert "One reminder, on March 16, 2026, and nothing after it." in done
    assert _reminders(ctx, invitation_id) == [("scheduled", day_14)]
    assert [(d.outgoing.kind, d.ids) for d in deliver(ctx, day_14)] == [
        ("reminder", (invitation_id,))
    ]
    later = [
        d.outgoing.kind
        for at in (28, 60, 89, 104)
        for d in deliver(ctx, day_14 + timedelta(days=at))
    ]
    assert later == ["invitation"]  # Bruno's, once two emails in 90 days allow it


def test_an_earlier_day_brings_the_expiry_back_with_it(ctx: Context) -> None:
    """Bo asks for day 80, then changes their mind for day 20: the address is kept until
    day 20's reminder had its answer time (30 days), not day 80's (invariant 10); then the
    invitation expires there, its address gone."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=80))[0] == 200
        assert invitation(ctx, invitation_id).expires_at == SENT_AT + timedelta(days=110)
        assert _remind(site, mail.tokens.why, TODAY + timedelta(days=20))[0] == 200
    assert sorted(_reminders(ctx, invitation_id), key=str) == [
        ("cancelled", SENT_AT + timedelta(days=80)),
        ("scheduled", SENT_AT + timedelta(days=20)),
    ]
    assert invitation(ctx, invitation_id).expires_at == SENT_AT + timedelta(days=50)
    assert [d.outgoing.kind for d in deliver(ctx, SENT_AT + timedelta(days=20))] == ["reminder"]
    assert deliver(ctx, SENT_AT + timedelta(days=50)) == []
    row = invitation(ctx, invitation_id)
    assert (row.state, row.address) == ("expired", None)


def test_an_invitation_that_keeps_no_address_offers_no_reminder(ctx: Context) -> None:
    """An open invitation rebuilt without its address after a restore (`reapply-stops`)
    cannot be reminded: no email can be written to it. The page offered it, accepted the
    day, and the worker's reminder then failed as an email it could not write."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    with ctx.engine.begin() as connection:
        connection.execute(
            update(invitations).where(invitations.c.id == invitation_id).values(address=None)
        )
    with serve(ctx) as site:
        site.clock.now = ASKED_AT
        page = site.get(f"/why/{mail.tokens.why}").text
        assert 'value="remind"' not in page
        events = ledger_size(ctx)
        status, done = _remind(site, mail.tokens.why, TODAY + timedelta(days=20))
    assert status == 200
    assert box_of(done, "We cannot send you a reminder:") == ERROR
    assert "Your address is no longer kept for this invitation" in done
    assert _reminders(ctx, invitation_id) == []
    assert invitation(ctx, invitation_id).remind_at is None
    assert ledger_size(ctx) == events
