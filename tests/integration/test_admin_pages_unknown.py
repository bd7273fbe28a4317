"""Emails in doubt, settled by an admin over real HTTP on both engines: a real SMTP server
hangs up after each body, so the worker cannot know what arrived; the admin says, one by
one or in bulk; each word goes into the ledger, and nothing is ever sent again."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from admin_support import admin_settings, sign_in
from pages_site import ledger_size, serve
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import select
from support import T0, add_members, by_email, ledger_events, rows, send_invites

from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import Delivery, Outgoing
from courtois.services.admin_unknown import FAILED_REASON, SENT_REASON
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages
from courtois.web.pages.render import when

CLAIMED = T0 + timedelta(minutes=12)
LATER = T0 + timedelta(hours=3)


@pytest.fixture
def settings() -> Settings:
    """This module's settings: with an API key, so the admin pages are on."""
    return admin_settings()


class Killed(Exception):
    """The worker's end, mid-send."""


class DiesMidSend:
    """A transport whose worker dies once the emails are handed over: nothing records what
    the server said, and the claimed messages stay `sending` until their lease runs out."""

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        raise Killed


def _invite_all(ctx: Context) -> dict[str, Any]:
    add_members(ctx)
    ana = by_email(
        send_invites(
            ctx, "ana", [f"{n}@example.org" for n in ("r1", "r2", "r3", "d1")], T0, reminders=1
        )
    )
    bruno = by_email(send_invites(ctx, "bruno", ["d1@example.org"], T0 + timedelta(minutes=1)))
    return {"ana": ana, "bruno": bruno}


def _in_doubt(ctx: Context) -> dict[str, Any]:
    """Ana invites r1, r2, r3 (with a reminder) and d1, whom Bruno invites a minute later
    (one digest); the server hangs up after every body: four emails in doubt, the digest
    carrying Bruno's invitation."""
    made = _invite_all(ctx)
    handler = FaultyHandler(drop_in_data=True)
    with smtp_server(handler) as url:
        report = run_pass(ctx, CLAIMED, SmtpTransport(parse_smtp_url(url)))
    assert report.unknown == 4
    assert len(handler.received) == 4
    return made


def _message(ctx: Context, invitation_id: str) -> Any:
    (row,) = rows(ctx, messages, messages.c.invitation_id == invitation_id)
    return row


def _invitation(ctx: Context, invitation_id: str) -> Any:
    (row,) = rows(ctx, invitations, invitations.c.id == invitation_id)
    return row


