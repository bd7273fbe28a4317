"""What holds when a policy is tightened, and what does not.

Each decision taken alone is monotone: on the same facts, a stricter policy never gives a
more permissive outcome (deny < defer < allow). The replay as a whole is not, because
decisions feed the facts of later ones, and this is not a flaw of the replay but of the
world it models: the two tests at the end build, by hand, histories where a stricter policy
sends more (found first by hypothesis, which finds such cases in a few random histories
in a thousand). What does hold of every replay, tested here on random histories: the
simulated world obeys the per-recipient quota of the policy it simulates, replays are
deterministic, and a policy compared with itself shows no difference.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simulate_strategies import TIGHTENABLE, histories, tightenings
from simulate_support import DAY, MINUTE, T0, History, replay

from courtois.domain.consent import Consent
from courtois.domain.messages import MessageKind
from courtois.policy.chain import evaluate
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import (
    Candidate,
    Facts,
    InvitationFacts,
    RecipientFacts,
    SenderFacts,
    Stage,
)
from courtois.policy.verdict import Outcome
from courtois.simulation import events as ev
from courtois.simulation.compare import compare
from courtois.simulation.replay import Replay
from courtois.simulation.world import Message, Recipient

RANK = {Outcome.DENY: 0, Outcome.DEFER: 1, Outcome.ALLOW: 2}
NOW = T0 + 100 * DAY
SLOW = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

offsets = st.integers(-200 * 24 * 60, 200 * 24 * 60).map(lambda m: NOW + timedelta(minutes=m))
past = st.integers(0, 7 * 24 * 60).map(lambda m: NOW - timedelta(minutes=m))


@st.composite
def situations(draw: st.DrawFn) -> tuple[Candidate, Facts]:
    """Any candidate and facts the services could gather (policy set by the caller)."""
    kind = draw(st.sampled_from([MessageKind.INVITATION, MessageKind.REMINDER]))
    stage = draw(st.sampled_from([Stage.QUEUE, Stage.SEND]))
    sent = draw(st.integers(0, 3000))
    accepted = draw(st.integers(0, sent))
    sender = SenderFacts(
        recent_messages=tuple(sorted(draw(st.lists(past, max_size=120)))),
        sent_90d=sent,
        accepted_90d=accepted,
        declined_90d=draw(st.integers(0, sent - accepted)),
        complaints_90d=draw(st.integers(0, 12)),
    )
    recipient = RecipientFacts(
        unsubscribed_all=draw(st.booleans()),
        blocked_members=frozenset(draw(st.sets(st.sampled_from(["ana", "bo"])))),
        suppressed=draw(st.none() | st.just("complaint")),
        is_member=draw(st.booleans()),
        slots=tuple(sorted(draw(st.lists(offsets.filter(lambda t: t <= NOW), max_size=4)))),
        pending=tuple(sorted(draw(st.lists(offsets, max_size=3)))),
        reminder_requested_for=draw(st.none() | offsets),
    )
    consent = Consent(
        "c1",
        draw(st.sampled_from(["ana", "bo"])),
        frozenset({"d1"}),
        MessageKind.INVITATION,
        "",
        draw(st.integers(0, 1)),
        "",
        "",
        "",
        NOW - timedelta(minutes=draw(st.integers(0, 5000))),
        draw(st.none() | st.just(NOW - DAY)),
    )
    invitation = InvitationFacts(
        consent=draw(st.none() | st.just(consent)),
        other_invitations_by_sender=draw(st.integers(0, 1)),
        reminders_sent=draw(st.integers(0, 1)),
        last_sent_at=draw(st.none() | offsets.filter(lambda t: t <= NOW)),
    )
    candidate = Candidate("ana", "d1", kind, stage, "i1")
    return candidate, Facts(PolicyConfig(), recipient, sender, invitation)


@settings(max_examples=1500, deadline=None)
@given(situation=situations(), pair=tightenings())
def test_on_the_same_facts_a_stricter_policy_never_decides_more_permissively(
    situation: tuple[Candidate, Facts], pair: tuple[PolicyConfig, PolicyConfig]
) -> None:
    candidate, facts = situation
    loose, tight = pair
    before = evaluate(candidate, replace(facts, policy=loose), NOW)
    after = evaluate(candidate, replace(facts, policy=tight), NOW)
    assert RANK[after.outcome] <= RANK[before.outcome], (before.blocking, after.blocking)
    for was, now in zip(before.verdicts, after.verdicts, strict=True):
        assert RANK[now.outcome] <= RANK[was.outcome], (was, now)


class Logged(Replay):
    """A replay that keeps every email's time, per recipient."""

    def __init__(self, policy: PolicyConfig) -> None:
        super().__init__(policy, None, timedelta(0))
        self.emails: dict[str, list[datetime]] = defaultdict(list)

    def _deliver(self, recipient: Recipient, allowed: list[Message], now: datetime) -> None:
        self.emails[recipient.digest].append(now)
        super()._deliver(recipient, allowed, now)


