"""Each policy rule at its edges, then the chain that runs them all."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from courtois.domain.consent import Consent
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind
from courtois.policy import chain
from courtois.policy.config import PolicyConfig, load_policy
from courtois.policy.facts import (
    Candidate,
    Facts,
    InvitationFacts,
    RecipientFacts,
    SenderFacts,
    Stage,
)
from courtois.policy.rules import (
    consent_covers,
    not_a_member,
    not_already_invited,
    not_suppressed,
    not_unsubscribed,
    recipient_quota,
    reminder_allowed,
    sender_quota,
    strict_eu,
    undo_window,
)
from courtois.policy.verdict import Decision, Outcome, Verdict

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # when the consent was given
NOW = T0 + timedelta(hours=1)  # well past the undo window
ANA = "a" * 64
BO = "b" * 64
KINDS = list(MessageKind)
SEC = timedelta(seconds=1)
DAY = timedelta(days=1)


def make_consent(**changes: Any) -> Consent:
    base = Consent(
        id="c1",
        member_id="m1",
        recipients=frozenset({ANA}),
        kind=MessageKind.INVITATION,
        preview_hash="0" * 64,
        reminders=0,
        text_shown="I agree.",
        ip="192.0.2.1",
        user_agent="pytest",
        given_at=T0,
    )
    return dataclasses.replace(base, **changes)


def cand(
    kind: MessageKind = MessageKind.INVITATION,
    stage: Stage = Stage.QUEUE,
    member: str = "m1",
    recipient: str = ANA,
) -> Candidate:
    return Candidate(member, recipient, kind, stage, invitation_id="inv-1")


def facts(
    policy: PolicyConfig | None = None,
    recipient: RecipientFacts | None = None,
    sender: SenderFacts | None = None,
    invitation: InvitationFacts | None = None,
) -> Facts:
    return Facts(
        policy=policy or PolicyConfig(),
        recipient=recipient or RecipientFacts(),
        sender=sender or SenderFacts(),
        invitation=invitation or InvitationFacts(consent=make_consent()),
    )


def assert_allow(verdict: Verdict, code: str) -> None:
    assert verdict.rule == code
    assert verdict.outcome is Outcome.ALLOW, verdict.reason
    assert verdict.retry_at is None
    assert verdict.reason


def assert_deny(verdict: Verdict, code: str) -> None:
    assert verdict.rule == code
    assert verdict.outcome is Outcome.DENY, verdict.reason
    assert verdict.retry_at is None
    assert verdict.reason
    assert verdict.public_reason


def assert_defer(verdict: Verdict, code: str, retry_at: datetime) -> None:
    assert verdict.rule == code
    assert verdict.outcome is Outcome.DEFER, verdict.reason
    assert verdict.retry_at == retry_at
    assert verdict.public_reason


# --- consent-covers ----------------------------------------------------------------------------

CC = consent_covers.CODE


@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.DIGEST])
def test_consent_covers_allows_a_named_recipient(kind: MessageKind) -> None:
    assert_allow(consent_covers.check(cand(kind), facts(), NOW), CC)


def test_consent_covers_denies_without_consent() -> None:
    verdict = consent_covers.check(cand(), facts(invitation=InvitationFacts()), NOW)
    assert_deny(verdict, CC)


def test_consent_covers_denies_another_members_consent() -> None:
    assert_deny(consent_covers.check(cand(member="m2"), facts(), NOW), CC)


@pytest.mark.parametrize("kind", KINDS)
def test_consent_covers_denies_a_revoked_consent(kind: MessageKind) -> None:
    consent = make_consent(reminders=1, revoked_at=T0 + timedelta(minutes=2))
    verdict = consent_covers.check(cand(kind), facts(invitation=InvitationFacts(consent)), NOW)
    assert_deny(verdict, CC)
    assert verdict.public_reason == "consent revoked"


@pytest.mark.parametrize("kind", KINDS)
def test_consent_covers_denies_an_unnamed_recipient(kind: MessageKind) -> None:
    assert_deny(consent_covers.check(cand(kind, recipient=BO), facts(), NOW), CC)


def test_consent_covers_leaves_reminders_to_reminder_allowed() -> None:
    """A reminder needs the invitation covered; whether it was ticked is another rule's job."""
    verdict = consent_covers.check(cand(MessageKind.REMINDER), facts(), NOW)
    assert_allow(verdict, CC)


# --- strict-eu-no-email -------------------------------------------------------------------------

SE = strict_eu.CODE


@pytest.mark.parametrize("kind", KINDS)
def test_strict_eu_denies_every_platform_email(kind: MessageKind) -> None:
    verdict = strict_eu.check(cand(kind), facts(PolicyConfig(profile="strict-eu")), NOW)
    assert_deny(verdict, SE)
    assert "link" in verdict.public_reason


@pytest.mark.parametrize("kind", KINDS)
def test_balanced_profile_lets_the_platform_send(kind: MessageKind) -> None:
    assert_allow(strict_eu.check(cand(kind), facts(), NOW), SE)


# --- not-a-member -------------------------------------------------------------------------------

NM = not_a_member.CODE


def test_member_recipient_is_denied() -> None:
    verdict = not_a_member.check(cand(), facts(recipient=RecipientFacts(is_member=True)), NOW)
    assert_deny(verdict, NM)