def test_emails_in_doubt_are_settled_one_by_one_and_in_bulk(ctx: Context) -> None:
    made = _in_doubt(ctx)
    ana, bruno = made["ana"], made["bruno"]
    r1 = _message(ctx, ana["r1@example.org"]["id"])
    r2 = _message(ctx, ana["r2@example.org"]["id"])
    digest = _message(ctx, ana["d1@example.org"]["id"])
    carried = _message(ctx, bruno["d1@example.org"]["id"])
    assert (digest.kind, carried.carried_by) == ("digest", digest.id)
    with serve(ctx) as site:
        site.clock.now = LATER
        csrf = sign_in(site)
        listed = site.get("/admin/unknown")
        assert listed.status_code == 200
        assert set(re.findall(r'name="message" value="([^"]+)"', listed.text)) == {
            r1.id,
            r2.id,
            digest.id,
            _message(ctx, ana["r3@example.org"]["id"]).id,
        }
        assert "(and 1 more in this digest)" in listed.text
        assert "connection closed by the server" in listed.text

        size = ledger_size(ctx)
        one = site.post("/admin/unknown", data={"csrf": csrf, "one": f"sent:{r1.id}"})
        assert one.status_code == 303
        shown = site.get(one.headers["location"])
        assert "1 email recorded as delivered." in shown.text
        assert f'name="message" value="{r1.id}"' not in shown.text  # no longer listed

        # r1 arrived: sent when its fate became unknown, its invitation sent from then,
        # with the reminder Ana ticked.
        (r1_now,) = rows(ctx, messages, messages.c.id == r1.id)
        assert (r1_now.state, r1_now.sent_at, r1_now.last_reason) == ("sent", CLAIMED, SENT_REASON)
        invitation = _invitation(ctx, ana["r1@example.org"]["id"])
        assert (invitation.state, invitation.sent_at) == ("sent", CLAIMED)
        assert invitation.expires_at == CLAIMED + timedelta(days=30)
        reminders = rows(ctx, messages, messages.c.invitation_id == invitation.id)
        assert sorted((m.kind, m.state) for m in reminders) == [
            ("invitation", "sent"),
            ("reminder", "scheduled"),
        ]
        events = ledger_events(ctx)[size:]
        assert (
            "message.state",
            {"message": r1.id, "from": "unknown", "to": "sent", "reason": SENT_REASON},
        ) in events
        assert any(e == "invitation.state" and p["to"] == "sent" for e, p in events)

        size = ledger_size(ctx)
        bulk = site.post(
            "/admin/unknown",
            data={"csrf": csrf, "message": [r2.id, digest.id], "outcome": "failed"},
        )
        assert bulk.status_code == 303
        shown = site.get(bulk.headers["location"])
        assert "3 emails recorded as not delivered." in shown.text
        assert "3 invitations updated." in shown.text
        for message in (r2, digest, carried):
            (now,) = rows(ctx, messages, messages.c.id == message.id)
            assert (now.state, now.sent_at, now.last_reason) == ("failed", None, FAILED_REASON)
        for invitation_id in (
            ana["r2@example.org"]["id"],
            ana["d1@example.org"]["id"],
            bruno["d1@example.org"]["id"],
        ):
            assert _invitation(ctx, invitation_id).state == "bounced"
        events = ledger_events(ctx)[size:]
        failed = {p["message"] for e, p in events if e == "message.state" and p["to"] == "failed"}
        assert failed == {r2.id, digest.id, carried.id}

        # A second click changes nothing and says so.
        size = ledger_size(ctx)
        again = site.post(
            "/admin/unknown",
            data={"csrf": csrf, "message": [r2.id, digest.id], "outcome": "failed"},
        )
        shown = site.get(again.headers["location"])
        assert "2 were settled already." in shown.text
        assert ledger_size(ctx) == size

    # Nothing in doubt or settled is ever sent again; r3 stays in doubt.
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        run_pass(ctx, T0 + timedelta(days=2), SmtpTransport(parse_smtp_url(url)))
    assert handler.received == []
    assert _message(ctx, ana["r3@example.org"]["id"]).state == "unknown"


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"outcome": "sent"}, "Tick at least one email first."),
        ({"outcome": "maybe", "message": "x"}, "Say whether the email arrived or not."),
        ({"one": "sent:no-such-message"}, "Some of the chosen emails do not exist."),
    ],
)
def test_a_bad_resolution_changes_nothing(ctx: Context, fields: dict[str, str], words: str) -> None:
    _in_doubt(ctx)
    size = ledger_size(ctx)
    with serve(ctx) as site:
        csrf = sign_in(site)
        answer = site.post("/admin/unknown", data={"csrf": csrf, **fields})
    assert answer.status_code == 400
    assert words in answer.text
    assert ledger_size(ctx) == size
    with ctx.engine.connect() as connection:
        states = connection.execute(select(messages.c.state)).scalars().all()
    assert set(states) == {"unknown"}


def test_a_forged_resolution_is_refused(ctx: Context) -> None:
    made = _in_doubt(ctx)
    r1 = _message(ctx, made["ana"]["r1@example.org"]["id"])
    size = ledger_size(ctx)
    with serve(ctx) as site:
        sign_in(site)
        answer = site.post("/admin/unknown", data={"one": f"sent:{r1.id}"})
    assert answer.status_code == 403
    assert ledger_size(ctx) == size
    assert _message(ctx, made["ana"]["r1@example.org"]["id"]).state == "unknown"