@SLOW
@given(events=histories(), pair=tightenings(keys=TIGHTENABLE))
def test_the_simulated_world_keeps_the_simulated_recipient_quota(
    events: list[ev.Event], pair: tuple[PolicyConfig, PolicyConfig]
) -> None:
    for policy in pair:
        world = Logged(policy)
        for event in events:
            world.feed(event)
        world.finish(events[-1][0] if events else None)
        short, most = policy.short_window, policy.recipient_long_max
        if policy.recipient_short_max < 1 or most < 1:
            assert not world.emails
            continue
        for times in world.emails.values():
            assert times == sorted(times)
            assert all(b - a >= short for a, b in pairwise(times))
            spans = zip(times, times[most:], strict=False)
            assert all(b - a >= policy.long_window for a, b in spans)


@SLOW
@given(events=histories(), pair=tightenings())
def test_a_replay_is_deterministic_and_a_policy_against_itself_shows_no_change(
    events: list[ev.Event], pair: tuple[PolicyConfig, PolicyConfig]
) -> None:
    loose, tight = pair
    first = compare(events, loose, tight, idle_after=timedelta(0))
    again = compare(events, loose, tight, idle_after=timedelta(0))
    assert first.current.as_dict() == again.current.as_dict()
    assert first.new.as_dict() == again.new.as_dict()
    same = compare(events, tight, tight, idle_after=timedelta(0))
    assert same.current.as_dict() == same.new.as_dict() == first.new.as_dict()


def test_a_longer_undo_window_can_send_more_email() -> None:
    # Ana invites Cy, withdraws it 11 minutes later, and invites Cy again with a reminder.
    # With the 10-minute window the first invitation had already left, so the second is
    # refused (already invited): one email. With 12 minutes the withdrawal is in time, the
    # second invitation goes, and its reminder too: two emails.
    history = History()
    (first,) = history.invite(T0, "ana", "cy")
    history.add(ev.Withdrawn(T0 + 11 * MINUTE, first))
    history.invite(T0 + 12 * MINUTE, "ana", "cy", reminders=1)
    until = T0 + 30 * DAY
    loose = replay(history.events, PolicyConfig(), until=until)
    tight = replay(history.events, PolicyConfig(undo_window_minutes=12), until=until)
    assert (loose.emails, loose.reminders_sent) == (1, 0)
    assert (tight.emails, tight.reminders_sent) == (2, 1)


def test_a_stricter_inbox_quota_can_let_a_sender_send_more() -> None:
    # Bo's invitation to Cy waits for Cy's quota under the stricter policy, so Cy's
    # complaint (recorded against Bo) concerns mail the simulated world never sent and is
    # not charged: Bo is not paused, and his next invitation goes.
    history = History()
    history.invite(T0, "ana", "cy")
    history.invite(T0 + 15 * DAY, "bo", "cy")
    history.add(ev.Suppressed(T0 + 16 * DAY, "cy", "complaint", "bo", True))
    history.invite(T0 + 17 * DAY, "bo", "dee")
    rates = {"complaint_pause_rate": 0.0005, "complaint_stop_rate": 0.0005}
    loose = replay(history.events, PolicyConfig(**rates), until=T0 + 20 * DAY)
    tight = PolicyConfig(**rates, recipient_short_window_days=30)
    stricter = replay(history.events, tight, until=T0 + 20 * DAY)
    assert (loose.invitations_sent, loose.dropped_complaints) == (2, 0)
    assert (stricter.invitations_sent, stricter.dropped_complaints) == (2, 1)
    assert stricter.rules["sender-quota"][1] < loose.rules["sender-quota"][1]
