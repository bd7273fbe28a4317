"""Row ids are RFC 9562 UUIDs of version 7: the width of the id columns, their time prefix
in milliseconds, so that ids made later sort after ids made earlier (what keeps index
inserts on the rightmost leaf), and the rest random."""

from __future__ import annotations

import time
import uuid

from hypothesis import given
from hypothesis import strategies as st

from courtois.domain.ids import new_id

# 1970 to the last millisecond 48 bits can count (year 10889).
_INSTANTS = st.integers(0, (1 << 48) - 1).map(lambda ms: ms * 1_000_000)


@given(_INSTANTS)
def test_an_id_is_a_version_7_uuid_carrying_its_millisecond(instant: int) -> None:
    made = new_id(instant)
    parsed = uuid.UUID(made)
    assert (len(made), str(parsed)) == (36, made)
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert parsed.int >> 80 == instant // 1_000_000


@given(_INSTANTS, _INSTANTS)
def test_ids_of_different_milliseconds_sort_as_their_times(first: int, second: int) -> None:
    if first // 1_000_000 != second // 1_000_000:
        assert (new_id(first) < new_id(second)) == (first < second)


def test_ids_of_one_millisecond_differ_and_the_clock_is_read() -> None:
    instant = time.time_ns()
    made = {new_id(instant) for _ in range(10_000)}
    assert len(made) == 10_000
    before = time.time_ns() // 1_000_000
    stamped = uuid.UUID(new_id()).int >> 80
    assert before <= stamped <= time.time_ns() // 1_000_000
