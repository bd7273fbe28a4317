"""Erasing a member (GDPR Art. 17): in one transaction, nothing of theirs is sent any more
(invariant 5), nothing naming them is kept but their id, the ledger still verifies, and
the recipients' own word stays. Real SQLite and PostgreSQL, real SMTP."""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from api_support import running_api
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import select
from support import (
    T0,
    all_stored_text,
    count,
    ledger_events,
    request_for,
    rows,
    send_invites,
)

from conftest import SECRET
from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.domain.errors import Conflict, NotFound
from courtois.services.admin_lookup import look_up_recipient
from courtois.services.audit import verify_ledger
from courtois.services.contacts import import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, invite
from courtois.services.member_erasure import erase_member
from courtois.services.member_export import export_member
from courtois.services.members import get_member, register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipients import unsubscribe
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import (
    consents,
    contacts,
    idempotency_keys,
    idempotency_subjects,
    invitations,
    members,
    messages,
    recipient_blocks,
    recipients,
    webhook_events,
)

EMAIL = "Zephyrine.Quillfeather@members.example"
NAME = "Zephyrine Quillfeather"
NOTE = "Meet me by the lighthouse on Tuesday"
IP = "203.0.113.77"
AGENT = "QuillBrowser/9.1"
BO, CY, DEE, EVE = "bo@example.org", "cy@example.org", "dee@example.org", "eve@example.org"
SENT_AT = T0 + timedelta(minutes=11)
ERASED_AT = T0 + timedelta(hours=1)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhooks on (to a port nobody listens on): events are written only then, and some
    of these tests read them."""
    return dataclasses.replace(
        settings, webhook_url="http://127.0.0.1:9/hooks", webhook_secret="whsec-0123456789abcdef"
    )


def invite_with_consent(
    ctx: Context, emails: list[str], after: timedelta, key: str | None = None
) -> dict[str, Any]:
    """The member's invitation, with their note and a reminder, from their browser."""
    request = request_for(ctx, "zed", emails, reminders=1, note=NOTE)
    request = replace(request, consent=ConsentInput(request.consent.text_shown, IP, AGENT))
    return invite(ctx, request, T0 + after, idempotency_key=key)


def history(ctx: Context) -> dict[str, dict[str, Any]]:
    """A member with everything a member leaves behind: contacts, an invitation sent (its
    reminder waiting), one still in the undo window, a revoked consent, a stored answer;
    and a recipient who stopped them and another who stopped everyone."""
    register_member(ctx, "zed", EMAIL, NAME, "en", T0)
    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", T0)
    book = [ContactInput(a, "Someone") for a in (BO, CY, DEE, EVE)]
    import_contacts(ctx, "zed", book, "file", T0)
    select_contacts(ctx, "zed", [BO, CY], T0)
    sent = invite_with_consent(ctx, [BO, DEE], timedelta(0), key="first")
    run_pass(ctx, SENT_AT, MemoryTransport())
    waiting = invite_with_consent(ctx, [CY], timedelta(minutes=55), key="second")
    unsubscribe(ctx, ctx.digest_email(DEE), T0 + timedelta(minutes=30), from_member="zed")
    unsubscribe(ctx, ctx.digest_email(EVE), T0 + timedelta(minutes=31))
    send_invites(ctx, "ana", [BO], T0 + timedelta(minutes=56))
    return {"sent": sent, "waiting": waiting}