def test_non_member_recipient_is_allowed() -> None:
    assert_allow(not_a_member.check(cand(), facts(), NOW), NM)


# --- not-unsubscribed --------------------------------------------------------------------------

NU = not_unsubscribed.CODE


@pytest.mark.parametrize("kind", KINDS)
def test_unsubscribed_from_everyone_is_denied(kind: MessageKind) -> None:
    recipient = RecipientFacts(unsubscribed_all=True)
    verdict = not_unsubscribed.check(cand(kind), facts(recipient=recipient), NOW)
    assert_deny(verdict, NU)


@pytest.mark.parametrize("kind", KINDS)
def test_unsubscribed_from_this_member_is_denied(kind: MessageKind) -> None:
    recipient = RecipientFacts(blocked_members=frozenset({"m1", "m7"}))
    verdict = not_unsubscribed.check(cand(kind), facts(recipient=recipient), NOW)
    assert_deny(verdict, NU)


def test_unsubscribed_from_another_member_only_is_allowed() -> None:
    recipient = RecipientFacts(blocked_members=frozenset({"m2"}))
    assert_allow(not_unsubscribed.check(cand(), facts(recipient=recipient), NOW), NU)


def test_not_unsubscribed_is_allowed() -> None:
    assert_allow(not_unsubscribed.check(cand(), facts(), NOW), NU)


@pytest.mark.parametrize(
    "recipient",
    [
        RecipientFacts(unsubscribed_all=True),
        RecipientFacts(blocked_members=frozenset({"m1"})),
        RecipientFacts(suppressed="hard-bounce"),
        RecipientFacts(suppressed="complaint"),
    ],
)
def test_member_sees_unavailable_never_why(recipient: RecipientFacts) -> None:
    """Invariant 11: the public reason is 'unavailable', the admin reason says why."""
    f = facts(recipient=recipient)
    verdicts = [not_unsubscribed.check(cand(), f, NOW), not_suppressed.check(cand(), f, NOW)]
    blocking = [v for v in verdicts if v.outcome is Outcome.DENY]
    assert len(blocking) == 1
    assert blocking[0].public_reason == "unavailable"
    for word in ("unsubscri", "bounce", "complaint", "suppress"):
        assert word not in blocking[0].public_reason
    assert any(w in blocking[0].reason for w in ("unsubscribed", "suppressed"))


# --- not-suppressed -----------------------------------------------------------------------------

NS = not_suppressed.CODE


@pytest.mark.parametrize("why", ["hard-bounce", "complaint"])
def test_suppressed_recipient_is_denied(why: str) -> None:
    verdict = not_suppressed.check(cand(), facts(recipient=RecipientFacts(suppressed=why)), NOW)
    assert_deny(verdict, NS)
    assert why in verdict.reason


def test_unsuppressed_recipient_is_allowed() -> None:
    assert_allow(not_suppressed.check(cand(), facts(), NOW), NS)


# --- not-already-invited -------------------------------------------------------------------------

NA = not_already_invited.CODE


@pytest.mark.parametrize("others", [1, 3])
def test_second_invitation_by_the_same_member_is_denied(others: int) -> None:
    invitation = InvitationFacts(consent=make_consent(), other_invitations_by_sender=others)
    verdict = not_already_invited.check(cand(), facts(invitation=invitation), NOW)
    assert_deny(verdict, NA)


def test_first_invitation_is_allowed() -> None:
    assert_allow(not_already_invited.check(cand(), facts(), NOW), NA)


def test_reminder_is_not_a_new_invitation() -> None:
    invitation = InvitationFacts(consent=make_consent(), other_invitations_by_sender=1)
    verdict = not_already_invited.check(
        cand(MessageKind.REMINDER), facts(invitation=invitation), NOW
    )
    assert_allow(verdict, NA)


# --- reminder-allowed ----------------------------------------------------------------------------

RA = reminder_allowed.CODE
SENT_AT = T0 + timedelta(minutes=15)
DUE = SENT_AT + timedelta(days=14)


def reminder_facts(
    *,
    reminders: int = 1,
    sent: int = 0,
    last_sent_at: datetime | None = SENT_AT,
    requested: datetime | None = None,
    policy: PolicyConfig | None = None,
    consent: bool = True,
) -> Facts:
    return facts(
        policy=policy,
        recipient=RecipientFacts(reminder_requested_for=requested),
        invitation=InvitationFacts(
            consent=make_consent(reminders=reminders) if consent else None,
            reminders_sent=sent,
            last_sent_at=last_sent_at,
        ),
    )


@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.DIGEST])
def test_reminder_rule_ignores_other_kinds(kind: MessageKind) -> None:
    assert_allow(reminder_allowed.check(cand(kind), reminder_facts(reminders=0), NOW), RA)


def test_reminder_not_ticked_is_denied() -> None:
    """Silence means stop: the default (unticked) gives no reminder at any time."""
    verdict = reminder_allowed.check(
        cand(MessageKind.REMINDER), reminder_facts(reminders=0), DUE + timedelta(days=60)
    )
    assert_deny(verdict, RA)


def test_reminder_without_consent_is_denied() -> None:
    verdict = reminder_allowed.check(cand(MessageKind.REMINDER), reminder_facts(consent=False), DUE)
    assert_deny(verdict, RA)


