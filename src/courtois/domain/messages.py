"""Messages: each email an invitation may cause, and their delivery state machine.

At most once (invariant 8): `sending` is committed before the SMTP transaction, and a
message whose worker vanished becomes `unknown`, never scheduled again by itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from courtois.domain.states import StateMachine


class MessageKind(StrEnum):
    """What an email is for."""

    INVITATION = "invitation"
    REMINDER = "reminder"
    DIGEST = "digest"


def leaving_together(kinds: Sequence[MessageKind]) -> list[int]:
    """Which of a recipient's allowed messages (by position, in due order) leave as one
    email. A digest is written as first invitations ("Ana and Bo invited you", each with
    its reminder promised), so a reminder never joins one: it goes alone, and only when no
    first invitation is due, which goes first (a reminder held back waits for the inbox's
    quota, and may never go: silence means stop). The worker and the simulator both claim
    by this."""
    firsts = [i for i, kind in enumerate(kinds) if kind is not MessageKind.REMINDER]
    return firsts or [0]


def kind_as_member_sees(kind: str) -> str:
    """A message's kind as the member it is for may read it: a digest is, to each member
    whose invitation it carried, their invitation email. That it carried another member's
    invitation too would tell them someone else invited the same person at about the same
    time (invariant 11)."""
    return MessageKind.INVITATION.value if kind == MessageKind.DIGEST.value else kind


class MessageState(StrEnum):
    """Where an email stands."""

    SCHEDULED = "scheduled"
    SENDING = "sending"
    SENT = "sent"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"
    FAILED = "failed"


_M = MessageState

MESSAGE_MACHINE: StateMachine[MessageState] = StateMachine(
    "message",
    {
        _M.SCHEDULED: frozenset({_M.SENDING, _M.CANCELLED}),
        # Back to scheduled only after a temporary (4xx) refusal, which proves nothing left;
        # cancelled only by the last look before it is handed to SMTP (`policy.hand_off`).
        _M.SENDING: frozenset({_M.SENT, _M.FAILED, _M.UNKNOWN, _M.SCHEDULED, _M.CANCELLED}),
        # Only a person resolves an unknown message: an admin who checked the logs, or its
        # recipient, whose click on its join link proves it arrived.
        _M.UNKNOWN: frozenset({_M.SENT, _M.FAILED}),
        _M.SENT: frozenset(),
        _M.CANCELLED: frozenset(),
        _M.FAILED: frozenset(),
    },
)

# Why an email is in doubt, as its last reason is stored: its worker vanished mid-send
# (`housekeeping`), the connection broke once the body had gone (the transport's words
# follow, `send_outcomes`), or a restore found it had left after the backup
# (`reapply_stops`). The admin page words each in the reader's language.
LEASE_EXPIRED = "worker lease expired"
OUTCOME_UNKNOWN = "outcome unknown: "
LEFT_AFTER_BACKUP = "left after the backup this database was restored from (ledger entry {seq})"
# Why an email rebuilt after a restore, never handed to the mail server, is cancelled, and
# its invitation, if that email was its first, blocked: the ledger keeps no address to send
# it to (`rebuild_rows`).
REBUILT_UNSENT = "rebuilt after a restore without its address: never sent"
_LEFT_AFTER_BACKUP = re.compile(re.escape(LEFT_AFTER_BACKUP).replace(r"\{seq\}", r"(\d+)"))


def why_in_doubt(reason: str | None) -> tuple[str, str]:
    """A stored reason for doubt as (which of the known ones, its variable part): "lease",
    "no-answer" with the transport's words, "restored" with the ledger entry, or "other"
    with the reason as stored (none: empty)."""
    if reason == LEASE_EXPIRED:
        return "lease", ""
    if reason and reason.startswith(OUTCOME_UNKNOWN):
        return "no-answer", reason[len(OUTCOME_UNKNOWN) :]
    restored = _LEFT_AFTER_BACKUP.fullmatch(reason or "")
    if restored:
        return "restored", restored.group(1)
    return "other", reason or ""


# The states in which an email is settled `sent` by its recipient following one of its
# links, which only that email carried: it arrived, whatever its bookkeeping says. One in
# doubt (`unknown`) nobody recorded; one still `sending` the server has accepted (the click
# proves it reached the inbox) while its worker has not yet written so. Settled at the
# click, the invitation is `sent` before the answer acts on it, so the answer is never
# lost to the worker's later write, which finds the email settled and leaves it alone.
SETTLED_BY_ARRIVAL = frozenset({_M.SENDING, _M.UNKNOWN})


# States that count against quotas: the email left, or may have.
DELIVERED_OR_MAYBE = frozenset({_M.SENDING, _M.SENT, _M.UNKNOWN})
PENDING_MESSAGE_STATES = frozenset({_M.SCHEDULED})


def standing(states: Sequence[MessageState]) -> MessageState | None:
    """Where an invitation's emails (oldest first) stand, in one word for its member: one
    in doubt (`unknown`) wins, since it may have reached the recipient whatever came after
    it (a reminder asked for from its link); otherwise the latest email's state; None
    before there is any."""
    if _M.UNKNOWN in states:
        return _M.UNKNOWN
    return states[-1] if states else None


@dataclass(frozen=True, slots=True)
class Message:
    """One email of an invitation."""

    id: str
    invitation_id: str
    member_id: str
    recipient_digest: str
    kind: MessageKind
    state: MessageState
    scheduled_at: datetime
    attempts: int = 0
