"""bench/load.py runs end to end (a few seconds, few clients) against `courtois serve
--processes 2` on PostgreSQL with a worker, and finds every invariant holding; and its
checker is not a rubber stamp: on a real store, each breach made by hand is reported.

It asserts no speed, which depends on the machine.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from bench_runs import ROOT, run_bench
from sqlalchemy import update
from support import T0, add_members, send_invites

from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts
from courtois.services.context import Context
from courtois.services.lifecycle import withdraw
from courtois.services.recipients import unsubscribe
from courtois.services.worker import run_pass
from courtois.store.tables import contacts, recipients

LATER = T0 + timedelta(minutes=11)


def load_invariants() -> ModuleType:
    """bench/load_invariants.py, which is no package's module."""
    if "load_invariants" in sys.modules:
        return sys.modules["load_invariants"]
    spec = importlib.util.spec_from_file_location(
        "load_invariants", ROOT / "bench" / "load_invariants.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["load_invariants"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.postgres
def test_bench_load_runs_and_every_invariant_holds(tmp_path: Path) -> None:
    figures = tmp_path / "load.json"
    output = run_bench(
        "load.py", "--seconds", "5", "--clients", "4", "--members", "40", "--json", str(figures)
    )
    number = r"[\d,]+ requests +[\d.]+ req/s  p50 +[\d.]+ ms  p99 +[\d.]+ ms"
    for kind in ("preview", "invite", "total"):
        assert re.search(rf"^  {re.escape(kind)} +{number}  .*errors none$", output, re.M), output
    assert re.search(r"^worker: \d+ passes .*; [1-9][\d,]* emails received$", output, re.M)
    assert "[FAILED]" not in output
    assert output.rstrip().endswith("invariants all hold")
    data = json.loads(figures.read_text(encoding="utf-8"))
    assert data["bench"] == "load"
    rows = {row["figure"]: row for row in data["figures"]}
    assert rows["load: total"]["value"] > 0
    assert rows["load: invariants holding after the run"]["met"] is True
    assert data["operations"]["invite"]["requests"] > 0
    assert data["operations"]["total"]["errors"] == {}
    assert data["emails"] > 0
    assert {c["invariant"] for c in data["invariants"]} >= {"1", "2", "3", "6", "8", "10", "11"}
    assert all(c["ok"] for c in data["invariants"])


def _story(ctx: Context) -> tuple[list[bytes], ModuleType]:
    """Two members invite, one withdraws an invitation, the worker sends, one recipient
    unsubscribes, a member imports an address book: what the load does."""
    add_members(ctx)
    send_invites(ctx, "ana", ["bo@example.org", "cy@example.org"], T0, reminders=1)
    answer = send_invites(ctx, "bruno", ["dan@example.org", "eve@example.org"], T0, note="Come")
    withdraw(ctx, answer["invitations"][1]["id"], T0 + timedelta(minutes=5))
    transport = MemoryTransport()
    run_pass(ctx, LATER, transport)
    unsubscribe(ctx, ctx.digest_email("bo@example.org"), LATER)
    run_pass(ctx, LATER + timedelta(days=15), transport)
    contact = ContactInput("fay@example.org", "Fay")
    import_contacts(ctx, "ana", [contact], "test", LATER + timedelta(days=15))
    return [outgoing.raw for outgoing in transport.sent], load_invariants()


def _checks(ctx: Context, received: list[bytes], module: ModuleType) -> list[object]:
    # The two invitations of the story were each answered 201, under their own key.
    client = module.ClientFacts(invite_keys={"first", "second"})
    earlier = [module.contacts_start_unselected(ctx.engine)]
    checks: list[object] = module.check_all(ctx, received, client, LATER, earlier)
    return checks


def _lift_the_stop(ctx: Context, received: list[bytes]) -> None:
    with ctx.engine.begin() as connection:
        connection.execute(update(recipients).values(unsubscribed_at=None))


def _lose_an_email(ctx: Context, received: list[bytes]) -> None:
    received.pop()


def _change_the_words(ctx: Context, received: list[bytes]) -> None:
    received[0] = received[0].replace(b"Ana", b"Eve")


def _select_a_contact(ctx: Context, received: list[bytes]) -> None:
    with ctx.engine.begin() as connection:
        connection.execute(update(contacts).values(selected=True))


@pytest.mark.parametrize(
    ("breach", "invariant"),
    [
        (None, None),
        (_lift_the_stop, "4, 7"),
        (_lose_an_email, "8"),
        (_change_the_words, "2"),
        (_select_a_contact, "1"),
    ],
)
def test_the_checker_reports_each_breach(
    ctx: Context, breach: Callable[[Context, list[bytes]], None] | None, invariant: str | None
) -> None:
    received, module = _story(ctx)
    # Bo's, Cy's and Dan's invitations, then Cy's reminder (Bo's was stopped) 15 days on.
    assert len(received) == 4
    if breach is not None:
        breach(ctx, received)
    checks = _checks(ctx, received, module)
    assert [c.invariant for c in checks if not c.checked] == []  # type: ignore[attr-defined]
    failed = [c.invariant for c in checks if not c.ok]  # type: ignore[attr-defined]
    assert failed == ([] if invariant is None else [invariant])