def test_reminder_one_second_early_is_deferred_to_the_interval() -> None:
    verdict = reminder_allowed.check(cand(MessageKind.REMINDER), reminder_facts(), DUE - SEC)
    assert_defer(verdict, RA, DUE)


def test_reminder_exactly_at_the_interval_is_allowed() -> None:
    assert_allow(reminder_allowed.check(cand(MessageKind.REMINDER), reminder_facts(), DUE), RA)


def test_tightened_interval_is_respected() -> None:
    policy = PolicyConfig(reminder_min_days=21)
    f = reminder_facts(policy=policy)
    verdict = reminder_allowed.check(cand(MessageKind.REMINDER), f, DUE)
    assert_defer(verdict, RA, SENT_AT + timedelta(days=21))


def test_reminder_cap_reached_is_denied() -> None:
    f = reminder_facts(sent=1)
    verdict = reminder_allowed.check(cand(MessageKind.REMINDER), f, DUE + timedelta(days=30))
    assert_deny(verdict, RA)
    assert "cap" in verdict.reason


def test_member_cannot_tick_more_than_the_cap() -> None:
    """A consent claiming 3 reminders still yields at most the policy's one."""
    f = reminder_facts(reminders=3, sent=1)
    assert_deny(reminder_allowed.check(cand(MessageKind.REMINDER), f, DUE + DAY * 30), RA)


def test_tightened_cap_of_zero_denies_every_reminder() -> None:
    f = reminder_facts(policy=PolicyConfig(reminder_cap=0))
    assert_deny(reminder_allowed.check(cand(MessageKind.REMINDER), f, DUE), RA)


def test_reminder_of_an_unsent_invitation_is_denied() -> None:
    f = reminder_facts(last_sent_at=None)
    assert_deny(reminder_allowed.check(cand(MessageKind.REMINDER), f, DUE), RA)


def test_recipient_requested_reminder_waits_for_the_requested_time() -> None:
    asked = NOW + timedelta(days=30)
    f = reminder_facts(reminders=0, requested=asked)
    assert_defer(reminder_allowed.check(cand(MessageKind.REMINDER), f, asked - SEC), RA, asked)


def test_recipient_requested_reminder_goes_at_the_requested_time() -> None:
    """Even when the member did not tick a reminder: the recipient asked for it."""
    asked = NOW + timedelta(days=3)
    f = reminder_facts(reminders=0, requested=asked)
    assert_allow(reminder_allowed.check(cand(MessageKind.REMINDER), f, asked), RA)
    assert_allow(reminder_allowed.check(cand(MessageKind.REMINDER), f, asked + DAY), RA)


# --- undo-window-elapsed ------------------------------------------------------------------------

UW = undo_window.CODE
UNDO_END = T0 + timedelta(minutes=10)


@pytest.mark.parametrize("kind", [MessageKind.INVITATION, MessageKind.DIGEST])
def test_undo_window_defers_until_it_ends(kind: MessageKind) -> None:
    assert_defer(undo_window.check(cand(kind), facts(), T0), UW, UNDO_END)
    assert_defer(undo_window.check(cand(kind), facts(), UNDO_END - SEC), UW, UNDO_END)
    assert_defer(
        undo_window.check(cand(kind), facts(), UNDO_END - timedelta(microseconds=1)),
        UW,
        UNDO_END,
    )


def test_undo_window_allows_exactly_at_its_end() -> None:
    assert_allow(undo_window.check(cand(), facts(), UNDO_END), UW)
    assert_allow(undo_window.check(cand(), facts(), UNDO_END + SEC), UW)


def test_tightened_undo_window_is_respected() -> None:
    f = facts(policy=PolicyConfig(undo_window_minutes=30))
    assert_defer(undo_window.check(cand(), f, UNDO_END), UW, T0 + timedelta(minutes=30))


def test_undo_window_does_not_apply_to_reminders() -> None:
    assert_allow(undo_window.check(cand(MessageKind.REMINDER), facts(), T0), UW)


def test_undo_window_without_consent_leaves_it_to_consent_covers() -> None:
    assert_allow(undo_window.check(cand(), facts(invitation=InvitationFacts()), T0), UW)


# --- recipient-quota ------------------------------------------------------------------------------

RQ = recipient_quota.CODE


def quota(slots: list[datetime], now: datetime = NOW, policy: PolicyConfig | None = None):
    return recipient_quota.check(cand(), facts(policy, RecipientFacts(slots=tuple(slots))), now)


def test_empty_inbox_is_allowed() -> None:
    assert_allow(quota([]), RQ)


def test_slot_13d23h_ago_defers_until_14_days_after_it() -> None:
    slot = NOW - timedelta(days=13, hours=23)
    assert_defer(quota([slot]), RQ, NOW + timedelta(hours=1))


def test_slot_exactly_14_days_ago_is_allowed() -> None:
    assert_allow(quota([NOW - timedelta(days=14)]), RQ)


def test_scheduled_slot_ahead_reserves_its_window() -> None:
    """A scheduled message 13 days ahead blocks now; one 14 days ahead does not."""
    ahead = NOW + timedelta(days=13)
    assert_defer(quota([ahead]), RQ, ahead + timedelta(days=14))
    assert_allow(quota([NOW + timedelta(days=14)]), RQ)


