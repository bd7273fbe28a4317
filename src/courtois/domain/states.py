"""A tiny explicit state machine: the edges are data, anything else raises."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from courtois.domain.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class StateMachine(Generic[S]):
    """Holds the allowed edges of one state enum and checks moves against them."""

    def __init__(self, name: str, edges: Mapping[S, frozenset[S]]) -> None:
        self.name = name
        self.edges = dict(edges)

    def can(self, current: S, target: S) -> bool:
        """Whether the edge current -> target exists."""
        return target in self.edges.get(current, frozenset())

    def check(self, current: S, target: S) -> S:
        """Return target if the edge exists, else raise IllegalTransition naming both ends."""
        if not self.can(current, target):
            raise IllegalTransition(
                f"A {self.name} cannot go from {current.value} to {target.value}.",
                {"from": current.value, "to": target.value},
            )
        return target

    def is_final(self, state: S) -> bool:
        """A state with no way out."""
        return not self.edges.get(state)
