"""The policy chain: the order of the rules is this one table, and every verdict is kept."""

from __future__ import annotations

from datetime import datetime

from courtois.policy.facts import Candidate, Facts
from courtois.policy.rule import Rule
from courtois.policy.rules import (
    consent_covers,
    not_a_member,
    not_already_invited,
    not_suppressed,
    not_unsubscribed,
    recipient_quota,
    reminder_allowed,
    sender_quota,
    strict_eu,
    undo_window,
)
from courtois.policy.verdict import Decision

CHAIN: tuple[Rule, ...] = (
    consent_covers.RULE,
    strict_eu.RULE,
    not_a_member.RULE,
    not_unsubscribed.RULE,
    not_suppressed.RULE,
    not_already_invited.RULE,
    reminder_allowed.RULE,
    undo_window.RULE,
    sender_quota.RULE,
    recipient_quota.RULE,
)

RULES_BY_CODE = {rule.code: rule for rule in CHAIN}
_CHECKS = tuple(rule.check for rule in CHAIN)


def evaluate(candidate: Candidate, facts: Facts, now: datetime) -> Decision:
    """Run every rule in order. Nothing short-circuits: the ledger and whoever asks see what
    each rule said, including the ones that passed."""
    return Decision(tuple([check(candidate, facts, now) for check in _CHECKS]))