def test_erasure_stops_everything_and_keeps_nothing_that_names_the_member(ctx: Context) -> None:
    made = history(ctx)
    before = all_stored_text(ctx)
    for trace in (EMAIL.lower(), NAME.lower(), NOTE.lower(), IP, AGENT.lower()):
        assert trace in before

    erased = erase_member(ctx, "zed", ERASED_AT)

    # BO's and DEE's invitations were sent (BO's reminder waited; DEE's went when DEE
    # stopped the member), CY's was in its undo window; DEE's and EVE's contacts went
    # when they stopped.
    assert erased.as_dict() == {
        "id": "zed",
        "erased_at": ERASED_AT.isoformat(),
        "invitations_withdrawn": 3,
        "emails_cancelled": 2,
        "consents_revoked": 2,
        "contacts_deleted": 2,
        "already_leaving": 0,
    }
    (member,) = rows(ctx, members, members.c.id == "zed")
    assert (member.email, member.email_digest, member.name, member.reply_to) == ("", "", "", False)
    assert (member.erased_at, member.sessions_ended_at) == (ERASED_AT, ERASED_AT)
    after = all_stored_text(ctx)
    for trace in (EMAIL.lower(), "zephyrine", "quillfeather", NOTE.lower(), IP, AGENT.lower()):
        assert trace not in after
    # What proves each consent was given stays; what the member wrote and where from goes.
    for consent in rows(ctx, consents, consents.c.member_id == "zed"):
        assert (consent.note, consent.ip, consent.user_agent) == ("", "", "")
        assert consent.revoked_at == ERASED_AT
        assert consent.given_at is not None
        assert len(consent.preview_hash) == 64
        assert consent.text_shown.startswith("I ask Agora to send this invitation")
    mine = rows(ctx, invitations, invitations.c.member_id == "zed")
    assert [i.state for i in mine] == ["withdrawn"] * 3
    assert all(i.address is None for i in mine)
    assert count(ctx, messages, messages.c.state == "scheduled") == 1  # Ana's, to BO
    assert count(ctx, contacts, contacts.c.member_id == "zed") == 0
    assert count(ctx, idempotency_keys, idempotency_keys.c.scope == "invite:zed") == 0
    assert count(ctx, idempotency_subjects, idempotency_subjects.c.scope == "invite:zed") == 0
    # The recipients' word is theirs: DEE's stop of this member and EVE's of everyone stay.
    assert count(ctx, recipient_blocks, recipient_blocks.c.member_id == "zed") == 1
    (eve,) = rows(ctx, recipients, recipients.c.digest == ctx.digest_email(EVE))
    assert eve.unsubscribed_at is not None
    # Told once, in the ledger and to the platform; the chain still verifies.
    events = ledger_events(ctx)
    assert ("member.erased", {"member": "zed", "contacts": 2}) in events
    revoked = {p["consent"] for e, p in events if e == "consent.revoked"}
    assert revoked == {made["sent"]["consent_id"], made["waiting"]["consent_id"]}
    (hook,) = rows(ctx, webhook_events, webhook_events.c.type == "member.erased")
    assert hook.payload["data"] == {
        "member_id": "zed",
        "erased_at": ERASED_AT.isoformat(timespec="microseconds"),
    }
    assert verify_ledger(ctx.engine).ok


def test_an_erased_member_is_no_member_and_their_id_is_not_taken_again(ctx: Context) -> None:
    history(ctx)
    erase_member(ctx, "zed", ERASED_AT)
    later = ERASED_AT + timedelta(minutes=1)
    with pytest.raises(NotFound):
        get_member(ctx, "zed")
    with pytest.raises(NotFound):
        export_member(ctx, "zed", later)
    with pytest.raises(NotFound):
        preview_invitations(ctx, "zed", 1, "", None, 0)
    with pytest.raises(NotFound):
        import_contacts(ctx, "zed", [ContactInput("fresh@example.org")], "file", later)
    with pytest.raises(Conflict) as refused:
        register_member(ctx, "zed", EMAIL, NAME, "en", later)
    assert refused.value.details == {"id": "erased"}
    assert count(ctx, contacts, contacts.c.member_id == "zed") == 0
    assert rows(ctx, members, members.c.id == "zed")[0].email == ""
    # A recipient may still stop them (their links outlive the member), and the admin
    # lookup names them as erased, by id.
    unsubscribe(ctx, ctx.digest_email(BO), later, from_member="zed")
    found = look_up_recipient(ctx, BO)
    assert found.erased_members == frozenset({"zed"})
    assert found.member_names["ana"] == "Ana Lima"


def test_a_repeat_erases_again_but_tells_nobody_twice(ctx: Context) -> None:
    history(ctx)
    erase_member(ctx, "zed", ERASED_AT)
    entries = len(ledger_events(ctx))
    again = erase_member(ctx, "zed", ERASED_AT + timedelta(days=1))
    assert again.as_dict() == {
        "id": "zed",
        "erased_at": ERASED_AT.isoformat(),
        "invitations_withdrawn": 0,
        "emails_cancelled": 0,
        "consents_revoked": 0,
        "contacts_deleted": 0,
        "already_leaving": 0,
    }
    assert len(ledger_events(ctx)) == entries
    assert count(ctx, webhook_events, webhook_events.c.type == "member.erased") == 1
    assert rows(ctx, members, members.c.id == "zed")[0].erased_at == ERASED_AT
    assert verify_ledger(ctx.engine).ok


def test_an_unknown_member_is_not_found_and_nothing_is_written(ctx: Context) -> None:
    register_member(ctx, "ana", "ana@members.example", "Ana Lima", "en", T0)
    entries = len(ledger_events(ctx))
    for unknown in ("nobody", "ana\x00"):
        with pytest.raises(NotFound):
            erase_member(ctx, unknown, ERASED_AT)
    assert len(ledger_events(ctx)) == entries
    assert rows(ctx, members)[0].erased_at is None


