"""The admin's recipient lookup and ledger check over real HTTP, on both engines: every
decision about an address with every verdict, the address never in a URL; the chain found
whole, then broken where a row was changed."""

from __future__ import annotations

import html
import logging
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from admin_support import admin_settings, make_history, sign_in
from live_app import sqlite_only
from pages_site import ledger_size, serve
from sqlalchemy import select, text, update
from support import T0, send_invites

from courtois.config import Settings
from courtois.policy.chain import CHAIN
from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.services.member_erasure import erase_member
from courtois.services.recipients import unsubscribe
from courtois.store.tables import decisions, ledger

LINKS = re.compile(r'(?:href|action|src)="([^"]*)"')


@pytest.fixture
def settings() -> Settings:
    """This module's settings: with an API key, so the admin pages are on."""
    return admin_settings()


def _decision_ids(ctx: Context, digest: str) -> set[str]:
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(decisions.c.id).where(decisions.c.recipient_digest == digest)
        ).scalars()
        return {str(i) for i in found}


def test_the_lookup_shows_every_decision_and_the_recipients_state(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    history = make_history(ctx)
    a1 = history.people["a1"]
    digest = ctx.digest_email(a1)
    # One more refusal: a1 stops Bruno, then Bruno tries again.
    unsubscribe(ctx, digest, T0 + timedelta(days=4), from_member="bruno")
    send_invites(ctx, "bruno", [a1], T0 + timedelta(days=4, hours=1))
    expected = _decision_ids(ctx, digest)
    assert len(expected) >= 4  # Ana's (queue, send), Bruno's deferral, Bruno's refusal
    caplog.set_level(logging.DEBUG)
    with serve(ctx) as site:
        csrf = sign_in(site)
        # Upper case and spaces: the same person, as everywhere else.
        page = site.post("/admin/lookup", data={"csrf": csrf, "address": f"  {a1.upper()} "})
    assert page.status_code == 200, page.text
    assert page.url.path == "/admin/lookup"
    assert not page.url.query
    shown = set(re.findall(r'data-decision="(\d+)"', page.text))
    assert shown == expected
    # Every verdict of every decision, one row per rule of the chain.
    for table in re.findall(r'<table class="verdicts".*?</table>', page.text, re.S):
        rules = re.findall(r'<td class="mono">([a-z-]+)</td>', table)
        assert rules == [rule.code for rule in CHAIN]
    # Admins see why, including what the member was never told.
    assert "grouped into a digest" in page.text
    assert "the recipient unsubscribed from this member" in page.text
    assert "unavailable" in page.text  # what Bruno saw
    assert digest in page.text
    assert "Member of the platform" in page.text
    assert "yes, since" in page.text
    assert "Members this recipient stopped" in page.text
    # The address is nowhere in the page's links, nor echoed back at all.
    for link in LINKS.findall(page.text):
        assert "@" not in link
        assert quote(a1) not in link
    assert a1 not in page.text.lower()
    assert "@" not in caplog.text  # nor logged


def test_the_lookup_of_an_unknown_or_bad_address(ctx: Context) -> None:
    history = make_history(ctx)
    with serve(ctx) as site:
        csrf = sign_in(site)
        nobody = site.post("/admin/lookup", data={"csrf": csrf, "address": "nobody@example.org"})
        bad = site.post("/admin/lookup", data={"csrf": csrf, "address": "not an address"})
        suppressed = site.post(
            "/admin/lookup", data={"csrf": csrf, "address": history.people["a3"]}
        )
    assert nobody.status_code == 200
    assert "Nothing is stored under this fingerprint" in nobody.text
    assert bad.status_code == 400
    assert "That is not an email address" in bad.text
    assert "not an address" not in bad.text
    assert suppressed.status_code == 200
    assert "because: hard-bounce" in suppressed.text


def test_the_lookup_names_an_erased_inviter_as_erased(ctx: Context) -> None:
    """Ana is erased: her id stays in the recipient's record, naming no one."""
    history = make_history(ctx)
    erase_member(ctx, "ana", T0 + timedelta(days=5))
    with serve(ctx) as site:
        csrf = sign_in(site)
        page = site.post("/admin/lookup", data={"csrf": csrf, "address": history.people["b1"]})
        other = site.post("/admin/lookup", data={"csrf": csrf, "address": history.people["a1"]})
    assert page.status_code == other.status_code == 200
    assert "erased member" not in page.text  # b1 was invited by Bruno only
    assert '<em>erased member</em> <span class="mono">(ana)</span>' in other.text
    assert 'Bruno <span class="mono">(bruno)</span>' in other.text


def test_the_ledger_holds_then_a_changed_row_is_named(ctx: Context) -> None:
    make_history(ctx)
    size = ledger_size(ctx)
    with serve(ctx) as site:
        sign_in(site)
        whole = site.get("/admin/ledger")
        assert whole.status_code == 200
        assert 'data-ok="true"' in whole.text
        assert f"The ledger holds: {size} entries checked" in whole.text
        assert re.search(r"Checking took [\d.,]+ seconds", whole.text)

        with ctx.engine.begin() as connection:
            connection.execute(
                update(ledger).where(ledger.c.seq == 7).values(payload='{"edited":true}')
            )
        broken = site.get("/admin/ledger")
    assert broken.status_code == 200
    assert 'data-ok="false"' in broken.text
    assert 'data-first-broken="7"' in broken.text
    assert "The ledger is broken from entry 7 on." in broken.text
    assert "6 entries before it hold." in broken.text
    assert "its content does not match its hash" in broken.text


def test_a_payload_that_is_no_longer_json_is_shown_not_raised(ctx: Context) -> None:
    make_history(ctx)
    with ctx.engine.begin() as connection:
        connection.execute(
            text("UPDATE ledger SET payload = :junk WHERE seq = 5"), {"junk": "{not json <b>"}
        )
    with serve(ctx) as site:
        sign_in(site)
        page = site.get("/admin/ledger")
    assert page.status_code == 200
    assert 'data-first-broken="5"' in page.text
    assert "its payload is not JSON" in page.text
    assert "Recorded hash" in page.text  # the broken entry itself is shown


def test_entries_cut_from_the_end_are_caught(ctx: Context) -> None:
    make_history(ctx)
    size = ledger_size(ctx)
    with ctx.engine.begin() as connection:
        connection.execute(ledger.delete().where(ledger.c.seq == size))
    with serve(ctx) as site:
        sign_in(site)
        page = site.get("/admin/ledger")
    assert f'data-first-broken="{size}"' in page.text
    assert f"the head records {size} entries" in page.text


@sqlite_only
@pytest.mark.parametrize(
    ("column", "junk", "problem", "shown"),
    [
        ("at", "'garbage'", "its time is not a date", "garbage</span> (not a date)"),
        ("at", "42", "its time is not a date", "42</span> (not a date)"),
        ("event", "X'00ff'", "its event is not text", '<dd class="mono">00ff</dd>'),
        ("hash", "X'00ff'", "its hash is not text", '<dd class="mono">00ff</dd>'),
        ("payload", "X'7b'", "its payload is not JSON", "Recorded hash"),
    ],
)
def test_any_column_of_a_tampered_row_is_reported_not_raised(
    ctx: Context, column: str, junk: str, problem: str, shown: str
) -> None:
    """SQLite keeps whatever a hand-made UPDATE puts in a column: the page names the entry
    and what is wrong with it, as `courtois audit verify` does, and shows the row as stored."""
    make_history(ctx)
    with ctx.engine.begin() as connection:
        connection.execute(text(f"UPDATE ledger SET {column} = {junk} WHERE seq = 5"))
    assert verify_ledger(ctx.engine).refusal == f"ledger broken at entry 5: {problem}"
    with serve(ctx) as site:
        sign_in(site)
        page = site.get("/admin/ledger")
    assert page.status_code == 200, page.text
    assert 'data-first-broken="5"' in page.text
    assert "The ledger is broken from entry 5 on." in page.text
    assert problem in page.text
    assert shown in page.text


def test_the_page_shows_the_head_as_audit_verify_prints_it(ctx: Context) -> None:
    """The last entry's number and hash, to compare with a record kept elsewhere: the only
    way to see a ledger cut short along with its recorded head."""
    make_history(ctx)
    report = verify_ledger(ctx.engine)
    with ctx.engine.connect() as connection:
        last = connection.execute(
            select(ledger.c.seq, ledger.c.hash).order_by(ledger.c.seq.desc())
        ).first()
    assert last is not None
    assert (report.entries, report.last_hash) == (last.seq, last.hash)
    with serve(ctx) as site:
        sign_in(site)
        page = site.get("/admin/ledger")
        french = site.get("/admin/ledger", headers={"Accept-Language": "fr"})
    head = re.search(r'<dl class="facts" id="ledger-head">.*?</dl>', page.text, re.S)
    assert head, page.text
    assert f'<dd data-seq="{last.seq}">{last.seq}</dd>' in head.group(0)
    assert f'data-hash="{last.hash}">{last.hash}</dd>' in head.group(0)
    assert "Last entry" in head.group(0)
    assert "Its hash" in head.group(0)
    assert "Dernière entrée" in french.text
    assert last.hash in french.text


def test_an_address_that_is_not_utf8_is_not_an_address(ctx: Context) -> None:
    """Bytes that are not UTF-8 are refused, not looked up as U+FFFD look-alikes."""
    make_history(ctx)
    with serve(ctx) as site:
        csrf = sign_in(site)
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        bad = site.post(
            "/admin/lookup",
            content=f"csrf={csrf}&address=%FF%FEr1%40example.org".encode(),
            headers=form,
        )
        raw = site.post(
            "/admin/lookup",
            content=f"csrf={csrf}&address=".encode() + b"\xff\xfer1%40example.org",
            headers=form,
        )
        good = site.post(
            "/admin/lookup",
            content=f"csrf={csrf}&address=%C3%A9lise%40example.org".encode(),
            headers=form,
        )
    for refused in (bad, raw):
        assert refused.status_code == 400, refused.text
        assert "That is not an email address" in refused.text
        assert "\ufffd" not in refused.text
    assert good.status_code == 200, good.text
    assert "Nothing is stored under this fingerprint" in good.text


def test_a_members_own_address_is_not_said_to_hold_nothing(ctx: Context) -> None:
    """Ana's address is stored as a member's: the page says so, and then that nothing is
    stored about her as a recipient, not that nothing is stored at all."""
    make_history(ctx)
    with serve(ctx) as site:
        csrf = sign_in(site)
        page = site.post("/admin/lookup", data={"csrf": csrf, "address": "ana@example.com"})
        french = site.post(
            "/admin/lookup",
            data={"csrf": csrf, "address": "ana@example.com"},
            headers={"Accept-Language": "fr"},
        )
    assert page.status_code == french.status_code == 200
    assert "<dt>Member of the platform</dt><dd>yes</dd>" in page.text
    assert "No invitation or decision is stored under this fingerprint." in page.text
    assert "Nothing is stored" not in page.text
    dit = html.unescape(french.text)
    assert "Aucune invitation ni décision n'est enregistrée sous cette empreinte." in dit
    assert "Rien n'est enregistré" not in dit
