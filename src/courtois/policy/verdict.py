"""Verdicts and decisions: what each rule said, and what the chain concluded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Outcome(StrEnum):
    """A rule allows, denies for good, or defers to a later time."""

    ALLOW = "allow"
    DENY = "deny"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class Verdict:
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


@dataclass(frozen=True, slots=True)
class Decision:
    """Every verdict of the chain, hit or miss, and the outcome they add up to.

    Any deny wins; otherwise any defer postpones to the latest retry time; otherwise allow.
    """

    verdicts: tuple[Verdict, ...]

    @property
    def outcome(self) -> Outcome:
        """The combined outcome."""
        outcomes = {v.outcome for v in self.verdicts}
        if Outcome.DENY in outcomes:
            return Outcome.DENY
        if Outcome.DEFER in outcomes:
            return Outcome.DEFER
        return Outcome.ALLOW

    @property
    def allowed(self) -> bool:
        """Whether the message may go now."""
        return self.outcome is Outcome.ALLOW

    @property
    def retry_at(self) -> datetime | None:
        """When a deferred message may be tried again: the latest time any rule named."""
        times = [v.retry_at for v in self.verdicts if v.outcome is Outcome.DEFER and v.retry_at]
        return max(times) if times else None

    @property
    def blocking(self) -> tuple[Verdict, ...]:
        """The verdicts that stopped or postponed the message."""
        return tuple(v for v in self.verdicts if v.outcome is not Outcome.ALLOW)

    def as_dict(self) -> dict[str, object]:
        """Plain form for storage and JSON."""
        return {
            "allowed": self.allowed,
            "outcome": self.outcome.value,
            "verdicts": [v.as_dict() for v in self.verdicts],
        }