def test_long_window_with_two_slots_defers() -> None:
    slots = [NOW - timedelta(days=60), NOW - timedelta(days=30)]
    assert_defer(quota(slots), RQ, NOW + timedelta(days=30))


def test_scheduled_slots_ahead_fill_the_long_window_too() -> None:
    """Two messages already reserved in the next 90 days (more than 14 apart) leave no room."""
    ahead = [NOW + timedelta(days=30), NOW + timedelta(days=60)]
    assert_defer(quota(ahead), RQ, ahead[0] + timedelta(days=90))
    around = [NOW - timedelta(days=30), NOW + timedelta(days=30)]
    assert_defer(quota(around), RQ, around[0] + timedelta(days=90))


def test_a_reminder_the_recipient_asked_for_counts_but_is_never_joined() -> None:
    """A scheduled email six days ahead is joined (one digest); a reminder the recipient
    asked for on that day is not (a reminder leaves alone), and holds its window."""
    ahead = NOW + timedelta(days=6)
    joined = RecipientFacts(pending=(ahead,))
    assert_defer(recipient_quota.check(cand(), facts(recipient=joined), NOW), RQ, ahead)
    asked = RecipientFacts(reserved=(ahead,))
    verdict = recipient_quota.check(cand(), facts(recipient=asked), NOW)
    assert_defer(verdict, RQ, ahead + timedelta(days=14))
    assert "digest already due" not in verdict.reason
    both = RecipientFacts(pending=(ahead,), reserved=(ahead,))
    assert_defer(
        recipient_quota.check(cand(), facts(recipient=both), NOW), RQ, ahead + timedelta(days=14)
    )
    # With an email sent 30 days ago, it takes the second of two emails in 90 days.
    sent = NOW - timedelta(days=30)
    full = RecipientFacts(slots=(sent,), reserved=(NOW + timedelta(days=20),))
    at_day_40 = NOW + timedelta(days=40)
    assert_defer(
        recipient_quota.check(cand(), facts(recipient=full), at_day_40),
        RQ,
        sent + timedelta(days=90),
    )


def asked(day: datetime, now: datetime = NOW, **recipient: tuple[datetime, ...]) -> Verdict:
    """The recipient-quota verdict on a reminder the recipient asked for on `day`."""
    facts_ = facts(recipient=RecipientFacts(reminder_requested_for=day, **recipient))
    return recipient_quota.check(cand(MessageKind.REMINDER), facts_, now)


def test_a_reminder_asked_for_keeps_its_day_whatever_is_held() -> None:
    """Sent 30 days ago, another member's invitation held until 6 days from now: the day
    asked, 20 days on, is free of what holds its day, so it is kept; the held invitation
    is the one that waits (it sees the reminder reserved when its time comes)."""
    sent, held = (NOW - timedelta(days=30),), (NOW + timedelta(days=6),)
    day = NOW + timedelta(days=20)
    assert_defer(asked(day, slots=sent, pending=held), RQ, day)
    assert_allow(asked(day, now=day, slots=sent, pending=held), RQ)


def test_a_reminder_asked_for_moves_only_for_what_holds_its_day() -> None:
    sent = NOW - timedelta(days=5)
    # Too soon after the last email: the first instant the short window frees.
    assert_defer(asked(NOW + timedelta(days=3), slots=(sent,)), RQ, sent + timedelta(days=14))
    # Another reminder asked for, two days after the day: three emails within 90 days
    # until 90 days after the one sent, and an hour more, as the other one may leave late.
    other = NOW + timedelta(days=22)
    later = sent + timedelta(days=90) + recipient_quota.LATENESS
    assert_defer(asked(NOW + timedelta(days=20), slots=(sent,), reserved=(other,)), RQ, later)
    # Right before sending, the windows alone count.
    exact = sent + timedelta(days=90)
    sending = RecipientFacts(slots=(sent,), reserved=(other,), reminder_requested_for=exact)
    verdict = recipient_quota.check(
        cand(MessageKind.REMINDER, Stage.SEND), facts(recipient=sending), exact
    )
    assert_allow(verdict, RQ)
    # Not a reminder asked for: the held email is joined as before.
    joined = RecipientFacts(pending=(NOW + timedelta(days=6),))
    assert_defer(
        recipient_quota.check(cand(), facts(recipient=joined), NOW), RQ, NOW + timedelta(days=6)
    )


