"""Policy configuration: tighten anything, loosen no hard cap, refuse what is not known."""

from __future__ import annotations

import math
from typing import Any

import pytest

from courtois.domain.errors import InvalidInput
from courtois.policy import config as config_module
from courtois.policy.config import PolicyConfig, check_hard_caps, load_policy

# One loosened value per hard cap, each just past its documented limit.
LOOSENED: dict[str, Any] = {
    "undo_window_minutes": 9,
    "reminder_cap": 2,
    "reminder_min_days": 13,
    "recipient_short_window_days": 13,
    "recipient_short_max": 2,
    "recipient_long_window_days": 89,
    "recipient_long_max": 3,
    "sender_daily_cap": 101,
    "sender_weekly_cap": 501,
    "complaint_pause_rate": 0.0011,
    "complaint_stop_rate": 0.0031,
    "invitation_expiry_days": 91,
    "unselected_contact_hours": 25,
    "remind_later_max_days": 91,
    "complaint_min_denominator": 1001,
    "sender_min_sample": 21,
    "sender_target_acceptance": 0.19,
    "sender_decline_limit": 0.51,
}

TIGHTENED: dict[str, Any] = {
    "profile": "strict-eu",
    "undo_window_minutes": 30,
    "reminder_cap": 0,
    "reminder_min_days": 21,
    "recipient_short_window_days": 30,
    "recipient_short_max": 1,
    "recipient_long_window_days": 180,
    "recipient_long_max": 1,
    "sender_daily_cap": 20,
    "sender_weekly_cap": 100,  # not below the default daily cap, even alone
    "complaint_pause_rate": 0.0005,
    "complaint_stop_rate": 0.001,
    "invitation_expiry_days": 14,
    "unselected_contact_hours": 1,
    "remind_later_max_days": 30,
    "complaint_min_denominator": 100,
    "sender_min_sample": 10,
    "sender_target_acceptance": 0.3,
    "sender_decline_limit": 0.4,
}


def refusal(values: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        load_policy(values)
    return caught.value


def test_empty_section_gives_the_documented_defaults() -> None:
    policy = load_policy({})
    assert policy == PolicyConfig()
    assert policy.profile == "balanced"
    assert policy.undo_window_minutes == 10
    assert policy.reminder_cap == 1
    assert policy.reminder_min_days == 14
    assert (policy.recipient_short_window_days, policy.recipient_short_max) == (14, 1)
    assert (policy.recipient_long_window_days, policy.recipient_long_max) == (90, 2)
    assert (policy.sender_daily_cap, policy.sender_weekly_cap) == (100, 500)
    assert (policy.complaint_pause_rate, policy.complaint_stop_rate) == (0.001, 0.003)
    assert check_hard_caps(policy) == {}


def test_defaults_sit_exactly_at_the_hard_caps() -> None:
    """The documented numbers are the loosest allowed. The one exception: invitations expire
    after 30 days by default, and operators may stretch that up to 90."""
    for key, (_direction, limit) in config_module._HARD_CAPS.items():
        if key == "invitation_expiry_days":
            assert (PolicyConfig().invitation_expiry_days, limit) == (30, 90)
            continue
        assert getattr(PolicyConfig(), key) == limit, key
    assert load_policy({"invitation_expiry_days": 90}).invitation_expiry_days == 90


def test_every_hard_cap_has_a_loosening_case() -> None:
    assert set(LOOSENED) == set(config_module._HARD_CAPS)


def test_tightening_everything_is_accepted() -> None:
    policy = load_policy(TIGHTENED)
    for key, value in TIGHTENED.items():
        assert getattr(policy, key) == value, key


@pytest.mark.parametrize(("key", "value"), list(TIGHTENED.items()))
def test_each_tightening_alone_is_accepted(key: str, value: Any) -> None:
    assert getattr(load_policy({key: value}), key) == value


@pytest.mark.parametrize(("key", "value"), list(LOOSENED.items()))
def test_loosening_a_hard_cap_is_refused_naming_the_key(key: str, value: Any) -> None:
    error = refusal({key: value})
    assert key in error.details
    assert "loosens the hard cap" in error.details[key]
    assert key in error.message


def test_every_loosened_key_is_named_at_once() -> None:
    error = refusal({"reminder_cap": 5, "undo_window_minutes": 1, "recipient_long_max": 9})
    assert {"reminder_cap", "undo_window_minutes", "recipient_long_max"} <= set(error.details)


def test_loosening_is_refused_even_alongside_tightening() -> None:
    error = refusal({**TIGHTENED, "reminder_min_days": 7})
    assert set(error.details) == {"reminder_min_days"}


@pytest.mark.parametrize("key", ["reminder_cap", "sender_daily_cap", "undo_window_minutes"])
def test_wildly_loose_values_are_refused(key: str) -> None:
    value = 0 if key == "undo_window_minutes" else 10**9
    assert key in refusal({key: value}).details


@pytest.mark.parametrize("key", ["reminders_cap", "undo_minutes", "REMINDER_CAP", "extra"])
def test_unknown_keys_are_refused(key: str) -> None:
    error = refusal({key: 1})
    assert error.details == {key: "unknown policy key"}
    assert key in error.message


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("undo_window_minutes", "ten"),
        ("undo_window_minutes", "10.5"),
        ("undo_window_minutes", 10.5),
        ("undo_window_minutes", True),
        ("undo_window_minutes", None),
        ("undo_window_minutes", [10]),
        ("reminder_cap", False),
        ("complaint_stop_rate", "lots"),
        ("complaint_stop_rate", True),
        ("complaint_stop_rate", None),
        ("profile", 5),
        ("profile", ["balanced"]),
    ],
)
def test_wrong_types_are_refused(key: str, value: Any) -> None:
    error = refusal({key: value})
    assert set(error.details) == {key}
    assert "must be a" in error.details[key]


