"""A backup restored (SQLite's `.backup`, PostgreSQL's `pg_dump`), then `courtois audit
reapply-stops --file` with the ledger exported before the restore: the invitations and
emails made after the backup exist again, without an address. The links of an email that
left after the backup work (the RFC 8058 one-click POST, the "why" page), the member cannot
invite the same person again, an acceptance made after the backup lands on its rebuilt
invitation and no reminder follows, the rows of a member the database does not know are
left out and counted, and a second run changes nothing."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import pytest
from pages_site import Clock, serve
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import Engine, func, select
from support import T0
from test_cli import NOW, at, courtois, digest, environment, ok
from test_cli_restore import MAIL_FROM, POSTAL, Stores, invited, restored, snapshot

from courtois.bootstrap import bootstrap
from courtois.config import load_settings
from courtois.delivery.compose import tokens_in
from courtois.services.context import Context
from courtois.store.tables import (
    consent_recipients,
    invitations,
    ledger,
    messages,
    recipients,
    sender_activity,
)

BO, CY, GUS, HAL, JO = (f"{n}@example.org" for n in ("bo", "cy", "gus", "hal", "jo"))
ONE_CLICK = b"List-Unsubscribe=One-Click"
JOINED_AT = T0 + timedelta(days=1)
REBUILT = {"consents": 3, "invitations": 4, "messages": 4, "member_unknown": 3}


def context(env: dict[str, str]) -> Context:
    """The service's context for that environment, as `courtois serve` builds it."""
    return bootstrap(load_settings(environ=env))


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin: Engine,
) -> Iterator[dict[str, Any]]:
    """A backup taken once the members exist and have both invited Jo; then, after it, Jo's
    invitations sent as one digest, invitations made and sent (Bo's as a digest of Ana's and
    Ben's), Cy's accepted from its email, a member added and inviting, Hal invited but not
    sent yet; and the ledger exported before the restore."""
    stores = Stores(request.param, tmp_path_factory.mktemp("rows"), postgres_admin)
    try:
        yield _story(stores)
    finally:
        stores.drop()


def _story(stores: Stores) -> dict[str, Any]:
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        live = stores.new("live")
        env = environment(
            live,
            COURTOIS_SMTP_URL=url,
            COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL,
            COURTOIS_MAIL_FROM=MAIL_FROM,
        )
        ok(env, "migrate")
        for member in ("ana", "ben"):
            email_of = f"{member}@members.example"
            ok(env, "member", "add", member, "--email", email_of, "--name", member)
            ok(env, "invite", "--member", member, "--email", JO, "--now", NOW)
        kept = stores.backup(live)

        # After the backup.
        ok(env, "member", "add", "zed", "--email", "zed@members.example", "--name", "zed")
        mine = ["--email", BO, "--email", CY, "--reminders", "1", "--now", NOW]
        ok(env, "invite", "--member", "ana", *mine)
        ok(env, "invite", "--member", "ben", "--email", BO, "--now", NOW)
        ok(env, "invite", "--member", "zed", "--email", GUS, "--now", NOW)
        passed = ok(env, "worker", "--once", "--now", at(minutes=11), "--json")
        assert (passed["sent"], passed["digests"]) == (4, 2)
        mail = {rcpts[0]: parsed(raw) for rcpts, raw in handler.received}
        live_ctx = context(env)
        try:
            join = tokens_in(mail[CY], live_ctx.settings).join[0]
            with serve(live_ctx, Clock(JOINED_AT)) as site:
                assert site.get(f"/join/{join}").status_code == 303
        finally:
            live_ctx.engine.dispose()
        # Still in its undo window when the file is exported: it never left.
        ok(env, "invite", "--member", "ana", "--email", HAL, "--now", at(minutes=20))
        export = stores.folder / "ledger.jsonl"
        ok(env, "audit", "export", "--output", str(export))
    return {"env": env, "backup": kept, "export": export, "stores": stores, "mail": mail}


