"""Verdicts and decisions: what each rule said, and what the chain concluded.

Both are built for every rule of every candidate, tens of thousands of times per batch, so
they are immutable tuples and slotted objects rather than frozen dataclasses, whose
construction costs several times more.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import NamedTuple


class Outcome(StrEnum):
    """A rule allows, denies for good, or defers to a later time."""

    ALLOW = "allow"
    DENY = "deny"
    DEFER = "defer"


_ALLOW = Outcome.ALLOW
_DENY = Outcome.DENY


class Verdict(NamedTuple):
    """One rule's answer. `reason` is for admins and the ledger; `public_reason` is what a
    member may see (never why a recipient is unavailable, invariant 11)."""

    rule: str
    outcome: Outcome
    reason: str
    public_reason: str = ""
    retry_at: datetime | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Plain form for storage and JSON."""
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "reason": self.reason,
            "public_reason": self.public_reason,
            "retry_at": self.retry_at.isoformat() if self.retry_at else None,
        }


class Decision:
    """Every verdict of the chain, hit or miss, and the outcome they add up to.

    Any deny wins; otherwise any defer postpones to the latest retry time; otherwise allow.
    The outcome is computed once, on construction.
    """

    __slots__ = ("_outcome", "_retry_at", "_verdicts")

    def __init__(self, verdicts: tuple[Verdict, ...]) -> None:
        outcome = Outcome.ALLOW
        retry: datetime | None = None
        for verdict in verdicts:
            # Plain tuple indexing: this loop runs for every rule of every candidate.
            kind = verdict[1]
            if kind is _ALLOW:
                continue
            if kind is _DENY:
                outcome = _DENY
                continue
            if outcome is _ALLOW:
                outcome = Outcome.DEFER
            when = verdict[4]
            if when is not None and (retry is None or when > retry):
                retry = when
        self._verdicts = verdicts
        self._outcome = outcome
        self._retry_at = retry

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        """Every rule's verdict, in chain order."""
        return self._verdicts

    @property
    def outcome(self) -> Outcome:
        """The combined outcome."""
        return self._outcome

    @property
    def allowed(self) -> bool:
        """Whether the message may go now."""
        return self._outcome is Outcome.ALLOW

    @property
    def retry_at(self) -> datetime | None:
        """When a deferred message may be tried again: the latest time any rule named."""
        return self._retry_at

    @property
    def blocking(self) -> tuple[Verdict, ...]:
        """The verdicts that stopped or postponed the message."""
        return tuple(v for v in self._verdicts if v.outcome is not Outcome.ALLOW)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Decision) and other._verdicts == self._verdicts

    def __hash__(self) -> int:
        return hash(self._verdicts)

    def __repr__(self) -> str:
        return f"Decision({self._outcome.value}, {len(self._verdicts)} verdicts)"

    def as_dict(self) -> dict[str, object]:
        """Plain form for storage and JSON."""
        return {
            "allowed": self.allowed,
            "outcome": self._outcome.value,
            "verdicts": [v.as_dict() for v in self._verdicts],
        }
