"""How decisions are kept: every verdict in the decisions table, a summary in the ledger,
and the member's view of them."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Any

from courtois.policy.chain import CHAIN
from courtois.policy.facts import Candidate
from courtois.policy.rules import not_unsubscribed, recipient_quota, strict_eu
from courtois.policy.verdict import Decision, Outcome, Verdict

VERDICT_FIELDS = ("rule", "outcome", "reason", "public_reason", "retry_at")


def decision_row(
    decision: Decision, *, candidate: Candidate, message_id: str | None, now: datetime
) -> dict[str, Any]:
    """A decisions-table row keeping every verdict."""
    return {
        "invitation_id": candidate.invitation_id,
        "message_id": message_id,
        "member_id": candidate.member_id,
        "recipient_digest": candidate.recipient_digest,
        "kind": candidate.kind.value,
        "stage": candidate.stage.value,
        "outcome": decision.outcome.value,
        "verdicts": verdicts_text(decision.verdicts),
        "decided_at": now,
    }


def stored_verdicts(decision: Decision) -> list[list[str]]:
    """Every verdict as stored, in chain order: [rule, outcome, reason], with the
    member-facing reason and the retry time appended only where a rule gave them. Arrays,
    not objects: ten per decision, tens of thousands per batch. `expand_verdicts` reads
    them back."""
    return [_stored(verdict) for verdict in decision.verdicts]


def _stored(verdict: Verdict) -> list[str]:
    # Outcomes are StrEnums, so they serialise as their values without `.value` lookups.
    rule, outcome, reason, public_reason, retry_at = verdict
    if retry_at is not None:
        return [rule, outcome, reason, public_reason, retry_at.isoformat()]
    if public_reason:
        return [rule, outcome, reason, public_reason]
    return [rule, outcome, reason]


def verdicts_text(verdicts: tuple[Verdict, ...]) -> str:
    """The stored verdicts as canonical JSON text (`json.dumps` of `stored_verdicts`, byte
    for byte), put together from each verdict's own text."""
    return f"[{','.join([_verdict_text(verdict) for verdict in verdicts])}]"


@lru_cache(maxsize=4096)
def _verdict_text(verdict: Verdict) -> str:
    """One verdict's stored text, encoded once per distinct verdict: most verdicts recur
    from one decision to the next (a rule allowing for the same reason) even where the
    decisions differ, as an invitation's do (the sender's counts change with each one)."""
    return json.dumps(_stored(verdict), separators=(",", ":"), ensure_ascii=False)


def expand_verdicts(stored: list[list[str]]) -> list[dict[str, str]]:
    """Stored verdict arrays as objects with named fields."""
    return [dict(zip(VERDICT_FIELDS, item, strict=False)) for item in stored]


def stored_refusals(stored: list[list[str]]) -> list[str]:
    """The rules whose stored verdict refused (`deny`)."""
    return [v["rule"] for v in expand_verdicts(stored) if v["outcome"] == Outcome.DENY.value]


def decision_entry(
    decision: Decision, candidate: Candidate, message_id: str | None
) -> dict[str, Any]:
    """The ledger's compact record of a decision: every rule's outcome, reasons of the
    ones that did not allow."""
    return {
        "invitation": candidate.invitation_id,
        "message": message_id,
        "member": candidate.member_id,
        "recipient": candidate.recipient_digest,
        "kind": candidate.kind.value,
        "stage": candidate.stage.value,
        "outcome": decision.outcome.value,
        "rules": {rule: outcome for rule, outcome, *_ in decision.verdicts},
        "reasons": [v.reason for v in decision.blocking],
    }


def member_shares(refusing: Iterable[str]) -> bool:
    """Under strict-eu the platform sends nothing; when that rule is the only refusal, the
    member sends the invitation from their own mailbox and the invitation counts as sent
    (so acceptance, expiry and opt-outs are still tracked)."""
    return set(refusing) == {strict_eu.CODE}