@pytest.mark.parametrize("profile", ["lax", "Balanced", "", "strict_eu"])
def test_unknown_profile_is_refused(profile: str) -> None:
    error = refusal({"profile": profile})
    assert set(error.details) == {"profile"}
    assert "balanced" in error.details["profile"]


@pytest.mark.parametrize("profile", ["balanced", "strict-eu"])
def test_known_profiles_load(profile: str) -> None:
    assert load_policy({"profile": profile}).profile == profile


def test_environment_strings_are_coerced() -> None:
    policy = load_policy(
        {
            "undo_window_minutes": "15",
            "reminder_cap": "0",
            "sender_daily_cap": " 50 ",
            "complaint_stop_rate": "0.002",
            "complaint_pause_rate": "1e-4",
            "profile": "strict-eu",
        }
    )
    assert policy.undo_window_minutes == 15
    assert type(policy.undo_window_minutes) is int
    assert policy.reminder_cap == 0
    assert policy.sender_daily_cap == 50
    assert policy.complaint_stop_rate == 0.002
    assert type(policy.complaint_stop_rate) is float
    assert policy.complaint_pause_rate == 0.0001
    assert policy.profile == "strict-eu"


def test_integers_are_accepted_for_float_keys() -> None:
    policy = load_policy({"complaint_pause_rate": 0})
    assert policy.complaint_pause_rate == 0.0
    assert type(policy.complaint_pause_rate) is float


def test_loosening_through_an_environment_string_is_refused() -> None:
    assert "reminder_cap" in refusal({"reminder_cap": "2"}).details
    assert "complaint_stop_rate" in refusal({"complaint_stop_rate": "0.01"}).details


@pytest.mark.parametrize(
    ("key", "loose", "tight"),
    [
        ("complaint_min_denominator", 1_000_000_000, 100),
        ("sender_min_sample", 1_000_000, 5),
        ("sender_target_acceptance", 0.0001, 0.5),
        ("sender_decline_limit", 1.0, 0.2),
    ],
)
def test_how_earned_quotas_are_measured_may_be_tightened_never_loosened(
    key: str, loose: float, tight: float
) -> None:
    """Each of these, loosened, would let a sender who draws complaints or declines keep
    sending: a billion-email floor under the complaint rate switches the stop off."""
    assert "loosens the hard cap" in refusal({key: loose}).details[key]
    assert getattr(load_policy({key: tight}), key) == tight


def test_hyphenated_keys_are_accepted() -> None:
    policy = load_policy({"undo-window-minutes": 20, "sender-daily-cap": "10"})
    assert policy.undo_window_minutes == 20
    assert policy.sender_daily_cap == 10


def test_negative_values_are_refused() -> None:
    for key in ("sender_min_sample", "complaint_min_denominator", "sender_target_acceptance"):
        assert key in refusal({key: -1}).details
    error = refusal({"sender_decline_limit": -0.5})
    assert error.details == {"sender_decline_limit": "must not be negative"}


def test_pause_rate_above_stop_rate_is_refused() -> None:
    error = refusal({"complaint_pause_rate": 0.001, "complaint_stop_rate": 0.0005})
    assert "complaint_pause_rate" in error.details


def test_weekly_cap_below_daily_cap_is_refused() -> None:
    error = refusal({"sender_daily_cap": 50, "sender_weekly_cap": 40})
    assert "sender_weekly_cap" in error.details


def test_wrong_type_and_loosened_cap_are_both_named() -> None:
    error = refusal({"reminder_cap": "many", "recipient_long_max": 3, "nope": 1})
    assert set(error.details) == {"reminder_cap", "recipient_long_max", "nope"}


def test_window_properties_follow_the_numbers() -> None:
    policy = load_policy(TIGHTENED)
    assert policy.undo_window.total_seconds() == 30 * 60
    assert policy.reminder_interval.days == 21
    assert policy.short_window.days == 30
    assert policy.long_window.days == 180


@pytest.mark.parametrize("key", ["complaint_stop_rate", "complaint_pause_rate"])
def test_nan_rates_are_refused(key: str) -> None:
    with pytest.raises(InvalidInput):
        load_policy({key: "nan"})


def test_infinite_rates_are_refused() -> None:
    assert "complaint_stop_rate" in refusal({"complaint_stop_rate": "inf"}).details
    assert "complaint_pause_rate" in refusal({"complaint_pause_rate": math.inf}).details
