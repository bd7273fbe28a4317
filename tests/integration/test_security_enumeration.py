"""Can an outsider learn whether an address (or a member, or an invitation) is known?
Every way they could ask gets byte-identical answers (status, headers bar the date and
cookies, body) for known and unknown ones, on SQLite and PostgreSQL, and no measurable
difference in time.

An outsider holds no API key, no session and no valid token. What they can send:
- the host API without the key, with an address in the body (join, unsubscribe, forget,
  explain, selection, invite) or an id in the URL: one 401 before anything is looked up;
- the recipient pages with a token they made: signed with a guessed key for an invitation
  that exists or for one that does not, or a real token cut short: one 404;
- a sign-in link they made for a member who exists or who does not: one 401 page.
There is no page that takes an address without a token or a session: no unsubscribe or join
by address outside the key-protected API.

Proved elsewhere: a valid token naming no stored invitation answers exactly as a forged one
(test_pages_tokens); a member is told "unavailable" for an opted-out recipient, never why
(test_invite_flow, invariant 11); an unknown member id answers the API's caller one 404
whatever its shape (test_api_members).

Timing: each pair is timed alternately, 40 times each after a warm-up, and the medians are
compared with a bound (5 ms, or half the faster median) wide enough that a loaded 2-core
machine cannot make it flake, yet far below what a lookup would show under load. Time is
measured on SQLite only: none of these answers reads the database, and the byte-identity
checks run on both engines.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from live_app import sqlite_only
from pages_site import SENT_AT, invite_and_deliver
from security_support import (
    Site,
    comparable,
    median_times,
    served,
    snapshot,
    timing_bound_ms,
)
from support import add_members

from courtois.services.context import Context
from courtois.services.recipients import unsubscribe
from courtois.tokens import Scope, make_token

KNOWN = "bo@example.com"
UNKNOWN = "zz-nobody@example.com"
GUESSED_KEY = b"guessed-secret-0123456789"

Ask = Callable[[httpx.Client, str], httpx.Response]


def _api(method: str, path: str, body: Callable[[str], object] | None = None) -> Ask:
    def ask(http: httpx.Client, who: str) -> httpx.Response:
        return http.request(method, path.format(who=who), json=body(who) if body else None)

    return ask


def _page(method: str, path: str) -> Ask:
    def ask(http: httpx.Client, who: str) -> httpx.Response:
        if method == "POST":
            return http.post(path.format(who=who), data={"List-Unsubscribe": "One-Click"})
        return http.get(path.format(who=who))

    return ask


# Each question, asked about `who`: an address, or the token/id standing for one.
API_QUESTIONS: dict[str, Ask] = {
    "joined": _api("POST", "/v1/joined", lambda who: {"email": who}),
    "unsubscribe": _api("POST", "/v1/recipients/unsubscribe", lambda who: {"email": who}),
    "forget": _api("POST", "/v1/recipients/forget", lambda who: {"email": who}),
    "explain": _api("POST", "/v1/members/ana/explain", lambda who: {"email": who}),
    "selection": _api("POST", "/v1/members/ana/contacts/selection", lambda who: {"emails": [who]}),
    "preview": _api("POST", "/v1/members/ana/invitations/preview", lambda who: {"emails": [who]}),
    "member": _api("GET", "/v1/members/{who}"),
    "invitation": _api("GET", "/v1/invitations/{who}"),
}


@pytest.fixture
def known(ctx: Context) -> dict[str, str]:
    """A delivered invitation to KNOWN, and an unsubscribed address: whatever a lookup
    could find. Returns the names standing for known things."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [KNOWN])
    unsubscribe(ctx, ctx.digest_email("gone@example.com"), SENT_AT)
    return {"invitation": mail.ids[0], "member": "ana"}


@pytest.fixture
def site(ctx: Context, known: dict[str, str]) -> Iterator[Site]:
    with served(ctx) as running:
        yield running


def _pairs(known: dict[str, str]) -> dict[str, tuple[Ask, str, str]]:
    """Question -> (how to ask, about something known, about something unknown)."""
    invitation, unknown_id = known["invitation"], str(uuid.uuid4())
    found: dict[str, tuple[Ask, str, str]] = {}
    for name, ask in API_QUESTIONS.items():
        if name == "member":
            found[f"api {name}"] = (ask, "ana", "nobody")
        elif name == "invitation":
            found[f"api {name}"] = (ask, invitation, unknown_id)
        else:
            found[f"api {name}"] = (ask, KNOWN, UNKNOWN)
    for scope, path in ((Scope.UNSUBSCRIBE, "/u/"), (Scope.WHY, "/why/"), (Scope.JOIN, "/join/")):
        forged = {who: make_token(GUESSED_KEY, scope, who) for who in (invitation, unknown_id)}
        found[f"page {path} GET"] = (
            _page("GET", path + "{who}"),
            forged[invitation],
            forged[unknown_id],
        )
        if scope is not Scope.JOIN:
            found[f"page {path} POST"] = (
                _page("POST", path + "{who}"),
                forged[invitation],
                forged[unknown_id],
            )
    member = {who: make_token(GUESSED_KEY, Scope.MEMBER, who) for who in ("ana", "nobody")}
    found["sign-in link"] = (_page("GET", "/member/sign-in/{who}"), member["ana"], member["nobody"])
    return found


def test_known_and_unknown_get_byte_identical_answers(site: Site, known: dict[str, str]) -> None:
    before = snapshot(site.ctx)
    with site.client() as outsider:
        for label, (ask, seen, unseen) in _pairs(known).items():
            first, second = ask(outsider, seen), ask(outsider, unseen)
            assert first.status_code in (401, 404), (label, first.status_code)
            assert comparable(first) == comparable(second), label
            outsider.cookies.clear()
    assert snapshot(site.ctx) == before
    # With the key, the same API questions do find KNOWN: the outsider's answers were the
    # same because the key was missing, not because nothing was there.
    found = site.api.get(f"/v1/invitations/{known['invitation']}")
    assert found.status_code == 200


@sqlite_only
def test_known_and_unknown_take_the_same_time(site: Site, known: dict[str, str]) -> None:
    figures = []
    with site.client() as outsider:
        for label, (ask, seen, unseen) in _pairs(known).items():
            timing = median_times(
                label, lambda a=ask, w=seen: a(outsider, w), lambda a=ask, w=unseen: a(outsider, w)
            )
            figures.append(timing)
            print(timing)
    for timing in figures:
        assert timing.gap_ms <= timing_bound_ms(timing), str(timing)