def verdict_of(outcome: str, refusing: Iterable[str]) -> dict[str, Any]:
    """A decision's `allowed` and `outcome` as the member and the platform read them. An
    invitation the member shares themselves (`member_shares`) is allowed, to go out from
    their own mailbox, and says so: its `strict-eu-no-email` verdict, still `deny`, says
    the platform sends it no email. Any other reads as the policy decided."""
    if member_shares(refusing):
        return {"allowed": True, "outcome": Outcome.ALLOW.value}
    return {"allowed": outcome != Outcome.DENY.value, "outcome": outcome}


def public_decision(decision: Decision) -> dict[str, Any]:
    """What a member may see: every rule and outcome, with member-facing reasons only."""
    refusing = (v.rule for v in decision.verdicts if v.outcome is Outcome.DENY)
    return {
        **verdict_of(decision.outcome.value, refusing),
        "verdicts": member_verdicts(
            (v.rule, v.outcome, v.public_reason) for v in decision.verdicts
        ),
    }


# The rules the policy marks private (an opt-out, a bounce): a member sees them as one
# verdict, refused as "unavailable" whichever refused (invariant 11); admins and the ledger
# keep each.
PRIVATE_RULES = frozenset(rule.code for rule in CHAIN if rule.private)
AVAILABLE = "recipient-available"
_SEVERITY = {Outcome.ALLOW: 0, Outcome.DEFER: 1, Outcome.DENY: 2}
# What a member reads of a rule whatever reason a decision stored for them: decisions kept
# before the recipient quota's words changed said other invitations were waiting.
_MEMBER_REASONS = {(recipient_quota.CODE, Outcome.DEFER.value): recipient_quota.HELD}


def member_verdicts(verdicts: Iterable[tuple[str, str, str]]) -> list[dict[str, str]]:
    """(rule, outcome, member-facing reason) in chain order, as a member may see them: the
    private rules merged into one verdict where the first of them stands. A recipient who
    is unavailable ends the list there: the rules after it would still tell causes apart
    (one who opted out after receiving mail is held by the recipient quota, an address that
    bounced on its first email is not)."""
    shown: list[dict[str, str]] = []
    merged: dict[str, str] | None = None
    stands = 0
    for rule, outcome, public in verdicts:
        if rule not in PRIVATE_RULES:
            reason = _MEMBER_REASONS.get((rule, str(outcome))) or public or "ok"
            shown.append({"rule": rule, "outcome": str(outcome), "reason": reason})
            continue
        if merged is None:
            merged = {"rule": AVAILABLE, "outcome": Outcome.ALLOW.value, "reason": "ok"}
            shown.append(merged)
            stands = len(shown)
        if _SEVERITY[Outcome(outcome)] > _SEVERITY[Outcome(merged["outcome"])]:
            merged["outcome"] = Outcome(outcome).value
            merged["reason"] = not_unsubscribed.UNAVAILABLE
    if merged is not None and merged["outcome"] == Outcome.DENY.value:
        return shown[:stands]
    return shown


def is_unavailable(decision: Decision) -> bool:
    """Whether a private rule refused the recipient: the member reads "unavailable"."""
    return any(v.rule in PRIVATE_RULES and v.outcome is Outcome.DENY for v in decision.verdicts)


def member_schedule(decision: Decision, now: datetime) -> datetime | None:
    """When an invitation decided now leaves, as its member may read it: none when refused,
    nor when the recipient's quota holds it back, whose day would tell the member when
    someone else's email reached that person (the member pages say "leaves later, when the
    limits on emails allow")."""
    if decision.outcome is Outcome.DENY or held_by_recipient_quota(decision):
        return None
    return decision.retry_at or now


def held_by_recipient_quota(decision: Decision) -> bool:
    """Whether the recipient's quota defers the message."""
    return any(
        v.rule == recipient_quota.CODE and v.outcome is Outcome.DEFER for v in decision.verdicts
    )