def test_only_the_admins_own_resolution_is_confirmed(ctx: Context) -> None:
    """A link cannot tell an admin that emails were settled: the page shows a resolution's
    counts only from its own redirect, in the session that made it."""
    made = _in_doubt(ctx)
    r1 = _message(ctx, made["ana"]["r1@example.org"]["id"])
    forged = (
        "/admin/unknown?done=sent&moved=4&closed=4&already=0",
        "/admin/unknown?done=failed&moved=4&seal=" + "0" * 64,
    )
    with serve(ctx) as site:
        site.clock.now = LATER
        csrf = sign_in(site)
        for link in forged:
            page = site.get(link)
            assert page.status_code == 200, link
            assert 'class="done"' not in page.text, link
            assert "recorded as" not in page.text, link
        one = site.post("/admin/unknown", data={"csrf": csrf, "one": f"sent:{r1.id}"})
        confirmed = one.headers["location"]
        assert "1 email recorded as delivered." in site.get(confirmed).text
        altered = site.get(confirmed.replace("moved=1", "moved=4"))
        assert "recorded as delivered" not in altered.text
        site.client.cookies.clear()
        sign_in(site)  # a new session
        elsewhere = site.get(confirmed)
        assert elsewhere.status_code == 200
        assert "recorded as delivered" not in elsewhere.text


def _worker_died(ctx: Context) -> dict[str, Any]:
    """The same emails, claimed at CLAIMED by a worker that died while sending them; a
    later pass, at LATER, finds their leases run out and puts them in doubt."""
    made = _invite_all(ctx)
    with pytest.raises(Killed):
        run_pass(ctx, CLAIMED, DiesMidSend())
    assert run_pass(ctx, LATER, None).unknown == 5  # four emails, one carrying another
    return made


def test_a_dead_workers_emails_show_when_they_were_handed_over_and_are_sent_from_then(
    ctx: Context,
) -> None:
    made = _worker_died(ctx)
    ana, bruno = made["ana"], made["bruno"]
    r1 = _message(ctx, ana["r1@example.org"]["id"])
    digest = _message(ctx, ana["d1@example.org"]["id"])
    carried = _message(ctx, bruno["d1@example.org"]["id"])
    # The carrier may have left as a digest: it is recorded as one, as when its worker
    # records the server's answer.
    assert (digest.kind, carried.carried_by) == ("digest", digest.id)
    assert (r1.first_attempt_at, r1.updated_at) == (CLAIMED, LATER)
    with serve(ctx) as site:
        site.clock.now = LATER + timedelta(hours=1)
        csrf = sign_in(site)
        listed = site.get("/admin/unknown")
        french = site.get("/admin/unknown", headers={"Accept-Language": "fr"})
        assert listed.status_code == french.status_code == 200
        # The id the mail server's logs name, as text; when it was handed over, and when
        # its fate became unknown.
        for message in (r1, digest):
            row = re.search(rf'<tr id="message-{message.id}">.*?</tr>', listed.text, re.S)
            assert row, listed.text
            assert f'<td class="mono message-id">{message.id}</td>' in row.group(0)
            assert f'<td class="handed">{when(CLAIMED, "en")}</td>' in row.group(0)
            assert when(LATER, "en") in row.group(0)
            assert "worker lease expired" in row.group(0)
        assert "digest (and 1 more in this digest)" in listed.text
        assert "invitation (and 1 more" not in listed.text
        dit = html.unescape(french.text)
        assert 'récapitulatif <span class="mono">digest</span> (et 1 autre dans' in dit
        assert "bail du processus d'envoi expiré" in dit
        assert f'<td class="handed">{when(CLAIMED, "fr")}</td>' in dit

        for message in (r1, digest):
            answer = site.post("/admin/unknown", data={"csrf": csrf, "one": f"sent:{message.id}"})
            assert answer.status_code == 303

    # Sent when they were handed over, not when a later pass noticed the dead worker: the
    # day the charts count them on, the recipient's quota, the reminder and the expiry
    # all run from then.
    for message in (r1, digest, carried):
        (now,) = rows(ctx, messages, messages.c.id == message.id)
        assert (now.state, now.sent_at) == ("sent", CLAIMED)
    for invitation_id in (
        ana["r1@example.org"]["id"],
        ana["d1@example.org"]["id"],
        bruno["d1@example.org"]["id"],
    ):
        invitation = _invitation(ctx, invitation_id)
        assert (invitation.state, invitation.sent_at) == ("sent", CLAIMED)
        assert invitation.expires_at == CLAIMED + timedelta(days=30)
    (reminder,) = rows(
        ctx,
        messages,
        (messages.c.invitation_id == ana["r1@example.org"]["id"]) & (messages.c.kind == "reminder"),
    )
    assert reminder.scheduled_at == CLAIMED + ctx.settings.policy.reminder_interval


