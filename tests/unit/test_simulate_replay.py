"""The replay on hand-built histories: each service behaviour it mirrors, and the choices
it makes where history cannot say (simulated sends feed quotas, reactions to mail that was
never sent are dropped, the worker runs when the ledger says so)."""

from __future__ import annotations

from simulate_support import DAY, MINUTE, T0, History, replay, verdicts

from courtois.policy.config import PolicyConfig
from courtois.simulation import events as ev

UNDO = 10 * MINUTE


def test_nothing_leaves_in_the_undo_window_and_a_withdrawal_stops_it() -> None:
    history = History()
    kept, withdrawn = history.invite(T0, "ana", "bo", "cy")
    history.add(ev.Withdrawn(T0 + 5 * MINUTE, withdrawn))
    history.passes(T0 + UNDO - MINUTE, T0 + UNDO)
    tally = replay(history.events, idle_after=None)
    assert (tally.requested, tally.invitations_sent, tally.emails) == (2, 1, 1)
    # Queued (two deferrals), then decided again at the pass after the window (one allow).
    assert verdicts(tally, "undo-window-elapsed") == {"allow": 1, "deny": 0, "defer": 2}
    assert tally.waiting == 0
    assert kept


def test_invitations_that_meet_at_one_inbox_leave_as_one_digest() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    history.invite(T0 + MINUTE, "bo", "cy")
    # The worker's next pass comes after both undo windows: both are due together.
    history.passes(T0 + UNDO + 5 * MINUTE)
    tally = replay(history.events, idle_after=None)
    assert (tally.invitations_sent, tally.emails, tally.digests) == (2, 1, 1)
    # On queueing, Bo's invitation was told to join the email already scheduled.
    assert verdicts(tally, "recipient-quota")["defer"] == 1
    # A worker that had run in between would have sent Ana's alone, and Bo's would wait.
    history.passes(T0 + UNDO)
    apart = replay(history.events, idle_after=None)
    assert (apart.invitations_sent, apart.emails, apart.digests, apart.waiting) == (1, 1, 0, 1)


def test_a_wider_recipient_window_defers_the_second_email_longer() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    history.invite(T0 + DAY, "bo", "cy")
    since = T0 + 20 * DAY
    wider = PolicyConfig(recipient_short_window_days=30)
    by_default = replay(history.events, since=since, until=T0 + 60 * DAY)
    widened = replay(history.events, wider, since=since, until=T0 + 60 * DAY)
    # The default quota lets Bo's invitation out after 14 days, before `since`; the wider
    # one after 30, so it is counted from `since` on, and nothing before it is.
    assert (by_default.invitations_sent, widened.invitations_sent) == (0, 1)
    assert (by_default.requested, widened.requested) == (0, 0)


def test_the_simulated_worlds_own_sends_feed_the_quotas() -> None:
    history = History()
    history.invite(T0 - 2 * 60 * MINUTE, "ana", "x1", "x2")
    history.invite(T0, "ana", "cy")
    history.invite(T0 + 2 * MINUTE, "bo", "cy")
    until = T0 + 2 * DAY
    as_is = replay(history.events, until=until)
    capped = replay(history.events, PolicyConfig(sender_daily_cap=2), until=until)
    # As recorded, Ana's email takes Cy's slot and Bo's invitation waits two weeks.
    assert (as_is.emails, as_is.invitations_sent, as_is.waiting) == (3, 3, 1)
    assert verdicts(as_is, "recipient-quota")["defer"] == 2  # queued, then at send
    # With Ana capped at 2 a day, her invitation to Cy is refused,
    # and Bo's goes at once: Cy's inbox saw what the simulated world sent, not history.
    assert verdicts(capped, "sender-quota")["deny"] == 1
    assert (capped.emails, capped.invitations_sent, capped.waiting) == (3, 3, 0)
    assert verdicts(capped, "recipient-quota")["defer"] == 0


def test_an_unsubscribe_from_one_member_stops_only_that_members_mail() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    history.invite(T0, "bo", "dee")
    history.add(ev.Unsubscribed(T0 + MINUTE, "cy", "ana"))
    history.invite(T0 + 2 * MINUTE, "ana", "cy")
    history.invite(T0 + 2 * MINUTE, "bo", "cy")
    tally = replay(history.events, until=T0 + DAY)
    assert tally.invitations_sent == 2  # Bo's two
    assert verdicts(tally, "not-unsubscribed")["deny"] == 1  # Ana's second request
    assert tally.waiting == 0


def test_a_ticked_reminder_follows_unless_the_reminder_cap_forbids_it() -> None:
    history = History()
    history.invite(T0, "ana", "cy", reminders=1)
    until = T0 + 20 * DAY
    ticked = replay(history.events, until=until)
    assert (ticked.invitations_sent, ticked.reminders_sent, ticked.emails) == (1, 1, 2)
    none = replay(history.events, PolicyConfig(reminder_cap=0), until=until)
    assert (none.reminders_sent, none.emails) == (0, 1)
    assert verdicts(none, "reminder-allowed")["deny"] == 1


def test_the_worker_runs_when_the_ledger_shows_it_or_at_due_time_when_idle() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    history.add(ev.Unsubscribed(T0 + 3 * DAY, "someone-else", None))
    # Only recorded passes, and none recorded: the message still waits at the end.
    recorded_only = replay(history.events, idle_after=None)
    assert (recorded_only.emails, recorded_only.waiting) == (0, 1)
    # No recorded pass within 15 minutes of its due time: the worker ran unrecorded.
    idle = replay(history.events, idle_after=15 * MINUTE)
    assert (idle.emails, idle.waiting) == (1, 0)
    history.passes(T0 + DAY)
    assert replay(history.events, idle_after=None).emails == 1


