"""Which entries of a ledger export are stops to re-apply after a restore: the acts, not
their consequences; an email only when its last state says it left, at the place of its
first entry; anything not as courtois writes it refuses the whole file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from courtois.domain.errors import InvalidInput
from courtois.domain.ledger import GENESIS_HASH, LedgerEntry
from courtois.services.ledger_stops import Stop, StopKind, stops_in

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BO, CY = "b" * 64, "c" * 64
INV, MSG, MSG2, MSG3 = (f"0196a0b0-0000-7000-8000-00000000000{n}" for n in range(4))


def entries(*items: tuple[str, dict[str, Any]]) -> list[LedgerEntry]:
    """Entries numbered from 10 (what stops_in reads is past the database's own part)."""
    return [
        LedgerEntry(10 + i, T0 + timedelta(minutes=i), event, payload, GENESIS_HASH, "")
        for i, (event, payload) in enumerate(items)
    ]


def moved(message: str, to: str, reason: str = "x") -> tuple[str, dict[str, Any]]:
    return ("message.state", {"message": message, "from": "?", "to": to, "reason": reason})


def test_acts_are_read_and_their_consequences_are_not() -> None:
    read = stops_in(
        entries(
            ("recipient.unsubscribed", {"recipient": BO, "from": "everyone"}),
            ("invitation.state", {"invitation": INV, "from": "scheduled", "to": "blocked",
                                  "reason": "the recipient unsubscribed"}),
            ("recipient.unsubscribed", {"recipient": CY, "from": "ana"}),
            ("invitation.state", {"invitation": INV, "from": "sent", "to": "withdrawn",
                                  "reason": "withdrawn by the member"}),
            ("invitation.state", {"invitation": INV, "from": "scheduled", "to": "withdrawn",
                                  "reason": "consent revoked"}),
            ("recipient.suppressed", {"recipient": CY, "reason": "complaint", "source": "report",
                                      "member": "ana"}),
            ("recipient.suppressed", {"recipient": BO, "reason": "hard-bounce"}),
            ("consent.revoked", {"consent": INV, "member": "ana"}),
            ("decision", {"recipient": BO}),
        )
    )  # fmt: skip
    assert [(s.seq, s.kind, s.subject, s.member) for s in read] == [
        (10, StopKind.OPTED_OUT, BO, None),
        (12, StopKind.BLOCKED, CY, "ana"),
        (13, StopKind.WITHDRAWN, INV, None),
        (15, StopKind.COMPLAINT, CY, "ana"),
        (16, StopKind.HARD_BOUNCE, BO, None),
        (17, StopKind.REVOKED, INV, "ana"),
    ]
    assert read[3].payload == {
        "recipient": CY,
        "reason": "complaint",
        "source": "report",
        "member": "ana",
    }


def test_an_email_counts_as_left_by_its_last_state_at_the_place_of_its_first() -> None:
    read = stops_in(
        entries(
            moved(MSG, "sending"),
            moved(MSG2, "sending"),
            ("recipient.forgotten", {"recipient": BO}),
            moved(MSG, "sent"),
            moved(MSG2, "scheduled", "retry: 451 try again later"),
            moved(MSG3, "sending"),
            moved(MSG3, "failed"),
        )
    )
    assert read == [
        Stop(
            10,
            T0,
            StopKind.LEFT,
            MSG,
            payload={"first_attempt_at": T0, "carried_by": None, "carrier": False},
        ),
        Stop(12, T0 + timedelta(minutes=2), StopKind.FORGOTTEN, BO),
    ]


@pytest.mark.parametrize(
    "item",
    [
        ("recipient.unsubscribed", {"recipient": "not-a-digest", "from": "everyone"}),
        ("recipient.forgotten", {}),
        ("recipient.suppressed", {"recipient": BO, "reason": "bored"}),
        ("consent.revoked", {"consent": "x" * 80, "member": "ana"}),
        ("member.erased", {"member": "bad id with spaces"}),
        moved("'; drop table messages; --", "sent"),
    ],
)
def test_an_entry_not_as_courtois_writes_it_refuses_the_file(item: tuple[str, Any]) -> None:
    with pytest.raises(InvalidInput, match=r"entry 10 .* nothing was applied"):
        stops_in(entries(item))
