"""`freeze_start_up`: what start-up made and still holds is kept out of the collector's
passes; its leftover garbage is freed first, and what is made afterwards is collected as
before."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from courtois.long_lived import freeze_start_up


class Node:
    """An object that can take part in a reference cycle."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref[Node]:
    """A cycle nothing refers to: only the collector frees it."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process is not left frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_start_up_objects_are_frozen_and_later_garbage_is_collected() -> None:
    kept = Node()
    left_over = cycle()

    frozen = freeze_start_up()

    assert left_over() is None  # start-up's garbage was freed before freezing
    assert frozen == gc.get_freeze_count() > 0
    assert not gc.is_tracked(kept) or all(o is not kept for o in gc.get_objects())
    later = cycle()
    assert later() is not None
    gc.collect()
    assert later() is None  # made after the freeze: collected as before
