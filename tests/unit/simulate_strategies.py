"""Hypothesis strategies for the simulation's properties: random histories, and policies
together with a tightening of them (every key moved only in its stricter direction)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st
from simulate_support import DAY, T0, History

from courtois.policy.config import PolicyConfig, check_hard_caps
from courtois.simulation import events as ev

MEMBERS = ("m0", "m1", "m2")
RECIPIENTS = tuple(f"r{i}" for i in range(6))
MINUTES = (1, 9, 11, 60, 24 * 60, 3 * 24 * 60, 13 * 24 * 60, 15 * 24 * 60, 40 * 24 * 60)

member = st.sampled_from(MEMBERS)
recipient = st.sampled_from(RECIPIENTS)
pick = st.integers(0, 1000)
_STEP = st.one_of(
    st.tuples(st.just("invite"), member, st.sets(recipient, min_size=1, max_size=4), st.booleans()),
    st.tuples(st.just("invite"), member, st.sets(recipient, min_size=1, max_size=4), st.booleans()),
    st.tuples(st.just("invite"), member, st.sets(recipient, min_size=1, max_size=4), st.booleans()),
    st.tuples(st.just("withdraw"), pick),
    st.tuples(st.just("revoke"), pick),
    st.tuples(st.just("answer"), pick, st.booleans()),
    st.tuples(st.just("answer"), pick, st.booleans()),
    st.tuples(st.just("unsubscribe"), recipient, st.none() | member),
    st.tuples(st.just("join"), recipient),
    st.tuples(st.just("member"), recipient),
    st.tuples(st.just("forget"), recipient),
    st.tuples(st.just("complaint"), recipient, member),
    st.tuples(st.just("bounce"), recipient, st.booleans()),
)


@st.composite
def histories(draw: st.DrawFn, min_steps: int = 10, max_steps: int = 60) -> list[ev.Event]:
    """Requests, member and recipient acts at random times; the worker is left to the
    replay (continuous, or at its due times)."""
    steps = draw(
        st.lists(st.tuples(st.sampled_from(MINUTES), _STEP), min_size=min_steps, max_size=max_steps)
    )
    history = History()
    invitations: list[str] = []
    now = T0
    for pause, step in steps:
        now += timedelta(minutes=pause)
        kind, *args = step
        if kind == "invite":
            who, whom, reminders = args
            invitations += history.invite(now, who, *sorted(whom), reminders=int(reminders))
        elif kind == "withdraw" and invitations:
            history.add(ev.Withdrawn(now, invitations[args[0] % len(invitations)]))
        elif kind == "revoke" and history.consents:
            history.add(ev.Revoked(now, history.consents[args[0] % len(history.consents)]))
        elif kind == "answer" and invitations:
            history.add(ev.Answered(now, invitations[args[0] % len(invitations)], args[1]))
        elif kind == "unsubscribe":
            history.add(ev.Unsubscribed(now, args[0], args[1]))
        elif kind == "join":
            history.add(ev.Joined(now, args[0]))
        elif kind == "member":
            history.add(ev.BecameMember(now, args[0]))
        elif kind == "forget":
            history.add(ev.Forgotten(now, args[0]))
        elif kind == "complaint":
            history.add(ev.Suppressed(now, args[0], "complaint", args[1], True))
        elif kind == "bounce":
            history.add(ev.Suppressed(now, args[0], "hard-bounce", None, args[1]))
    # An event far later, so that everything due is decided before the history ends.
    history.add(ev.Unsubscribed(now + 200 * DAY, "nobody", None))
    return history.events


# key -> a strategy for a stricter value, given the current one. Integers only move by
# whole steps; rates stay ordered (pause <= stop) by the caller's check.
def _stricter(name: str, value: Any) -> st.SearchStrategy[Any]:
    up = {
        "undo_window_minutes": 3000,
        "reminder_min_days": 30,
        "recipient_short_window_days": 60,
        "recipient_long_window_days": 200,
    }
    if name in up:
        return st.integers(value, value + up[name])
    if name in ("reminder_cap", "recipient_short_max", "recipient_long_max"):
        return st.integers(0, value)
    if name in ("sender_daily_cap", "sender_weekly_cap", "sender_min_sample"):
        return st.integers(1, value)
    if name == "complaint_min_denominator":
        return st.integers(1, value)
    if name == "sender_target_acceptance":
        return st.floats(value, 1.0)
    if name in ("sender_decline_limit", "complaint_pause_rate", "complaint_stop_rate"):
        return st.floats(0.0, value)
    if name == "profile":
        return st.sampled_from(sorted({value, "strict-eu"}))
    raise AssertionError(name)


TIGHTENABLE = (
    "undo_window_minutes",
    "reminder_min_days",
    "recipient_short_window_days",
    "recipient_long_window_days",
    "reminder_cap",
    "recipient_short_max",
    "recipient_long_max",
    "sender_daily_cap",
    "sender_weekly_cap",
    "sender_min_sample",
    "complaint_min_denominator",
    "sender_target_acceptance",
    "sender_decline_limit",
    "complaint_pause_rate",
    "complaint_stop_rate",
    "profile",
)


@st.composite
def tightenings(
    draw: st.DrawFn, base: PolicyConfig | None = None, keys: tuple[str, ...] = TIGHTENABLE
) -> tuple[PolicyConfig, PolicyConfig]:
    """A valid policy (the defaults, or `base`) and a valid stricter one."""
    loose = base or PolicyConfig()
    chosen = draw(st.sets(st.sampled_from(keys), min_size=1, max_size=4))
    changes = {name: draw(_stricter(name, getattr(loose, name))) for name in sorted(chosen)}
    tight = replace(loose, **changes)
    if tight.sender_weekly_cap < tight.sender_daily_cap:
        tight = replace(tight, sender_weekly_cap=tight.sender_daily_cap)
    if tight.complaint_pause_rate > tight.complaint_stop_rate:
        tight = replace(tight, complaint_pause_rate=tight.complaint_stop_rate)
    assert not check_hard_caps(tight), check_hard_caps(tight)
    return loose, tight
