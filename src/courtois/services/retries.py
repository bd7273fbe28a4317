"""When a message refused for now is tried again: exponential backoff with jitter, up to a
deadline, after which it fails.

Kept apart from the recording of outcomes because it is pure arithmetic on an attempt count
and a random source, which the tests drive directly."""

from __future__ import annotations

import random
from datetime import timedelta

__all__ = ["RETRY_DEADLINE", "RETRY_FIRST", "RETRY_LONGEST", "retry_delay"]

RETRY_FIRST = timedelta(minutes=5)
RETRY_LONGEST = timedelta(hours=6)
RETRY_DEADLINE = timedelta(days=3)


def retry_delay(attempts: int, rng: random.Random) -> timedelta:
    """5 minutes doubling per attempt, capped at 6 hours, with +/-50% jitter so that a
    server's many refused messages do not all come back at the same second."""
    # The doubling stops at the cap (5 min x 2**7 > 6 h): no overflow however many attempts.
    doublings = min(max(attempts - 1, 0), 7)
    base: timedelta = min(RETRY_FIRST * (2**doublings), RETRY_LONGEST)
    factor: float = rng.uniform(0.5, 1.5)
    return base * factor
