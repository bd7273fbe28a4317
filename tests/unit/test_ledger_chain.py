"""The audit ledger's hash chain (invariant 11): any change names the first broken entry."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courtois.domain.ledger import (
    GENESIS_HASH,
    EventType,
    LedgerEntry,
    canonical,
    canonical_payload,
    entry_hash,
    verify_chain,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
EVENTS = list(EventType)


def build_chain(n: int) -> list[LedgerEntry]:
    entries: list[LedgerEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        at = T0 + timedelta(minutes=seq)
        event = EVENTS[seq % len(EVENTS)].value
        payload: dict[str, Any] = {"invitation_id": f"inv-{seq}", "n": seq, "note": "é"}
        digest = entry_hash(prev, seq, at, event, payload)
        entries.append(LedgerEntry(seq, at, event, payload, prev, digest))
        prev = digest
    return entries


def test_built_chain_verifies() -> None:
    chain = build_chain(12)
    report = verify_chain(chain)
    assert report.ok
    assert report.entries == 12
    assert report.first_broken_seq is None
    assert report.problem is None
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in pairwise(chain))


def test_empty_chain_is_ok() -> None:
    report = verify_chain([])
    assert report.ok
    assert report.entries == 0


def test_verify_accepts_a_generator() -> None:
    assert verify_chain(e for e in build_chain(3)).ok


@pytest.mark.parametrize("k", [1, 5, 10])
def test_tampered_payload_names_that_entry(k: int) -> None:
    chain = build_chain(10)
    chain[k - 1] = dataclasses.replace(chain[k - 1], payload={**chain[k - 1].payload, "n": -1})
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == k
    assert report.entries == k - 1
    assert report.problem is not None
    assert "content" in report.problem


@pytest.mark.parametrize(
    "change",
    [
        {"event": "tampered.event"},
        {"at": T0 + timedelta(days=1)},
        {"hash": "f" * 64},
    ],
    ids=["event", "at", "hash"],
)
def test_tampered_fields_name_that_entry(change: dict[str, Any]) -> None:
    chain = build_chain(6)
    chain[3] = dataclasses.replace(chain[3], **change)
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == 4


def test_rehashed_tampered_entry_breaks_the_next_one() -> None:
    """Re-hashing a forged entry is not enough: the next entry still points at the old one."""
    chain = build_chain(6)
    victim = chain[2]
    payload = {**victim.payload, "n": 999}
    forged_hash = entry_hash(victim.prev_hash, victim.seq, victim.at, victim.event, payload)
    chain[2] = dataclasses.replace(victim, payload=payload, hash=forged_hash)
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == 4
    assert report.entries == 3
    assert report.problem is not None
    assert "previous-hash" in report.problem


@pytest.mark.parametrize("k", [1, 4, 9])
def test_deleted_entry_is_found(k: int) -> None:
    chain = build_chain(10)
    del chain[k - 1]
    report = verify_chain(chain)
    assert not report.ok
    # The entry now standing where seq k should be is the one named.
    assert report.first_broken_seq == k + 1
    assert report.entries == k - 1
    assert report.problem == f"expected entry {k} here"


def test_deleted_and_renumbered_entry_is_found() -> None:
    """Deleting an entry and renumbering the rest still breaks the previous-hash link."""
    chain = build_chain(6)
    del chain[2]
    chain = [dataclasses.replace(e, seq=i) for i, e in enumerate(chain, start=1)]
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == 3
    assert report.entries == 2


@pytest.mark.parametrize("k", [1, 3, 9])
def test_reordered_entries_are_found(k: int) -> None:
    chain = build_chain(10)
    chain[k - 1], chain[k] = chain[k], chain[k - 1]
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == k + 1
    assert report.entries == k - 1


@pytest.mark.parametrize("k", [1, 2, 7])
def test_changed_prev_hash_names_that_entry(k: int) -> None:
    chain = build_chain(7)
    chain[k - 1] = dataclasses.replace(chain[k - 1], prev_hash="1" * 64)
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == k
    assert report.entries == k - 1
    assert report.problem is not None
    assert "previous-hash" in report.problem


def test_chain_must_start_at_one() -> None:
    chain = build_chain(3)[1:]
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == 2


def test_hash_depends_on_every_input() -> None:
    at = T0
    base = entry_hash(GENESIS_HASH, 1, at, "decision", {"a": 1})
    assert base != entry_hash("1" * 64, 1, at, "decision", {"a": 1})
    assert base != entry_hash(GENESIS_HASH, 2, at, "decision", {"a": 1})
    assert base != entry_hash(GENESIS_HASH, 1, at + timedelta(seconds=1), "decision", {"a": 1})
    assert base != entry_hash(GENESIS_HASH, 1, at, "purged", {"a": 1})
    assert base != entry_hash(GENESIS_HASH, 1, at, "decision", {"a": 2})


def test_canonical_form_ignores_key_order() -> None:
    one = {"b": 2, "a": {"y": 1, "x": [1, 2]}}
    two = {"a": {"x": [1, 2], "y": 1}, "b": 2}
    assert canonical(1, T0, "decision", one) == canonical(1, T0, "decision", two)
    assert entry_hash(GENESIS_HASH, 1, T0, "decision", one) == entry_hash(
        GENESIS_HASH, 1, T0, "decision", two
    )
    assert b" " not in canonical(1, T0, "decision", one)


def test_canonical_keeps_non_ascii_as_utf8() -> None:
    assert "Élodie".encode() in canonical(1, T0, "decision", {"name": "Élodie"})


@given(n=st.integers(min_value=1, max_value=25), data=st.data())
def test_any_single_payload_change_is_named(n: int, data: st.DataObject) -> None:
    chain = build_chain(n)
    k = data.draw(st.integers(min_value=1, max_value=n), label="k")
    value = data.draw(st.integers().filter(lambda v: v != k), label="value")
    chain[k - 1] = dataclasses.replace(chain[k - 1], payload={**chain[k - 1].payload, "n": value})
    report = verify_chain(chain)
    assert not report.ok
    assert report.first_broken_seq == k
    assert report.entries == k - 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), _JSON, max_size=6))
def test_the_stored_payload_text_is_json_dumps_sorted_compact_unescaped(
    payload: dict[str, Any],
) -> None:
    # Entries already stored were hashed over this text: it must never change.
    expected = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_payload(payload) == expected