def test_no_email_of_an_erased_member_leaves_afterwards(ctx: Context) -> None:
    """Over real SMTP: the invitation still in its undo window and the reminder of the one
    already sent are due after the erasure, and neither leaves in any later pass."""
    register_member(ctx, "zed", EMAIL, NAME, "en", T0)
    handler = FaultyHandler()
    with smtp_server(handler) as url:
        transport = SmtpTransport(parse_smtp_url(url))
        invite_with_consent(ctx, [BO], timedelta(0))
        assert run_pass(ctx, SENT_AT, transport).sent == 1
        invite_with_consent(ctx, [CY], timedelta(minutes=55))
        erase_member(ctx, "zed", ERASED_AT)
        for due in (timedelta(minutes=11), timedelta(days=15), timedelta(days=40)):
            report = run_pass(ctx, ERASED_AT + due, transport)
            assert (report.sent, report.unknown) == (0, 0)
    assert [rcpts for rcpts, _ in handler.received] == [[BO]]
    assert count(ctx, messages, messages.c.state.in_(["scheduled", "sending"])) == 0


def test_an_email_being_handed_to_smtp_is_the_one_that_still_leaves(ctx: Context) -> None:
    """As when a consent is revoked: an email the worker holds (`sending`) cannot be
    stopped, and is counted, never said stopped. Once it has left, a repeat of the
    erasure closes its invitation and drops the address it kept."""
    register_member(ctx, "zed", EMAIL, NAME, "en", T0)
    answer = invite_with_consent(ctx, [BO, CY], timedelta(0))
    ids = [item["id"] for item in answer["invitations"]]
    handler = FaultyHandler(data_delay=1.5)
    with smtp_server(handler) as url:
        passing = threading.Thread(
            target=run_pass, args=(ctx, SENT_AT, SmtpTransport(parse_smtp_url(url)))
        )
        passing.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _states(ctx, ids) != {"sending"}:
            time.sleep(0.02)
        assert _states(ctx, ids) == {"sending"}
        erased = erase_member(ctx, "zed", SENT_AT)
        passing.join(10)
    assert (erased.already_leaving, erased.invitations_withdrawn) == (2, 0)
    assert len(handler.received) == 2
    # The consent is revoked: no reminder waits for what left.
    assert {m.state for m in rows(ctx, messages)} == {"sent"}
    again = erase_member(ctx, "zed", SENT_AT + timedelta(minutes=1))
    assert (again.already_leaving, again.invitations_withdrawn) == (0, 2)
    assert all(i.address is None for i in rows(ctx, invitations))


def _states(ctx: Context, invitation_ids: list[str]) -> set[str]:
    with ctx.engine.connect() as connection:
        return set(
            connection.execute(
                select(messages.c.state).where(messages.c.invitation_id.in_(invitation_ids))
            ).scalars()
        )


def raw_bytes(folder: Path) -> bytes:
    """Every file SQLite keeps for the database: the main file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def traces(blob: bytes, *needles: str) -> list[str]:
    """Which of these texts (as given or lower-cased) sit anywhere in the bytes."""
    found = []
    for needle in needles:
        for form in {needle, needle.lower()}:
            for encoding in ("utf-8", "utf-16-le"):
                if form.encode(encoding) in blob:
                    found.append(f"{form} ({encoding})")
    return found


def test_no_byte_of_the_member_is_left_in_the_sqlite_files(tmp_path: Path) -> None:
    """Read straight after the API's answer, the log included: not the address, its local
    part, the name, the note, the IP or the user agent, which the member's records and the
    answers stored for their keyed requests (a registration, a preview) held."""
    folder = tmp_path / "db"
    engine = make_engine(f"sqlite:///{folder / 'courtois.db'}")
    migrate(engine)
    ctx = Context(engine, Settings(secret_key=SECRET, platform_name="Agora"))
    history(ctx)
    with running_api(ctx, ERASED_AT) as api:
        again = {"id": "zed", "email": EMAIL, "name": NAME}
        api.ok(api.post("/v1/members", again, key="register"))
        shown = {"emails": [BO], "note": NOTE}
        api.ok(api.post("/v1/members/zed/invitations/preview", shown, key="preview"))
        personal = (EMAIL, EMAIL.split("@")[0], NAME, "Quillfeather", NOTE, IP, AGENT)
        before = raw_bytes(folder)
        assert all(traces(before, needle) for needle in personal)
        erased = api.http.delete("/v1/members/zed", headers={"Idempotency-Key": "erase"})
        assert erased.status_code == 200
        after = raw_bytes(folder)
    assert traces(after, *personal) == []
    assert traces(after, "Ana Lima")  # the check sees what is still there
    engine.dispose()