@settings(max_examples=200, deadline=None)
@given(
    emails=st.lists(st.tuples(st.integers(-200, 200), st.booleans()), max_size=6),
    at=st.integers(-50, 150),
    short_max=st.integers(1, 2),
    long_max=st.integers(1, 4),
    slack_hours=st.sampled_from([0, 1, 5]),
)
def test_first_free_is_the_first_instant_that_fits(
    emails: list[tuple[int, bool]], at: int, short_max: int, long_max: int, slack_hours: int
) -> None:
    """The answer fits both windows (no `limit` + 1 emails, this one among them, within
    less than the window, plus the slack when one of them is reserved) and no instant
    between `at` and it does (checked every hour: emails are whole days apart and the
    slack whole hours, so nothing frees between two hours)."""
    policy = PolicyConfig(recipient_short_max=short_max, recipient_long_max=long_max)
    times = sorted(NOW + timedelta(days=d) for d, _ in emails)
    reserved = frozenset(NOW + timedelta(days=d) for d, kept in emails if kept)
    slack = timedelta(hours=slack_hours)
    start = NOW + timedelta(days=at)

    def fits(t: datetime) -> bool:
        every = sorted([*times, t])
        at = every.index(t)
        for limit, window in ((short_max, policy.short_window), (long_max, policy.long_window)):
            for i in range(max(0, at - limit), min(at, len(every) - 1 - limit) + 1):
                run = every[i : i + limit + 1]
                others = run[:]
                others.remove(t)
                wanted = window + slack if reserved.intersection(others) else window
                if run[-1] - run[0] < wanted:
                    return False
        return True

    free = recipient_quota.first_free(times, start, policy, reserved, slack)
    assert free >= start
    assert fits(free)
    hour = start
    while hour < free:
        assert not fits(hour), hour
        hour += timedelta(hours=1)


def test_the_quota_is_counted_in_any_stretch_of_its_window() -> None:
    """Two emails per 90 days: with emails on days 0 and 90, day 14 is free, though both
    are within 90 days of it (no 90 days hold all three). With emails on days -1 and 88,
    day 0 is not (three within 89 days), nor any day before 102: up to day 89 three would
    fall within less than 90 days, and day 102 is the first 14 days after day 88."""
    first = NOW - timedelta(days=14)
    assert_allow(quota([first, first + timedelta(days=90)]), RQ)
    slots = [NOW - timedelta(days=1), NOW + timedelta(days=88)]
    assert_defer(quota(slots), RQ, NOW + timedelta(days=102))


def test_a_deferral_waits_for_the_first_instant_that_fits() -> None:
    """An email sent 13 days ago and a reminder the recipient asked for on day 80: the
    short window frees tomorrow (days -13, 1 and 80 keep 14 days apart and span more than
    90), so the retry is tomorrow, not 14 days after the reminder, past any expiry."""
    sent = NOW - timedelta(days=13)
    recipient = RecipientFacts(slots=(sent,), reserved=(NOW + timedelta(days=80),))
    verdict = recipient_quota.check(cand(), facts(recipient=recipient), NOW)
    assert_defer(verdict, RQ, sent + timedelta(days=14))
    assert verdict.retry_at is not None
    retried = recipient_quota.check(cand(), facts(recipient=recipient), verdict.retry_at)
    assert_allow(retried, RQ)


def test_long_window_with_one_slot_inside_is_allowed() -> None:
    slots = [NOW - timedelta(days=90), NOW - timedelta(days=30)]
    assert_allow(quota(slots), RQ)


def test_short_and_long_retry_takes_the_later() -> None:
    slots = [NOW - timedelta(days=80), NOW - timedelta(days=10)]
    # Short window frees at -10d+14d = +4d, the long one at -80d+90d = +10d.
    assert_defer(quota(slots), RQ, NOW + timedelta(days=10))


def test_tightened_long_max_of_one() -> None:
    policy = PolicyConfig(recipient_long_max=1)
    slot = NOW - timedelta(days=30)
    assert_defer(quota([slot], policy=policy), RQ, slot + timedelta(days=90))


def test_policy_allowing_no_email_denies() -> None:
    assert_deny(quota([], policy=PolicyConfig(recipient_short_max=0)), RQ)
    assert_deny(quota([], policy=PolicyConfig(recipient_long_max=0)), RQ)


@settings(max_examples=60, deadline=None)
@given(
    offsets=st.lists(
        st.integers(min_value=0, max_value=365 * 24 * 60), min_size=1, max_size=12
    ).map(sorted),
)
def test_following_the_quota_never_crowds_an_inbox(offsets: list[int]) -> None:
    """Invariant 6, end to end: requests from many senders, each retried at its retry_at
    until allowed, never put two emails in 14 days or three in 90."""
    slots: list[datetime] = []
    for offset in offsets:
        at = NOW + timedelta(minutes=offset)
        for _ in range(len(offsets) * 3 + 3):
            verdict = quota(slots, now=at)
            if verdict.outcome is Outcome.ALLOW:
                break
            assert verdict.outcome is Outcome.DEFER
            assert verdict.retry_at is not None
            assert verdict.retry_at > at, "a deferral must move time forward"
            at = verdict.retry_at
        else:
            pytest.fail("the quota never let the message go")
        slots.append(at)
    ordered = sorted(slots)
    for a, b in combinations(ordered, 2):
        assert b - a >= timedelta(days=14)
    for a, _, c in combinations(ordered, 3):
        assert c - a >= timedelta(days=90)


# --- sender-quota ---------------------------------------------------------------------------

SQ = sender_quota.CODE


def sender(
    recent: list[datetime] | None = None, *, policy: PolicyConfig | None = None, **stats: int
):
    # SenderFacts promises recent_messages sorted ascending, as the store gathers them.
    ordered = tuple(sorted(recent or ()))
    return facts(policy=policy, sender=SenderFacts(recent_messages=ordered, **stats))


def spread(count: int, newest: datetime, step: timedelta) -> list[datetime]:
    return [newest - i * step for i in range(count)]


