"""What the security tests share: one served app with the API, the member pages, the admin
pages and the recipient pages on; a snapshot of everything stored; and the attacks' answers
checked against it.

A hostile request must change nothing: the snapshot holds the row count of every table of
the schema and the ledger's head (its last sequence number and hash), so one stray insert,
delete or ledger entry anywhere shows; and the states that change in place without a ledger
entry (contacts chosen, invitations' and messages' states, consents revoked).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from admin_support import API_KEY, csrf_of
from live_app import LiveSite, live_site
from sqlalchemy import func, select

from conftest import T0
from courtois.services.context import Context
from courtois.store.tables import (
    consents,
    contacts,
    invitations,
    ledger_head,
    messages,
    metadata,
)

# Cookies, dates and per-request nonces: what differs between two answers whatever the input.
VOLATILE_HEADERS = frozenset({"date", "set-cookie", "content-length"})
CSRF_FIELD = re.compile(r'name="csrf" value="[^"]*"')


@dataclass(frozen=True)
class Snapshot:
    """Every table's row count, the ledger's head, and the states changed in place."""

    rows: dict[str, int]
    head: tuple[int, str] | None
    states: tuple[tuple[str, str, int], ...]


def snapshot(ctx: Context) -> Snapshot:
    """What the database holds now, table by table."""
    with ctx.engine.connect() as connection:
        rows = {
            table.name: int(connection.execute(select(func.count()).select_from(table)).scalar())
            for table in metadata.sorted_tables
        }
        head = connection.execute(select(ledger_head.c.seq, ledger_head.c.hash)).first()
        states = []
        for name, column in (
            ("contacts.selected", contacts.c.selected),
            ("invitations.state", invitations.c.state),
            ("messages.state", messages.c.state),
            ("consents.revoked", consents.c.revoked_at.is_not(None)),
        ):
            grouped = connection.execute(select(column, func.count()).group_by(column)).all()
            states.extend((name, str(value), int(n)) for value, n in grouped)
    return Snapshot(rows, (int(head.seq), str(head.hash)) if head else None, tuple(sorted(states)))


@dataclass
class Site:
    """One app served over a test's database with every part on, and a bearer client."""

    live: LiveSite
    api: httpx.Client

    @property
    def ctx(self) -> Context:
        return self.live.ctx

    @property
    def base_url(self) -> str:
        return self.live.base_url

    def client(self, **kwargs: Any) -> httpx.Client:
        """A fresh client with no key and no cookie: an outsider."""
        return httpx.Client(base_url=self.base_url, timeout=30, follow_redirects=False, **kwargs)


@contextmanager
def served(ctx: Context, now: datetime = T0, **settings: Any) -> Iterator[Site]:
    """The whole app, with the API key set (so the admin pages are on too)."""
    with (
        live_site(ctx, now, **{"api_key": API_KEY, **settings}) as live,
        httpx.Client(
            base_url=live.base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30
        ) as api,
    ):
        yield Site(live, api)


@contextmanager
def admin_session(site: Site) -> Iterator[tuple[httpx.Client, str]]:
    """A client signed in to the admin pages, and its session's CSRF token."""
    with site.client() as http:
        form = http.get("/admin/sign-in")
        answer = http.post("/admin/sign-in", data={"csrf": csrf_of(form), "key": API_KEY})
        assert answer.status_code == 303, answer.text
        yield http, csrf_of(http.get("/admin/lookup"))


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """An RFC 9457 answer with this status: problem media type, type, title, detail."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"].startswith("/problems/")
    assert body["title"]
    assert body["detail"]
    return body


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], bytes]:
    """Status, headers bar the volatile ones, and body with any per-session CSRF token
    blanked: what must be byte-identical between two answers an outsider compares."""
    headers = {k: v for k, v in response.headers.items() if k.lower() not in VOLATILE_HEADERS}
    body = CSRF_FIELD.sub('name="csrf" value=""', response.text).encode()
    return response.status_code, headers, body


@dataclass(frozen=True)
class Timing:
    """Median wall time of two kinds of request, interleaved, in milliseconds."""

    label: str
    first_ms: float
    second_ms: float
    samples: int

    @property
    def gap_ms(self) -> float:
        return abs(self.first_ms - self.second_ms)

    def __str__(self) -> str:
        return (
            f"{self.label}: median {self.first_ms:.2f} ms vs {self.second_ms:.2f} ms, "
            f"gap {self.gap_ms:.2f} ms over {self.samples} requests each"
        )


def median_times(
    label: str,
    first: Callable[[], httpx.Response],
    second: Callable[[], httpx.Response],
    samples: int = 40,
) -> Timing:
    """Time both requests `samples` times, alternating so that a burst of load on the
    machine hits both alike, after a few warm-up rounds."""
    for _ in range(5):
        first()
        second()
    times: tuple[list[float], list[float]] = ([], [])
    for round_ in range(samples):
        pair = (first, second) if round_ % 2 == 0 else (second, first)
        for request in pair:
            started = time.perf_counter()
            request()
            spent = (time.perf_counter() - started) * 1000
            times[0 if request is first else 1].append(spent)
    return Timing(label, statistics.median(times[0]), statistics.median(times[1]), samples)


# A leak worth the name is a database round trip or a key derivation: a few milliseconds.
# The bound is wide so that a loaded 2-core machine cannot make it flake, and relative to the
# request's own cost so that a slow machine does not either.
def timing_bound_ms(timing: Timing) -> float:
    """How far apart two medians may be and still tell nothing."""
    return max(5.0, 0.5 * min(timing.first_ms, timing.second_ms))


@dataclass(frozen=True)
class World:
    """Two members, each with contacts, a consent and invitations of their own: an attack
    that reaches across shows as one of Bruno's rows in Ana's answers."""

    contacts: dict[str, list[int]]
    invitations: dict[str, list[str]]
    consents: dict[str, str]


def make_world(ctx: Context, now: datetime = T0) -> World:
    """Ana and Bruno, three contacts and two scheduled invitations each."""
    from member_pages_support import contact_ids, import_some
    from support import send_invites

    from courtois.domain.contacts import ContactInput
    from courtois.services.contacts import import_contacts
    from courtois.services.members import register_member

    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", now)
    register_member(ctx, "bruno", "bruno@members.example", "Bruno Diaz", "en", now)
    import_some(ctx, "ana", 3, now)
    records = [ContactInput(f"friend-{i}@example.net", f"Friend {i}", f"#{i}") for i in range(3)]
    import_contacts(ctx, "bruno", records, "test", now)
    invitations, consents = {}, {}
    for member, people in (("ana", ["a1@example.com", "a2@example.com"]), ("bruno", ["b1@x.org"])):
        answer = send_invites(ctx, member, people, now)
        invitations[member] = [item["id"] for item in answer["invitations"]]
        consents[member] = answer["consent_id"]
    return World({m: contact_ids(ctx, m) for m in ("ana", "bruno")}, invitations, consents)