@pytest.mark.parametrize("outcome", ["sent", "failed"])
def test_a_part_carried_in_a_digest_is_not_settled_apart_from_it(
    ctx: Context, outcome: str
) -> None:
    """Only the digest is offered: a part of it, named by hand, is refused and nothing
    changes (it left, or not, with the email that carried it)."""
    made = _in_doubt(ctx)
    carried = _message(ctx, made["bruno"]["d1@example.org"]["id"])
    r1 = _message(ctx, made["ana"]["r1@example.org"]["id"])
    assert carried.carried_by is not None
    size = ledger_size(ctx)
    with serve(ctx) as site:
        csrf = sign_in(site)
        listed = site.get("/admin/unknown")
        assert f'value="{carried.id}"' not in listed.text
        assert f"{outcome}:{carried.id}" not in listed.text
        one = site.post("/admin/unknown", data={"csrf": csrf, "one": f"{outcome}:{carried.id}"})
        bulk = site.post(
            "/admin/unknown",
            data={"csrf": csrf, "message": [r1.id, carried.id], "outcome": outcome},
        )
    for answer in (one, bulk):
        assert answer.status_code == 400
        assert "Some of the chosen emails were carried in a digest" in answer.text
    assert ledger_size(ctx) == size
    with ctx.engine.connect() as connection:
        states = connection.execute(select(messages.c.state)).scalars().all()
    assert set(states) == {"unknown"}


def test_a_settlements_sentences_are_apart(ctx: Context) -> None:
    made = _in_doubt(ctx)
    r1 = _message(ctx, made["ana"]["r1@example.org"]["id"])
    r2 = _message(ctx, made["ana"]["r2@example.org"]["id"])
    with serve(ctx) as site:
        site.clock.now = LATER
        csrf = sign_in(site)
        site.post("/admin/unknown", data={"csrf": csrf, "one": f"sent:{r1.id}"})
        answer = site.post(
            "/admin/unknown",
            data={"csrf": csrf, "message": [r1.id, r2.id], "outcome": "failed"},
        )
        shown = site.get(answer.headers["location"])
    notice = re.search(r'<p class="done" role="status">(.*?)</p>', shown.text, re.S)
    assert notice, shown.text
    assert notice.group(1).strip() == (
        "1 email recorded as not delivered. 1 invitation updated. 1 was settled already."
    )


def test_the_page_words_kinds_and_reasons_in_french(ctx: Context) -> None:
    _in_doubt(ctx)
    with serve(ctx) as site:
        site.clock.now = LATER
        sign_in(site)
        page = site.get("/admin/unknown", headers={"Accept-Language": "fr"})
    assert page.status_code == 200
    dit = html.unescape(page.text)
    assert 'récapitulatif <span class="mono">digest</span>' in dit
    assert "issue inconnue\u00a0: " in dit
    assert "outcome unknown:" not in dit
    assert "Identifiant du message" in dit