@pytest.mark.parametrize("stage", list(Stage))
def test_under_the_caps_is_allowed(stage: Stage) -> None:
    recent = spread(99, NOW, timedelta(minutes=5))
    assert_allow(sender_quota.check(cand(stage=stage), sender(recent), NOW), SQ)


def test_daily_cap_at_queue_is_denied() -> None:
    recent = spread(100, NOW, timedelta(minutes=5))
    verdict = sender_quota.check(cand(stage=Stage.QUEUE), sender(recent), NOW)
    assert_deny(verdict, SQ)
    assert "daily" in verdict.reason


def test_daily_cap_at_send_is_deferred_until_the_oldest_leaves_the_day() -> None:
    recent = spread(100, NOW, timedelta(minutes=5))
    verdict = sender_quota.check(cand(stage=Stage.SEND), sender(recent), NOW)
    assert_defer(verdict, SQ, min(recent) + DAY)
    # And at that time the day holds 99: it may go.
    later = min(recent) + DAY
    assert_allow(sender_quota.check(cand(stage=Stage.SEND), sender(recent), later), SQ)


def test_day_boundary_is_exclusive_of_exactly_24h_ago() -> None:
    at_edge = [NOW - DAY] * 100
    assert_allow(sender_quota.check(cand(), sender(at_edge), NOW), SQ)
    just_inside = [NOW - DAY + SEC] * 100
    assert_deny(sender_quota.check(cand(), sender(just_inside), NOW), SQ)


def test_messages_stamped_after_now_count() -> None:
    """A request that read the clock a moment before another, and took the member's lock
    after it, finds the other's messages stamped after its `now`: they fill the cap too."""
    assert_deny(sender_quota.check(cand(), sender([NOW + SEC] * 100), NOW), SQ)
    assert_allow(sender_quota.check(cand(), sender([NOW + SEC] * 99), NOW), SQ)


def weekly_full() -> list[datetime]:
    # 500 messages between 2 and about 5.5 days ago: none today, the week full.
    return spread(500, NOW - timedelta(days=2), timedelta(minutes=10))


def test_weekly_cap_at_queue_is_denied() -> None:
    verdict = sender_quota.check(cand(stage=Stage.QUEUE), sender(weekly_full()), NOW)
    assert_deny(verdict, SQ)
    assert "weekly" in verdict.reason


def test_weekly_cap_at_send_is_deferred_until_the_oldest_leaves_the_week() -> None:
    recent = weekly_full()
    verdict = sender_quota.check(cand(stage=Stage.SEND), sender(recent), NOW)
    assert_defer(verdict, SQ, min(recent) + timedelta(days=7))


def test_one_under_the_weekly_cap_is_allowed() -> None:
    assert_allow(sender_quota.check(cand(), sender(weekly_full()[:499]), NOW), SQ)


@pytest.mark.parametrize("stage", list(Stage))
def test_reminders_do_not_count_against_the_caps(stage: Stage) -> None:
    recent = spread(100, NOW, timedelta(minutes=5))
    verdict = sender_quota.check(cand(MessageKind.REMINDER, stage), sender(recent), NOW)
    assert_allow(verdict, SQ)


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("sent", [0, 10, 999])
def test_one_early_complaint_does_not_pause_a_new_sender(stage: Stage, sent: int) -> None:
    """Below complaint_min_denominator the rate is taken over 1000: 1/1000 is not above."""
    f = sender(sent_90d=sent, complaints_90d=1)
    assert_allow(sender_quota.check(cand(stage=stage), f, NOW), SQ)


def test_complaints_above_the_pause_rate_deny_at_queue() -> None:
    f = sender(sent_90d=10, complaints_90d=2)  # 2/1000 = 0.2%
    verdict = sender_quota.check(cand(stage=Stage.QUEUE), f, NOW)
    assert_deny(verdict, SQ)
    assert verdict.public_reason == "sending paused"


def test_complaints_above_the_pause_rate_defer_a_day_at_send() -> None:
    f = sender(sent_90d=10, complaints_90d=2)
    verdict = sender_quota.check(cand(stage=Stage.SEND), f, NOW)
    assert_defer(verdict, SQ, NOW + DAY)
    assert verdict.public_reason == "sending paused"


def test_exactly_the_stop_rate_only_pauses() -> None:
    f = sender(sent_90d=1000, complaints_90d=3)  # exactly 0.3%: not above
    assert_defer(sender_quota.check(cand(stage=Stage.SEND), f, NOW), SQ, NOW + DAY)


@pytest.mark.parametrize("stage", list(Stage))
def test_complaints_above_the_stop_rate_deny_at_both_stages(stage: Stage) -> None:
    f = sender(sent_90d=10, complaints_90d=4)  # 4/1000 = 0.4%
    verdict = sender_quota.check(cand(stage=stage), f, NOW)
    assert_deny(verdict, SQ)
    assert verdict.public_reason == "sending stopped"


def test_large_senders_are_measured_over_what_they_sent() -> None:
    assert_allow(sender_quota.check(cand(), sender(sent_90d=5000, complaints_90d=5), NOW), SQ)
    paused = sender_quota.check(cand(), sender(sent_90d=5000, complaints_90d=6), NOW)
    assert paused.public_reason == "sending paused"
    stopped = sender_quota.check(cand(), sender(sent_90d=5000, complaints_90d=16), NOW)
    assert stopped.public_reason == "sending stopped"


