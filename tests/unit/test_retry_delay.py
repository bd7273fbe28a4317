"""The wait before a 4xx-refused message is tried again: 5 minutes doubling per attempt up to
6 hours, jittered by +/-50%, for any number of attempts."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from courtois.services.retries import RETRY_FIRST, RETRY_LONGEST, retry_delay


@given(attempts=st.integers(min_value=0, max_value=10**6), seed=st.integers())
def test_the_wait_doubles_up_to_six_hours_for_any_number_of_attempts(
    attempts: int, seed: int
) -> None:
    base = min(RETRY_FIRST * 2 ** min(max(attempts - 1, 0), 20), RETRY_LONGEST)
    wait = retry_delay(attempts, random.Random(seed))
    assert base * 0.5 <= wait <= base * 1.5


def test_the_first_waits() -> None:
    middle = random.Random()
    middle.uniform = lambda a, b: (a + b) / 2  # type: ignore[method-assign]
    waits = [retry_delay(n, middle) for n in range(1, 10)]
    minutes = [5, 10, 20, 40, 80, 160, 320, 360, 360]
    assert waits == [timedelta(minutes=m) for m in minutes]