def reapply(env: dict[str, str], story: dict[str, Any], when: str) -> dict[str, Any]:
    answer: dict[str, Any] = ok(
        env, "audit", "reapply-stops", "--file", str(story["export"]), "--now", when, "--json"
    )
    return answer


def rows(engine: Engine) -> dict[str, Any]:
    """`snapshot`, and the rows rebuilding writes besides."""
    held = snapshot(engine)
    with engine.connect() as connection:
        for table in (consent_recipients, sender_activity):
            held[table.name] = sorted(tuple(map(str, r)) for r in connection.execute(select(table)))
    return held


def test_the_links_of_an_email_sent_after_the_backup_work_after_the_restore(
    story: dict[str, Any],
) -> None:
    env, engine = restored(story, "links")
    ctx = context(env)
    try:
        reapply(env, story, at(days=2))
        bo = story["mail"][BO]
        one_click = urlsplit(bo["List-Unsubscribe"].split(",")[0].strip(" <>")).path
        why = tokens_in(bo, ctx.settings).why
        with serve(ctx, Clock(T0 + timedelta(days=2))) as site:
            page = site.get(f"/why/{why}")
            assert page.status_code == 200
            # The digest's two inviters.
            assert "ana" in page.text
            assert "ben" in page.text
            cy_why = site.get(f"/why/{tokens_in(story['mail'][CY], ctx.settings).why}")
            assert cy_why.status_code == 200
            stopped = site.post(
                one_click,
                content=ONE_CLICK,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            assert stopped.status_code == 200
        with engine.connect() as connection:
            assert connection.execute(
                select(recipients.c.unsubscribed_at).where(recipients.c.digest == digest(BO))
            ).scalar_one() == T0 + timedelta(days=2)
    finally:
        ctx.engine.dispose()
        engine.dispose()


def test_an_acceptance_made_after_the_backup_lands_and_no_reminder_follows(
    story: dict[str, Any],
) -> None:
    env, engine = restored(story, "accepted")
    try:
        report = reapply(env, story, at(days=2))
        assert report["stops"]["accepted"] == {"applied": 1, "skipped": 0}
        with engine.connect() as connection:
            cy = connection.execute(
                select(invitations).where(invitations.c.recipient_digest == digest(CY))
            ).one()
            answered = T0 + timedelta(days=2)
            assert (cy.state, cy.address, cy.answered_at) == ("accepted", None, answered)
            assert cy.sent_at == T0 + timedelta(minutes=11)
            kinds = connection.execute(
                select(messages.c.kind, messages.c.state).where(messages.c.invitation_id == cy.id)
            ).all()
            assert kinds == [("invitation", "sent")]
        handler = FaultyHandler()
        with smtp_server(handler) as url:
            worker = {**env, "COURTOIS_SMTP_URL": url}
            ok(worker, "worker", "--once", "--now", at(days=20), "--json")
        assert [rcpts for rcpts, _raw in handler.received if CY in rcpts] == []
    finally:
        engine.dispose()


def test_the_member_cannot_invite_the_same_person_again_after_the_restore(
    story: dict[str, Any],
) -> None:
    env, engine = restored(story, "again")
    try:
        reapply(env, story, at(days=2))
        for member in ("ana", "ben"):
            decision = invited(env, member, BO, at(days=2, minutes=1))
            assert decision["allowed"] is False
            refused = {v["rule"] for v in decision["verdicts"] if v["outcome"] == "deny"}
            assert "not-already-invited" in refused
        with engine.connect() as connection:
            counted = connection.execute(
                select(sender_activity.c.state, sender_activity.c.sent_at).where(
                    sender_activity.c.member_id == "ana"
                )
            ).all()
        # Jo's, held in the backup, left after it: in doubt, it waits for an admin.
        assert sorted(counted, key=str) == [
            ("accepted", T0 + timedelta(minutes=11)),
            ("blocked", None),
            ("scheduled", None),
            ("sent", T0 + timedelta(minutes=11)),
        ]
    finally:
        engine.dispose()


def test_the_rows_are_rebuilt_once_and_reported(story: dict[str, Any]) -> None:
    env, engine = restored(story, "twice")
    try:
        first = reapply(env, story, at(days=2))
        assert first["rebuilt"] == REBUILT
        with engine.connect() as connection:
            bo = connection.execute(
                select(
                    messages.c.member_id,
                    messages.c.kind,
                    messages.c.state,
                    messages.c.carried_by,
                    messages.c.sent_at,
                ).where(messages.c.recipient_digest == digest(BO))
            ).all()
            addresses = connection.execute(
                select(func.count()).where(
                    invitations.c.address.is_not(None),
                    invitations.c.recipient_digest.in_([digest(BO), digest(CY)]),
                )
            ).scalar_one()
        (carrier,) = [m for m in bo if m.carried_by is None]
        (carried,) = [m for m in bo if m.carried_by is not None]
        assert (carrier.member_id, carrier.kind, carrier.state) == ("ana", "digest", "sent")
        assert (carried.member_id, carried.state) == ("ben", "sent")
        assert carrier.sent_at == T0 + timedelta(minutes=11)
        assert addresses == 0
        held = rows(engine)

        again = reapply(env, story, at(days=3))
        assert again["rebuilt"] == {**dict.fromkeys(REBUILT, 0), "member_unknown": 3}
        assert again["stops"]["accepted"] == {"applied": 0, "skipped": 1}
        assert rows(engine) == held
        assert ok(env, "audit", "verify", "--json")["ok"] is True
        with engine.connect() as connection:
            entries = connection.execute(select(func.count()).select_from(ledger)).scalar_one()
        assert entries == held["ledger"]
        text = courtois(env, "audit", "reapply-stops", "--file", str(story["export"]))
        assert text.returncode == 0, text.stderr
        assert "rebuilt: invitations 0, messages 0, consents 0" in text.stdout
        assert "not rebuilt, member unknown: 3" in text.stdout
    finally:
        engine.dispose()


def test_a_digest_held_in_the_backup_that_left_after_it_is_one_email_in_doubt(
    story: dict[str, Any],
) -> None:
    env, engine = restored(story, "doubt")
    try:
        reapply(env, story, at(days=2))
        with engine.connect() as connection:
            jo = connection.execute(
                select(
                    messages.c.id,
                    messages.c.member_id,
                    messages.c.kind,
                    messages.c.state,
                    messages.c.carried_by,
                    messages.c.first_attempt_at,
                ).where(messages.c.recipient_digest == digest(JO))
            ).all()
        (carrier,) = [m for m in jo if m.carried_by is None]
        (carried,) = [m for m in jo if m.carried_by is not None]
        assert (carrier.kind, carrier.state) == ("digest", "unknown")
        assert (carried.carried_by, carried.state) == (carrier.id, "unknown")
        assert {m.first_attempt_at for m in jo} == {T0 + timedelta(minutes=11)}
    finally:
        engine.dispose()


def test_an_invitation_that_never_left_is_not_sent_without_its_address(
    story: dict[str, Any],
) -> None:
    env, engine = restored(story, "unsent")
    try:
        reapply(env, story, at(days=2))
        with engine.connect() as connection:
            hal = connection.execute(
                select(invitations.c.state, messages.c.state.label("email"), messages.c.last_reason)
                .join(messages, messages.c.invitation_id == invitations.c.id)
                .where(invitations.c.recipient_digest == digest(HAL))
            ).one()
        assert (hal.state, hal.email) == ("blocked", "cancelled")
        assert "never sent" in hal.last_reason
        handler = FaultyHandler()
        with smtp_server(handler) as url:
            worker = {**env, "COURTOIS_SMTP_URL": url}
            ok(worker, "worker", "--once", "--now", at(days=3), "--json")
        assert handler.received == []
        # Nothing reached Hal: Ana may invite them again, with their address.
        assert invited(env, "ana", HAL, at(days=3, minutes=1))["allowed"] is True
    finally:
        engine.dispose()