def test_tightened_min_denominator_makes_early_complaints_count() -> None:
    policy = PolicyConfig(complaint_min_denominator=100)
    f = sender(sent_90d=10, complaints_90d=1, policy=policy)  # 1/100 = 1%
    assert sender_quota.check(cand(), f, NOW).public_reason == "sending stopped"


def test_stopped_sender_sends_no_reminder_either() -> None:
    f = sender(sent_90d=1000, complaints_90d=50)  # 5% complaints: far above the stop rate
    verdict = sender_quota.check(cand(MessageKind.REMINDER, Stage.SEND), f, NOW)
    assert verdict.outcome is not Outcome.ALLOW


def test_paused_sender_reminder_waits_a_day() -> None:
    f = sender(sent_90d=1000, complaints_90d=2)  # 0.2%: paused, not stopped
    verdict = sender_quota.check(cand(MessageKind.REMINDER, Stage.SEND), f, NOW)
    assert_defer(verdict, SQ, NOW + DAY)


@pytest.mark.parametrize(
    ("stats", "expected_caps"),
    [
        ({"sent_90d": 19, "accepted_90d": 0}, (100, 500)),  # below the sample: full caps
        ({"sent_90d": 100, "accepted_90d": 20}, (100, 500)),  # at the target
        ({"sent_90d": 100, "accepted_90d": 60}, (100, 500)),  # above: never more than caps
        ({"sent_90d": 100, "accepted_90d": 10}, (50, 250)),  # half the target
        ({"sent_90d": 100, "accepted_90d": 0}, (10, 50)),  # floor at 10%
        ({"sent_90d": 100, "accepted_90d": 20, "declined_90d": 60}, (50, 250)),  # declines
        ({"sent_90d": 100, "accepted_90d": 20, "declined_90d": 50}, (100, 500)),  # at limit
        ({"sent_90d": 100, "accepted_90d": 0, "declined_90d": 90}, (10, 50)),  # floor holds
    ],
)
def test_caps_scale_with_acceptance_and_declines(
    stats: dict[str, int], expected_caps: tuple[int, int]
) -> None:
    assert sender_quota.caps(SenderFacts(**stats), PolicyConfig()) == expected_caps


def test_scaled_daily_cap_is_enforced() -> None:
    stats = {"sent_90d": 100, "accepted_90d": 0}  # daily cap 10
    nine = spread(9, NOW, timedelta(minutes=1))
    ten = spread(10, NOW, timedelta(minutes=1))
    assert_allow(sender_quota.check(cand(), sender(nine, **stats), NOW), SQ)
    assert_deny(sender_quota.check(cand(), sender(ten, **stats), NOW), SQ)


def test_tightened_caps_are_never_exceeded() -> None:
    policy = PolicyConfig(sender_daily_cap=5, sender_weekly_cap=20)
    assert sender_quota.caps(SenderFacts(), policy) == (5, 20)
    assert sender_quota.caps(SenderFacts(sent_90d=100), policy) == (1, 2)


def test_zero_complaint_denominator_is_refused_or_harmless() -> None:
    try:
        policy = load_policy({"complaint_min_denominator": "0"})
    except InvalidInput:
        return  # refusing the value is one fine fix
    verdict = sender_quota.check(cand(), sender(policy=policy), NOW)
    assert verdict.outcome in set(Outcome)


def test_zero_target_acceptance_is_refused_or_harmless() -> None:
    try:
        policy = load_policy({"sender_target_acceptance": 0})
    except InvalidInput:
        return  # refusing the value is one fine fix
    verdict = sender_quota.check(cand(), sender(policy=policy, sent_90d=50, accepted_90d=5), NOW)
    assert verdict.outcome in set(Outcome)


def test_zero_daily_cap_defers_or_denies_at_send() -> None:
    policy = load_policy({"sender_daily_cap": 0, "sender_weekly_cap": 0})
    verdict = sender_quota.check(cand(stage=Stage.SEND), sender(policy=policy), NOW)
    assert verdict.outcome is not Outcome.ALLOW


def test_zero_daily_cap_denies_at_queue() -> None:
    policy = load_policy({"sender_daily_cap": 0, "sender_weekly_cap": 0})
    assert_deny(sender_quota.check(cand(stage=Stage.QUEUE), sender(policy=policy), NOW), SQ)


# --- the chain -----------------------------------------------------------------------------------

EXPECTED_ORDER = [
    "consent-covers",
    "strict-eu-no-email",
    "not-a-member",
    "not-unsubscribed",
    "not-suppressed",
    "not-already-invited",
    "reminder-allowed",
    "undo-window-elapsed",
    "sender-quota",
    "recipient-quota",
]


def test_chain_order_and_codes() -> None:
    assert [rule.code for rule in chain.CHAIN] == EXPECTED_ORDER
    assert set(chain.RULES_BY_CODE) == set(EXPECTED_ORDER)
    for rule in chain.CHAIN:
        assert rule.description


def test_clean_invitation_is_allowed_with_every_verdict_kept() -> None:
    decision = chain.evaluate(cand(), facts(), NOW)
    assert [v.rule for v in decision.verdicts] == EXPECTED_ORDER
    assert all(v.outcome is Outcome.ALLOW for v in decision.verdicts)
    assert decision.outcome is Outcome.ALLOW
    assert decision.allowed
    assert decision.retry_at is None
    assert decision.blocking == ()


