"""The last look before handing an email to SMTP (`policy.hand_off`), and the transport
beginning nothing once a slice's time is up."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from courtois.delivery.smtp_work import Work
from courtois.delivery.transport import NOT_BEGUN, Delivery, Outgoing, SendResult
from courtois.domain.messages import MessageKind
from courtois.policy.facts import Candidate, RecipientFacts, Stage
from courtois.policy.hand_off import stopped_since_claim

NOW = datetime(2026, 3, 1, tzinfo=UTC)
EMAIL = Candidate("ana", "d" * 64, MessageKind.INVITATION, Stage.SEND, "inv-1")


@pytest.mark.parametrize("state", ["scheduled", "sent"])
def test_nothing_new_lets_it_go(state: str) -> None:
    assert stopped_since_claim(EMAIL, RecipientFacts(), state, False, NOW) is None


@pytest.mark.parametrize(
    ("recipient", "state", "revoked", "reason"),
    [
        (RecipientFacts(), "declined", False, "the invitation is declined now"),
        (RecipientFacts(), "blocked", False, "the invitation is blocked now"),
        (RecipientFacts(), "scheduled", True, "the member revoked the consent"),
        (RecipientFacts(is_member=True), "scheduled", False, "the recipient is already a member"),
        (
            RecipientFacts(unsubscribed_all=True),
            "sent",
            False,
            "the recipient unsubscribed from everyone",
        ),
        (
            RecipientFacts(blocked_members=frozenset({"ana"})),
            "sent",
            False,
            "the recipient unsubscribed from this member",
        ),
        (
            RecipientFacts(suppressed="complaint"),
            "scheduled",
            False,
            "the recipient is suppressed (complaint)",
        ),
    ],
)
def test_a_word_given_since_the_claim_stops_it(
    recipient: RecipientFacts, state: str, revoked: bool, reason: str
) -> None:
    assert stopped_since_claim(EMAIL, recipient, state, revoked, NOW) == reason


def test_a_block_of_another_member_does_not_stop_it() -> None:
    other = RecipientFacts(blocked_members=frozenset({"bruno"}))
    assert stopped_since_claim(EMAIL, other, "scheduled", False, NOW) is None


def test_the_transport_begins_nothing_after_the_slice_ends_but_always_its_first() -> None:
    batch = [
        Outgoing(f"m{i}", f"r{i}@example.org", "invitation", ("Ana",), (f"i{i}",), "s", "t")
        for i in range(3)
    ]
    late = Work(batch, 0.0, until=time.monotonic() - 1)
    assert late.take() == 0  # progress, however late
    assert late.take() is None
    late.done(0, Delivery(SendResult.ACCEPTED, 250, "ok"))
    assert [d.begun for d in late.deliveries()] == [True, False, False]
    assert late.deliveries()[1] is NOT_BEGUN
    unbounded = Work(batch, 0.0)
    assert [unbounded.take() for _ in range(4)] == [0, 1, 2, None]
    assert all(d.begun for d in unbounded.deliveries())  # "not attempted", yet begun
