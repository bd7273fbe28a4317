"""The last look before an email is handed to SMTP: what changed since its claim (invariant 7).

A batch is decided and claimed at once, then handed over message after message; behind a
slow relay the last of two hundred may wait minutes. What the recipient or the member said
meanwhile must still win: an opt-out, a join, a "forget me", a "not interested", a revoked
consent. This is the part of the policy that can change in minutes by someone's word: the
recipient rules of the chain and whether the invitation and its consent are still open.
The sender rules (a sender paused by complaints) and the quotas were settled at the claim
and are left to it: a pause takes effect from the next batch claimed, like one that comes a
moment after the claim.
"""

from __future__ import annotations

from datetime import datetime

from courtois.domain.invitations import InvitationState
from courtois.policy.facts import Candidate, Facts, RecipientFacts
from courtois.policy.rules import not_a_member, not_suppressed, not_unsubscribed
from courtois.policy.verdict import Outcome

# The rules whose facts a person changes at any moment, in the chain's order.
RECIPIENT_RULES = (not_a_member.RULE, not_unsubscribed.RULE, not_suppressed.RULE)
# An email may leave for an invitation waiting to be sent, or (a reminder) already sent.
OPEN_STATES = frozenset({InvitationState.SCHEDULED.value, InvitationState.SENT.value})
CONSENT_REVOKED = "the member revoked the consent"


def stopped_since_claim(
    candidate: Candidate,
    recipient: RecipientFacts,
    invitation_state: str,
    consent_revoked: bool,
    now: datetime,
) -> str | None:
    """Why this claimed email must not leave after all, or None when nothing stops it."""
    # The recipient's word first: an opt-out also closed the invitation, and the ledger
    # should say why rather than what followed.
    facts = Facts(recipient=recipient)
    for rule in RECIPIENT_RULES:
        verdict = rule.check(candidate, facts, now)
        if verdict.outcome is Outcome.DENY:
            return verdict.reason
    if consent_revoked:
        return CONSENT_REVOKED
    if invitation_state not in OPEN_STATES:
        return f"the invitation is {invitation_state} now"
    return None