def test_nothing_short_circuits() -> None:
    f = facts(
        invitation=InvitationFacts(),
        recipient=RecipientFacts(unsubscribed_all=True, is_member=True),
    )
    decision = chain.evaluate(cand(), f, NOW)
    assert [v.rule for v in decision.verdicts] == EXPECTED_ORDER
    assert {v.rule for v in decision.blocking} == {
        "consent-covers",
        "not-a-member",
        "not-unsubscribed",
    }


def test_deny_beats_defer() -> None:
    f = facts(recipient=RecipientFacts(blocked_members=frozenset({"m1"})))
    decision = chain.evaluate(cand(), f, T0)  # inside the undo window: a defer too
    outcomes = {v.rule: v.outcome for v in decision.verdicts}
    assert outcomes["undo-window-elapsed"] is Outcome.DEFER
    assert outcomes["not-unsubscribed"] is Outcome.DENY
    assert decision.outcome is Outcome.DENY
    assert not decision.allowed


def test_retry_at_is_the_latest_defer() -> None:
    slot = T0 - timedelta(days=3)  # recipient quota frees at T0 + 11 days
    f = facts(recipient=RecipientFacts(slots=(slot,)))
    decision = chain.evaluate(cand(stage=Stage.SEND), f, T0)
    deferred = {v.rule: v.retry_at for v in decision.blocking}
    assert deferred == {
        "undo-window-elapsed": T0 + timedelta(minutes=10),
        "recipient-quota": slot + timedelta(days=14),
    }
    assert decision.outcome is Outcome.DEFER
    assert decision.retry_at == slot + timedelta(days=14)


def test_change_between_queue_and_send_wins() -> None:
    """Invariant 7: allowed when queued, denied at send time after an unsubscribe."""
    queued = chain.evaluate(cand(stage=Stage.QUEUE), facts(), NOW)
    assert queued.allowed
    later = facts(recipient=RecipientFacts(unsubscribed_all=True))
    sent = chain.evaluate(cand(stage=Stage.SEND), later, NOW + timedelta(minutes=5))
    assert sent.outcome is Outcome.DENY


def test_ticked_reminder_goes_through_the_chain_at_its_time() -> None:
    f = reminder_facts(sent=0)
    early = chain.evaluate(cand(MessageKind.REMINDER, Stage.SEND), f, DUE - SEC)
    assert early.outcome is Outcome.DEFER
    assert early.retry_at == DUE
    assert chain.evaluate(cand(MessageKind.REMINDER, Stage.SEND), f, DUE).allowed


def test_unticked_reminder_is_denied_by_the_chain() -> None:
    f = reminder_facts(reminders=0)
    decision = chain.evaluate(cand(MessageKind.REMINDER, Stage.SEND), f, DUE)
    assert decision.outcome is Outcome.DENY
    assert [v.rule for v in decision.blocking] == ["reminder-allowed"]


def test_strict_eu_profile_blocks_through_the_chain() -> None:
    decision = chain.evaluate(cand(), facts(PolicyConfig(profile="strict-eu")), NOW)
    assert decision.outcome is Outcome.DENY
    assert [v.rule for v in decision.blocking] == ["strict-eu-no-email"]


def _v(outcome: Outcome, retry_at: datetime | None = None, rule: str = "r") -> Verdict:
    return Verdict(rule, outcome, "because", "public", retry_at)


def test_decision_combination_rules() -> None:
    late, early = NOW + DAY, NOW + SEC
    defer_only = Decision((_v(Outcome.ALLOW), _v(Outcome.DEFER, early), _v(Outcome.DEFER, late)))
    assert defer_only.outcome is Outcome.DEFER
    assert defer_only.retry_at == late
    assert not defer_only.allowed
    with_deny = Decision((_v(Outcome.DEFER, late), _v(Outcome.DENY), _v(Outcome.ALLOW)))
    assert with_deny.outcome is Outcome.DENY
    assert [v.outcome for v in with_deny.blocking] == [Outcome.DEFER, Outcome.DENY]
    assert Decision((_v(Outcome.ALLOW), _v(Outcome.ALLOW))).allowed


def test_decision_as_dict() -> None:
    decision = Decision((_v(Outcome.ALLOW, rule="a"), _v(Outcome.DEFER, NOW, rule="b")))
    assert decision.as_dict() == {
        "allowed": False,
        "outcome": "defer",
        "verdicts": [
            {
                "rule": "a",
                "outcome": "allow",
                "reason": "because",
                "public_reason": "public",
                "retry_at": None,
            },
            {
                "rule": "b",
                "outcome": "defer",
                "reason": "because",
                "public_reason": "public",
                "retry_at": NOW.isoformat(),
            },
        ],
    }


@pytest.mark.parametrize("rule", chain.CHAIN, ids=lambda rule: rule.code)
def test_rules_are_pure(rule) -> None:
    """Same inputs, same verdict: nothing reads a clock or state of its own."""
    f = reminder_facts()
    for kind in KINDS:
        assert rule.check(cand(kind), f, DUE) == rule.check(cand(kind), f, DUE)
