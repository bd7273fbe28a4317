"""The invitation and message state machines: every edge, and every non-edge.

The expected tables are written out here on purpose rather than read from the machines:
changing an edge in src/ must be a deliberate act that also changes this file.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from courtois.domain.errors import Conflict, IllegalTransition
from courtois.domain.invitations import (
    INVITATION_MACHINE,
    OPEN_INVITATION_STATES,
    Invitation,
    InvitationState,
    word_given_while_leaving,
)
from courtois.domain.messages import (
    DELIVERED_OR_MAYBE,
    MESSAGE_MACHINE,
    PENDING_MESSAGE_STATES,
    SETTLED_BY_ARRIVAL,
    MessageState,
    standing,
)

I = InvitationState  # noqa: E741 - short alias for the tables
M = MessageState

EXPECTED_INVITATION_EDGES: dict[InvitationState, set[InvitationState]] = {
    I.DRAFTED: {I.SCHEDULED, I.BLOCKED, I.WITHDRAWN},
    I.SCHEDULED: {I.SENT, I.WITHDRAWN, I.BLOCKED, I.DECLINED, I.EXPIRED, I.BOUNCED},
    I.SENT: {I.ACCEPTED, I.DECLINED, I.EXPIRED, I.WITHDRAWN, I.BLOCKED, I.BOUNCED},
    I.ACCEPTED: set(),
    I.DECLINED: set(),
    I.EXPIRED: set(),
    I.WITHDRAWN: set(),
    I.BLOCKED: set(),
    I.BOUNCED: set(),
}

EXPECTED_MESSAGE_EDGES: dict[MessageState, set[MessageState]] = {
    M.SCHEDULED: {M.SENDING, M.CANCELLED},
    M.SENDING: {M.SENT, M.FAILED, M.UNKNOWN, M.SCHEDULED, M.CANCELLED},
    M.UNKNOWN: {M.SENT, M.FAILED},
    M.SENT: set(),
    M.CANCELLED: set(),
    M.FAILED: set(),
}

MACHINES = [
    pytest.param(INVITATION_MACHINE, InvitationState, EXPECTED_INVITATION_EDGES, id="invitation"),
    pytest.param(MESSAGE_MACHINE, MessageState, EXPECTED_MESSAGE_EDGES, id="message"),
]


def _edges(expected, machine_name):
    return [
        pytest.param(machine_name, a, b, id=f"{machine_name}:{a.value}->{b.value}")
        for a, targets in expected.items()
        for b in sorted(targets)
    ]


def _non_edges(expected, states, machine_name):
    return [
        pytest.param(machine_name, a, b, id=f"{machine_name}:{a.value}-x->{b.value}")
        for a, b in itertools.product(states, repeat=2)
        if b not in expected[a]
    ]


_BY_NAME = {"invitation": INVITATION_MACHINE, "message": MESSAGE_MACHINE}

ALLOWED = _edges(EXPECTED_INVITATION_EDGES, "invitation") + _edges(
    EXPECTED_MESSAGE_EDGES, "message"
)
FORBIDDEN = _non_edges(EXPECTED_INVITATION_EDGES, InvitationState, "invitation") + _non_edges(
    EXPECTED_MESSAGE_EDGES, MessageState, "message"
)


def test_parametrisation_covers_every_pair() -> None:
    """Allowed plus forbidden is the full square of each state set, with no overlap."""
    assert len(ALLOWED) + len(FORBIDDEN) == len(InvitationState) ** 2 + len(MessageState) ** 2
    assert len(ALLOWED) == 3 + 6 + 6 + 2 + 5 + 2


@pytest.mark.parametrize(("machine", "states", "expected"), MACHINES)
def test_table_matches_the_documented_edges(machine, states, expected) -> None:
    assert set(machine.edges) == set(states), "every state must appear in the table"
    assert {k: set(v) for k, v in machine.edges.items()} == expected


@pytest.mark.parametrize(("name", "current", "target"), ALLOWED)
def test_allowed_edge_passes(name: str, current, target) -> None:
    machine = _BY_NAME[name]
    assert machine.can(current, target)
    assert machine.check(current, target) is target


@pytest.mark.parametrize(("name", "current", "target"), FORBIDDEN)
def test_non_edge_raises(name: str, current, target) -> None:
    machine = _BY_NAME[name]
    assert not machine.can(current, target)
    with pytest.raises(IllegalTransition) as caught:
        machine.check(current, target)
    error = caught.value
    assert isinstance(error, Conflict)
    assert error.code == "illegal-transition"
    assert error.details == {"from": current.value, "to": target.value}
    assert current.value in error.message
    assert target.value in error.message
    assert name in error.message


@pytest.mark.parametrize(("machine", "states", "expected"), MACHINES)
def test_final_states_have_no_way_out(machine, states, expected) -> None:
    finals = {s for s in states if not expected[s]}
    assert finals, "each machine has final states"
    for state in states:
        assert machine.is_final(state) is (state in finals)
    for final, target in itertools.product(finals, states):
        with pytest.raises(IllegalTransition):
            machine.check(final, target)


@pytest.mark.parametrize(("machine", "states", "expected"), MACHINES)
def test_no_self_loops(machine, states, expected) -> None:
    for state in states:
        assert not machine.can(state, state)


@pytest.mark.parametrize(
    ("machine", "start", "states"),
    [
        pytest.param(INVITATION_MACHINE, I.DRAFTED, InvitationState, id="invitation"),
        pytest.param(MESSAGE_MACHINE, M.SCHEDULED, MessageState, id="message"),
    ],
)
def test_every_state_is_reachable_from_the_start(machine, start, states) -> None:
    seen = {start}
    frontier = [start]
    while frontier:
        state = frontier.pop()
        for target in machine.edges[state]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    assert seen == set(states)


def test_unknown_message_is_never_sent_again_by_itself() -> None:
    """Invariant 8: an unknown message never goes back to scheduled or sending."""
    for target in (M.SCHEDULED, M.SENDING, M.CANCELLED):
        assert not MESSAGE_MACHINE.can(M.UNKNOWN, target)


def test_a_followed_link_settles_an_email_in_doubt_or_still_being_recorded() -> None:
    """The click proves the email arrived: one `unknown` or still `sending` becomes `sent`
    (an edge of the machine); one sent, cancelled, failed or never claimed is left as is."""
    assert set(SETTLED_BY_ARRIVAL) == {M.SENDING, M.UNKNOWN}
    for state in SETTLED_BY_ARRIVAL:
        assert MESSAGE_MACHINE.can(state, M.SENT)


def test_a_word_given_while_the_email_left_is_met_once_it_is_recorded_sent() -> None:
    """Joined: accepted; forgotten: declined; both: the first word given; neither: still
    waiting. Each is an edge from `sent`, where the word meets it."""
    t0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    t1 = t0 + timedelta(seconds=1)
    assert word_given_while_leaving(None, None) is None
    assert word_given_while_leaving(t0, None) == (I.ACCEPTED, t0)
    assert word_given_while_leaving(None, t0) == (I.DECLINED, t0)
    assert word_given_while_leaving(t0, t1) == (I.ACCEPTED, t0)
    assert word_given_while_leaving(t1, t0) == (I.DECLINED, t0)
    for state in (I.ACCEPTED, I.DECLINED):
        assert INVITATION_MACHINE.can(I.SENT, state)


def test_nothing_goes_back_to_drafted() -> None:
    assert not any(INVITATION_MACHINE.can(state, I.DRAFTED) for state in InvitationState)


def test_open_invitation_states_are_exactly_the_non_final_ones() -> None:
    non_final = {s for s in InvitationState if not INVITATION_MACHINE.is_final(s)}
    assert set(OPEN_INVITATION_STATES) == non_final == {I.DRAFTED, I.SCHEDULED, I.SENT}


@pytest.mark.parametrize("state", list(InvitationState))
def test_invitation_is_open(state: InvitationState) -> None:
    t0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
    invitation = Invitation(
        id="inv-1",
        member_id="m1",
        consent_id="c1",
        recipient_digest="d" * 64,
        address="ana@example.org",
        locale="en",
        state=state,
        created_at=t0,
        expires_at=t0 + timedelta(days=30),
    )
    assert invitation.is_open is (state in {I.DRAFTED, I.SCHEDULED, I.SENT})


def test_quota_counting_states() -> None:
    """What may have left counts against quotas; cancelled and failed messages do not."""
    assert set(DELIVERED_OR_MAYBE) == {M.SENDING, M.SENT, M.UNKNOWN}
    assert set(PENDING_MESSAGE_STATES) == {M.SCHEDULED}


@pytest.mark.parametrize(
    ("emails", "expected"),
    [
        ([], None),
        ([M.SCHEDULED], M.SCHEDULED),
        ([M.SENT, M.SCHEDULED], M.SCHEDULED),
        ([M.UNKNOWN], M.UNKNOWN),
        # A reminder the recipient asked for from the email's link, after it: the email
        # may still be in the inbox unrecorded, and that is what the member must read.
        ([M.UNKNOWN, M.SCHEDULED], M.UNKNOWN),
        ([M.SENT, M.UNKNOWN], M.UNKNOWN),
        ([M.SENT, M.CANCELLED], M.CANCELLED),
    ],
)
def test_an_email_in_doubt_is_where_an_invitation_stands(
    emails: list[MessageState], expected: MessageState | None
) -> None:
    assert standing(emails) is expected
