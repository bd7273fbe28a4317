"""Domain errors: a sentence for people plus per-item details, turned into exit codes or
HTTP problems only at the edges."""

from __future__ import annotations

from collections.abc import Mapping


class DomainError(Exception):
    """A refusal the caller can show as is; `code` is stable, `details` name each bad item."""

    code = "domain-error"

    def __init__(self, message: str, details: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, str] = dict(details or {})


class InvalidInput(DomainError):
    """Input that can never be accepted as given (bad address, bad value, too long)."""

    code = "invalid-input"


class InvalidAddress(InvalidInput):
    """An email address that does not parse."""

    code = "invalid-address"


class NotFound(DomainError):
    """An id that names nothing this caller may see."""

    code = "not-found"


class Conflict(DomainError):
    """The request contradicts the current state (stale preview, revoked consent...)."""

    code = "conflict"


class IllegalTransition(Conflict):
    """A state machine was asked to take an edge it does not have."""

    code = "illegal-transition"


class NoReminderUnderStrictEu(InvalidInput):
    """A reminder asked for under strict-eu, where the member sends the invitation from
    their own mailbox: no email follows it, so a reminder could only be a broken promise."""

    code = "strict-eu-no-reminders"


class ReminderOverCap(InvalidInput):
    """A reminder asked for where the operator's policy allows none (`reminder_cap = 0`):
    refused with its own code rather than dropped, so the member is told why and is never
    shown a promise that no email would keep."""

    code = "reminder-over-cap"
