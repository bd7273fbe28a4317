"""reminder-allowed: silence means stop (invariant 3)."""

from __future__ import annotations

from datetime import datetime

from courtois.domain.messages import MessageKind
from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule, allow, defer, deny
from courtois.policy.verdict import Verdict

CODE = "reminder-allowed"

_NOT_A_REMINDER = allow(CODE, "not a reminder")


def check(candidate: Candidate, facts: Facts, now: datetime) -> Verdict:
    """A reminder goes only if the recipient asked for it, or the member ticked it, within the
    cap and not before the minimum interval after the invitation went out."""
    if candidate.kind is not MessageKind.REMINDER:
        return _NOT_A_REMINDER
    policy, invitation = facts.policy, facts.invitation
    requested = facts.recipient.reminder_requested_for
    if requested is not None:
        if now >= requested:
            return allow(CODE, "the recipient asked to be reminded now")
        return defer(
            CODE, "the recipient asked to be reminded later", "reminder requested", requested
        )
    consent = invitation.consent
    if consent is None or consent.reminders < 1:
        return deny(CODE, "the member did not ask for a reminder", "no reminder")
    if invitation.reminders_sent >= min(consent.reminders, policy.reminder_cap):
        return deny(CODE, "the reminder cap is reached", "no further reminder")
    if invitation.last_sent_at is None:
        return deny(CODE, "the invitation itself was never sent", "no reminder")
    due = invitation.last_sent_at + policy.reminder_interval
    if now < due:
        return defer(CODE, f"too early: not before {due.isoformat()}", "reminder scheduled", due)
    return allow(CODE, "the member asked for one reminder and its time has come")


RULE = Rule(CODE, "A reminder only if asked for, within the cap and interval.", check)
