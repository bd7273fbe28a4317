"""The last look before handing an email to SMTP (`policy.hand_off`) and the slice size."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from courtois.domain.messages import MessageKind
from courtois.policy.facts import Candidate, RecipientFacts, Stage
from courtois.policy.hand_off import stopped_since_claim
from courtois.services.hand_off import SLICE_SECONDS, next_slice

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


def test_a_slice_lasts_about_a_second_at_the_relays_pace_and_never_less_than_a_round() -> None:
    assert next_slice(4, 0.004, 4) == int(1000 * SLICE_SECONDS)  # a fast relay: big slices
    assert next_slice(4, 80.0, 4) == 4  # a slow one: one round of the connections
    assert next_slice(0, 0.0, 2) == 2
