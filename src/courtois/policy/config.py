"""Policy parameters from `[policy]` in courtois.toml, and the hard caps nobody may loosen.

Operators may tighten any number; a configuration that loosens a hard cap is refused when
loaded, with every offending key named, so a deployment never starts with a weaker policy
than the one documented.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from courtois.domain.errors import InvalidInput

PROFILES = ("balanced", "strict-eu")


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    """Every number the rules use. Defaults are the documented policy and the loosest allowed
    for the keys listed in `_HARD_CAPS`."""

    profile: str = "balanced"
    undo_window_minutes: int = 10
    reminder_cap: int = 1
    reminder_min_days: int = 14
    recipient_short_window_days: int = 14
    recipient_short_max: int = 1
    recipient_long_window_days: int = 90
    recipient_long_max: int = 2
    sender_daily_cap: int = 100
    sender_weekly_cap: int = 500
    sender_min_sample: int = 20
    sender_target_acceptance: float = 0.2
    sender_decline_limit: float = 0.5
    complaint_pause_rate: float = 0.001
    complaint_stop_rate: float = 0.003
    complaint_min_denominator: int = 1000
    invitation_expiry_days: int = 30
    # How long an imported contact is kept, picked or not (named when picks were kept).
    unselected_contact_hours: int = 24
    remind_later_max_days: int = 90

    # Derived once on construction: rules read these for every candidate.
    undo_window: timedelta = field(init=False, repr=False, compare=False)
    reminder_interval: timedelta = field(init=False, repr=False, compare=False)
    short_window: timedelta = field(init=False, repr=False, compare=False)
    long_window: timedelta = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A frozen dataclass sets its own derived fields through object.__setattr__.
        object.__setattr__(self, "undo_window", timedelta(minutes=self.undo_window_minutes))
        object.__setattr__(self, "reminder_interval", timedelta(days=self.reminder_min_days))
        object.__setattr__(self, "short_window", timedelta(days=self.recipient_short_window_days))
        object.__setattr__(self, "long_window", timedelta(days=self.recipient_long_window_days))


def settable_fields() -> dict[str, Any]:
    """The keys an operator may set, with their defaults (the derived windows are not)."""
    return {f.name: f.default for f in fields(PolicyConfig) if f.init}


# key -> (direction in which it may move, the documented limit)
# "max": the value may not exceed the limit; "min": it may not go below it.
_HARD_CAPS: dict[str, tuple[str, float]] = {
    "undo_window_minutes": ("min", 10),
    "reminder_cap": ("max", 1),
    "reminder_min_days": ("min", 14),
    "recipient_short_window_days": ("min", 14),
    "recipient_short_max": ("max", 1),
    "recipient_long_window_days": ("min", 90),
    "recipient_long_max": ("max", 2),
    "sender_daily_cap": ("max", 100),
    "sender_weekly_cap": ("max", 500),
    "complaint_pause_rate": ("max", 0.001),
    "complaint_stop_rate": ("max", 0.003),
    # How earned quotas are measured: a larger floor under the complaint rate, a larger
    # sample before acceptance counts, a lower target or a higher decline limit would each
    # let a sender who draws complaints and declines keep sending.
    "complaint_min_denominator": ("max", 1000),
    "sender_min_sample": ("max", 20),
    "sender_target_acceptance": ("min", 0.2),
    "sender_decline_limit": ("max", 0.5),
    "invitation_expiry_days": ("max", 90),
    "unselected_contact_hours": ("max", 24),
    "remind_later_max_days": ("max", 90),
}


# The largest value any key may take, by the unit its name ends in: a century of days (a
# pass reaches that far back and ahead of an instant in 1970-9000 without leaving the
# calendar), and a billion for a count; larger ones overflow the date arithmetic.
_CENTURY_DAYS = 36_500
_LARGEST_BY_UNIT: dict[str, int] = {
    "_days": _CENTURY_DAYS,
    "_hours": _CENTURY_DAYS * 24,
    "_minutes": _CENTURY_DAYS * 24 * 60,
}
_LARGEST_COUNT = 10**9


def _largest(name: str) -> int:
    """The largest value the key `name` may hold."""
    for unit, largest in _LARGEST_BY_UNIT.items():
        if name.endswith(unit):
            return largest
    return _LARGEST_COUNT


def _coerce(name: str, value: Any, default: Any) -> Any:
    """Read a value as the type of its default; TOML and environment strings both arrive."""
    kind = type(default)
    try:
        if kind is int and isinstance(value, str | int) and not isinstance(value, bool):
            return int(value)
        if kind is float and isinstance(value, str | int | float) and not isinstance(value, bool):
            number = float(value)
            if math.isfinite(number):
                return number
        if kind is str and isinstance(value, str):
            return value
    except ValueError:
        pass
    # Without a full stop: the loader lists every problem in one sentence of its own.
    shown = _KINDS.get(kind, kind.__name__)
    raise InvalidInput(f"must be {shown}, not {value!r}", {name: "wrong type"})


# What each type of value is called in a refusal.
_KINDS: dict[type, str] = {int: "a whole number", float: "a number", str: "a string"}


def load_policy(values: Mapping[str, Any]) -> PolicyConfig:
    """Build a PolicyConfig from `[policy]` values, refusing unknown keys and loosened caps."""
    known = settable_fields()
    problems: dict[str, str] = {}
    changes: dict[str, Any] = {}
    for name, raw in values.items():
        key = name.replace("-", "_")
        if key not in known:
            problems[name] = "unknown policy key"
            continue
        try:
            value = _coerce(key, raw, known[key])
        except InvalidInput as error:
            problems[name] = error.message
            continue
        if isinstance(value, int | float) and value > _largest(key):
            problems[name] = f"{value} is out of range; at most {_largest(key)}"
            continue
        changes[key] = value
    config = replace(PolicyConfig(), **changes)
    problems.update(check_hard_caps(config))
    if problems:
        listed = "; ".join(f"{k}: {v}" for k, v in sorted(problems.items()))
        raise InvalidInput(f"The [policy] configuration is refused: {listed}.", problems)
    return config


def check_hard_caps(config: PolicyConfig) -> dict[str, str]:
    """Name every value that loosens a hard cap or makes no sense."""
    problems: dict[str, str] = {}
    if config.profile not in PROFILES:
        problems["profile"] = f"must be one of {', '.join(PROFILES)}"
    for key, (direction, limit) in _HARD_CAPS.items():
        value = getattr(config, key)
        if direction == "max" and value > limit:
            problems[key] = f"{value} loosens the hard cap; at most {limit}"
        elif direction == "min" and value < limit:
            problems[key] = f"{value} loosens the hard cap; at least {limit}"
    for name in settable_fields():
        value = getattr(config, name)
        if isinstance(value, int | float) and value < 0:
            problems[name] = "must not be negative"  # the plainer reason wins
    for key in ("complaint_min_denominator", "sender_target_acceptance", "sender_min_sample"):
        if getattr(config, key) <= 0:
            problems.setdefault(key, "must be above zero")
    if config.complaint_pause_rate > config.complaint_stop_rate:
        problems["complaint_pause_rate"] = "must not be above complaint_stop_rate"
    if config.sender_weekly_cap < config.sender_daily_cap:
        problems["sender_weekly_cap"] = "must not be below sender_daily_cap"
    return problems