def test_answers_and_complaints_about_mail_never_sent_are_dropped() -> None:
    history = History()
    (sent,) = history.invite(T0, "ana", "cy")
    history.add(
        ev.Answered(T0 + DAY, "never-recorded", True),
        ev.Suppressed(T0 + DAY, "dee", "complaint", "ana", True),
        ev.Answered(T0 + DAY, sent, False),
    )
    tally = replay(history.events)
    assert (tally.dropped_answers, tally.dropped_complaints) == (1, 1)


def test_a_complaint_about_simulated_mail_pauses_the_sender() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    history.add(ev.Suppressed(T0 + DAY, "cy", "complaint", "ana", True))
    history.invite(T0 + 2 * DAY, "ana", "dee")
    strict = PolicyConfig(complaint_pause_rate=0.0005, complaint_stop_rate=0.0005)
    tally = replay(history.events, strict)
    # One complaint over the 1,000-message floor is 0.1%, above the 0.05% set here.
    assert verdicts(tally, "sender-quota")["deny"] == 1
    assert tally.invitations_sent == 1


def test_the_acceptance_rate_of_simulated_sends_scales_the_sender_caps() -> None:
    first = [f"r{i}" for i in range(25)]
    more = [f"s{i}" for i in range(15)]
    history = History()
    sent = history.invite(T0, "ana", *first[:20])
    sent += history.invite(T0 + 2 * DAY, "ana", *first[20:])
    history.invite(T0 + 5 * DAY, "ana", *more)
    ignored = replay(history.events)
    # 25 sent, none accepted: the caps shrink to a tenth (10 a day).
    assert verdicts(ignored, "sender-quota")["deny"] == 5
    for invitation in sent[:10]:
        history.add(ev.Answered(T0 + 3 * DAY, invitation, True))
    welcomed = replay(history.events)
    assert verdicts(welcomed, "sender-quota")["deny"] == 0


def test_counting_starts_at_since_but_the_world_before_it_holds() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    history.invite(T0 + 2 * DAY, "bo", "cy")
    tally = replay(history.events, since=T0 + DAY, until=T0 + 3 * DAY)
    # Only Bo's request is counted, and Cy's email before `since` still defers it.
    assert tally.requested == 1
    assert verdicts(tally, "recipient-quota") == {"allow": 0, "deny": 0, "defer": 1}
    assert tally.emails == 0


def test_an_answer_after_expiry_finds_nothing_open() -> None:
    history = History()
    (invitation,) = history.invite(T0, "ana", "cy")
    history.add(ev.Answered(T0 + 31 * DAY, invitation, True))
    tally = replay(history.events)
    assert (tally.invitations_sent, tally.dropped_answers) == (1, 1)
    longer = replay(history.events, PolicyConfig(invitation_expiry_days=30 + 5))
    assert longer.dropped_answers == 0


def test_under_strict_eu_the_member_shares_the_invitation_and_nothing_is_emailed() -> None:
    history = History()
    history.invite(T0, "ana", "cy", "dee")
    tally = replay(history.events, PolicyConfig(profile="strict-eu"), until=T0 + DAY)
    assert (tally.shared, tally.emails, tally.invitations_sent) == (2, 0, 0)
    assert verdicts(tally, "strict-eu-no-email")["deny"] == 2


def test_a_registered_member_is_no_invitee_and_a_join_accepts_what_was_sent() -> None:
    history = History()
    history.add(ev.BecameMember(T0 - DAY, "bo"))
    history.invite(T0, "ana", "bo", "cy")
    history.add(ev.Joined(T0 + DAY, "cy"))
    history.invite(T0 + 2 * DAY, "dee", "cy")
    tally = replay(history.events)
    assert verdicts(tally, "not-a-member")["deny"] == 2  # Bo, then Cy after joining
    assert tally.invitations_sent == 1


def test_revoking_a_consent_stops_its_unsent_invitations_and_reminders() -> None:
    history = History()
    history.invite(T0, "ana", "cy", reminders=1)
    history.invite(T0, "bo", "dee", reminders=1)
    history.add(ev.Revoked(T0 + 5 * MINUTE, "c3"))  # Bo's consent, inside the undo window
    history.add(ev.Revoked(T0 + DAY, "c1"))  # Ana's, after her invitation left
    tally = replay(history.events, until=T0 + 30 * DAY)
    assert (tally.invitations_sent, tally.reminders_sent, tally.waiting) == (1, 0, 0)


def test_a_reported_hard_bounce_stops_what_waits_and_a_refusal_only_marks() -> None:
    history = History()
    history.invite(T0, "ana", "cy", reminders=1)
    history.add(ev.Suppressed(T0 + DAY, "cy", "hard-bounce", None, True))
    reported = replay(history.events, until=T0 + 30 * DAY)
    assert (reported.reminders_sent, reported.waiting) == (0, 0)
    assert verdicts(reported, "not-suppressed")["deny"] == 0  # nothing was left to refuse
    history.events[-1] = ev.Suppressed(T0 + DAY, "cy", "hard-bounce", None, False)
    refused = replay(history.events, until=T0 + 30 * DAY)
    # The reminder stays scheduled and is refused when due, as the worker does.
    assert verdicts(refused, "not-suppressed")["deny"] == 1
    assert refused.reminders_sent == 0


def test_an_invitation_never_sent_expires_after_the_long_window_and_expiry() -> None:
    history = History()
    history.invite(T0, "ana", "cy")
    # The worker's first pass after the 90 + 30 days an unsent invitation may wait.
    history.passes(T0 + 121 * DAY)
    expired = replay(history.events, idle_after=None)
    assert (expired.emails, expired.waiting) == (0, 0)
    history.events[-1] = ev.WorkerPass(T0 + 119 * DAY)
    assert replay(history.events, idle_after=None).emails == 1
