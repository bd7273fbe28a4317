"""What a member reads of a decision (invariant 11): an unavailable recipient reads alike
whatever made them so, and a quota's hold says nothing of other senders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from courtois.domain.messages import MessageKind
from courtois.policy.chain import CHAIN
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import Candidate, Facts, RecipientFacts, Stage
from courtois.policy.rules import recipient_quota
from courtois.policy.verdict import Decision, Outcome, Verdict
from courtois.services.decisions import (
    AVAILABLE,
    is_unavailable,
    member_schedule,
    member_verdicts,
    public_decision,
)

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=13)
# Why a recipient may be refused, as the private rules tell admins.
PRIVATE_DENIALS = {
    "opted out": ("not-unsubscribed", "the recipient unsubscribed from everyone"),
    "stopped this member": ("not-unsubscribed", "the recipient unsubscribed from this member"),
    "hard bounce": ("not-suppressed", "the recipient is suppressed (hard-bounce)"),
    "complaint": ("not-suppressed", "the recipient is suppressed (complaint)"),
}


def decision(private: tuple[str, str] | None, quota: Outcome) -> Decision:
    """A decision of the whole chain: one private rule refusing (or none), the recipient's
    quota saying `quota` (a recipient mailed before is held, one never mailed is not)."""
    verdicts = []
    for rule in CHAIN:
        if private is not None and rule.code == private[0]:
            verdicts.append(Verdict(rule.code, Outcome.DENY, private[1], "unavailable"))
        elif rule.code == recipient_quota.CODE and quota is Outcome.DEFER:
            held = "the recipient's quota is used"
            verdicts.append(Verdict(rule.code, quota, held, recipient_quota.HELD, LATER))
        else:
            verdicts.append(Verdict(rule.code, Outcome.ALLOW, "fine"))
    return Decision(tuple(verdicts))


def test_an_unavailable_recipient_reads_alike_whatever_the_cause_and_the_quota() -> None:
    shown = [
        public_decision(decision(private, quota))
        for private in PRIVATE_DENIALS.values()
        for quota in (Outcome.ALLOW, Outcome.DEFER)
    ]
    assert all(each == shown[0] for each in shown)
    listed = shown[0]["verdicts"]
    assert listed[-1] == {"rule": AVAILABLE, "outcome": "deny", "reason": "unavailable"}
    assert recipient_quota.CODE not in {v["rule"] for v in listed}
    assert shown[0]["outcome"] == "deny"


@pytest.mark.parametrize("cause", sorted(PRIVATE_DENIALS))
def test_unavailable_is_one_question(cause: str) -> None:
    assert is_unavailable(decision(PRIVATE_DENIALS[cause], Outcome.ALLOW))
    assert not is_unavailable(decision(None, Outcome.DEFER))


def test_an_available_recipient_still_shows_every_rule() -> None:
    listed = member_verdicts(
        (v.rule, v.outcome, v.public_reason) for v in decision(None, Outcome.DEFER).verdicts
    )
    assert len(listed) == len(CHAIN) - 1  # the two private rules are one
    assert listed[-1] == {
        "rule": recipient_quota.CODE,
        "outcome": "defer",
        "reason": recipient_quota.HELD,
    }


def test_a_quota_hold_stored_with_the_old_words_reads_as_the_new_ones() -> None:
    """Decisions kept before said "will be grouped with other invitations": someone else
    was mailing that person."""
    (shown,) = member_verdicts(
        [(recipient_quota.CODE, "defer", "will be grouped with other invitations")]
    )
    assert shown["reason"] == recipient_quota.HELD


def test_the_quota_says_nothing_of_other_senders_nor_of_the_day() -> None:
    policy = PolicyConfig()
    candidate = Candidate("bob", "d" * 64, MessageKind.INVITATION, Stage.QUEUE, "i")
    # Another member's email left an hour ago; another's is due tomorrow.
    for recipient in (
        RecipientFacts(slots=(NOW - timedelta(hours=1),)),
        RecipientFacts(slots=(NOW - timedelta(hours=1),), pending=(NOW + timedelta(days=1),)),
    ):
        verdict = recipient_quota.check(candidate, Facts(policy, recipient), NOW)
        assert verdict.outcome is Outcome.DEFER
        assert verdict.public_reason == recipient_quota.HELD
        for telling in ("other", "group", "invitation", "digest"):
            assert telling not in verdict.public_reason
        held = Decision((verdict,))
        assert member_schedule(held, NOW) is None
    free = Decision((Verdict(recipient_quota.CODE, Outcome.ALLOW, "first"),))
    assert member_schedule(free, NOW) == NOW
