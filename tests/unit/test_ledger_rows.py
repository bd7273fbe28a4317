"""What rows a ledger export shows made after the backup, as `rebuild_rows` writes them
again: each invitation under the consent its member gave just before, in its last state
short of the answers re-applied as stops; each email in its last state, with the digest
that carried it and when it was first handed over; a text sent by the member by hand
(strict-eu) as sent; and an entry not as courtois writes it refuses the whole file."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from test_ledger_stops import BO, CY, INV, MSG, MSG2, T0, entries, moved

from courtois.domain.errors import InvalidInput
from courtois.services.ledger_rows import rows_in

CONSENT, INV2 = "0196a0b0-0000-7000-8000-0000000000c1", "0196a0b0-0000-7000-8000-0000000000i2"


def given(recipients: list[str]) -> tuple[str, dict[str, Any]]:
    return (
        "consent.given",
        {
            "consent": CONSENT,
            "member": "ana",
            "recipients": recipients,
            "preview_hash": "f" * 64,
            "reminders": 1,
        },
    )


def decided(
    invitation: str, message: str | None, digest: str, outcome: str, **rules: str
) -> tuple[str, dict[str, Any]]:
    return (
        "decision",
        {
            "invitation": invitation,
            "message": message,
            "member": "ana",
            "recipient": digest,
            "kind": "invitation",
            "stage": "queue",
            "outcome": outcome,
            "rules": rules or {"consent-covers": "allow"},
            "reasons": [],
        },
    )


def invitation_moved(invitation: str, to: str, reason: str) -> tuple[str, dict[str, Any]]:
    payload = {"invitation": invitation, "from": "?", "to": to, "reason": reason}
    return ("invitation.state", payload)


def test_an_invitation_and_its_email_are_read_as_they_last_stood() -> None:
    read = rows_in(
        entries(
            given([BO, CY]),
            decided(INV, MSG, BO, "defer"),
            decided(INV2, MSG2, BO, "defer"),
            moved(MSG, "sending"),
            moved(MSG2, "sending", f"carried by digest {MSG}"),
            moved(MSG, "sent"),
            invitation_moved(INV, "sent", "sent"),
            invitation_moved(INV, "accepted", "the recipient accepted"),
        )
    )
    assert read.consents[CONSENT].recipients == (BO, CY)
    invitation = read.invitations[INV]
    assert (invitation.consent, invitation.state) == (CONSENT, "sent")
    assert invitation.sent_at == T0 + timedelta(minutes=6)
    first, carried = read.messages[MSG], read.messages[MSG2]
    assert (first.state, first.sent_at, first.first_attempt_at) == (
        "sent",
        T0 + timedelta(minutes=5),
        T0 + timedelta(minutes=3),
    )
    assert (carried.state, carried.carried_by, carried.attempts) == ("sending", MSG, 1)
    assert read.carriers() == {MSG}
    assert len(read.entries) == 8


def test_a_text_the_member_sends_by_hand_is_sent_and_a_refusal_is_not() -> None:
    read = rows_in(
        entries(
            given([BO, CY]),
            decided(INV, None, BO, "deny", **{"strict-eu-no-email": "deny"}),
            decided(INV2, None, CY, "deny", **{"not-unsubscribed": "deny"}),
        )
    )
    assert (read.invitations[INV].refused, read.invitations[INV].shared) == (True, True)
    assert (read.invitations[INV2].refused, read.invitations[INV2].shared) == (True, False)
    assert read.messages == {}


@pytest.mark.parametrize(
    "item",
    [
        ("consent.given", {"consent": CONSENT, "member": "ana", "recipients": ["not-a-digest"]}),
        ("consent.given", {"consent": CONSENT, "member": "ana", "recipients": [BO]}),
        decided(INV, MSG, "not-a-digest", "allow"),
        decided(INV, MSG, BO, "maybe"),
    ],
)
def test_an_entry_not_as_courtois_writes_it_refuses_the_file(item: tuple[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=r"entry 10 .* nothing was applied"):
        rows_in(entries(item))
