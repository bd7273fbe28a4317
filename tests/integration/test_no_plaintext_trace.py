""" "Forget me", opt-outs, "not interested" and a member deleting their address book leave
no plaintext trace of the address in the database files, the SQLite write-ahead log
included, once they answer (invariant 10). The test reads the raw bytes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from api_support import running_api
from member_pages_support import signed_in
from smtp_server import FaultyHandler, smtp_server

from conftest import SECRET, T0
from courtois.config import Settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.services.contacts import import_contacts, list_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipient_actions import decline, resolve_link
from courtois.services.recipients import forget_recipient, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.tokens import Scope, make_token

FORGOTTEN = "Forget.Me.Please@Example.org"
OPTED_OUT = "opt.out.now@example.org"
KEPT = "still.here@example.org"


def raw_bytes(folder: Path) -> bytes:
    """Every file SQLite keeps for the database: the main file, its WAL and shared memory."""
    return b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())


def traces(blob: bytes, address: str) -> list[str]:
    """Forms in which an address could sit in the files: as given, folded, local part."""
    local = address.split("@")[0]
    needles = {address, address.lower(), local, local.lower()}
    found = []
    for needle in needles:
        for encoding in ("utf-8", "utf-16-le"):
            if needle.encode(encoding) in blob:
                found.append(f"{needle} ({encoding})")
    return found


def test_forget_and_opt_out_leave_no_bytes_behind(tmp_path: Path) -> None:
    folder = tmp_path / "db"
    engine = make_engine(f"sqlite:///{folder / 'courtois.db'}")
    migrate(engine)
    ctx = Context(engine, Settings(secret_key=SECRET, platform_name="Agora"))
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    book = [ContactInput(a, "Someone") for a in (FORGOTTEN, OPTED_OUT, KEPT)]
    import_contacts(ctx, "ana", book, "test", T0)
    preview = preview_invitations(ctx, "ana", 3, "see you there", None, 1)
    request = InviteRequest(
        "ana",
        (FORGOTTEN, OPTED_OUT, KEPT),
        "see you there",
        None,
        1,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    invite(ctx, request, T0, idempotency_key="first-and-only")
    run_pass(ctx, T0 + timedelta(minutes=11), MemoryTransport())

    before = raw_bytes(folder)
    assert traces(before, FORGOTTEN), "the address should be stored before it is forgotten"
    assert traces(before, OPTED_OUT)

    erase_and_check(ctx, folder)
    engine.dispose()


def erase_and_check(ctx: Context, folder: Path) -> None:
    """Forget one address and opt another out: neither is left in the files, while the one
    nobody asked to remove still is (so the check can see addresses)."""
    forget_recipient(ctx, ctx.digest_email(FORGOTTEN), T0 + timedelta(hours=1))
    unsubscribe(ctx, ctx.digest_email(OPTED_OUT), T0 + timedelta(hours=2))
    after = raw_bytes(folder)
    assert traces(after, FORGOTTEN) == []
    assert traces(after, OPTED_OUT) == []
    assert traces(after, KEPT)


def _store(tmp_path: Path) -> tuple[Context, Path]:
    folder = tmp_path / "db"
    engine = make_engine(f"sqlite:///{folder / 'courtois.db'}")
    migrate(engine)
    ctx = Context(engine, Settings(secret_key=SECRET, platform_name="Agora"))
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    return ctx, folder


def _invite(ctx: Context, emails: tuple[str, ...]) -> None:
    preview = preview_invitations(ctx, "ana", len(emails), "", None, 0)
    request = InviteRequest(
        "ana", emails, "", None, 0, preview.preview_hash, ConsentInput(preview.consent_text)
    )
    invite(ctx, request, T0)


def test_a_mail_servers_words_about_the_address_are_not_kept(tmp_path: Path) -> None:
    """Servers quote the address in their refusals; what is kept of them (the email's last
    reason, the ledger, which "forget me" cannot rewrite) holds no address."""
    ctx, folder = _store(tmp_path)
    _invite(ctx, (FORGOTTEN, OPTED_OUT, KEPT))
    handler = FaultyHandler(
        rcpt_replies={
            FORGOTTEN.lower(): f"550 5.1.1 <{FORGOTTEN}>: Recipient address rejected: unknown",
            OPTED_OUT: f"450 4.2.0 <{OPTED_OUT}>... Mailbox busy, try {OPTED_OUT} later",
        }
    )
    with smtp_server(handler) as url:
        run_pass(ctx, T0 + timedelta(minutes=11), SmtpTransport(parse_smtp_url(url)))
    erase_and_check(ctx, folder)
    ctx.engine.dispose()


def test_expiry_and_the_purge_leave_no_bytes_in_a_running_process(tmp_path: Path) -> None:
    """A worker or server runs for days on one engine: the log is truncated after an
    invitation expires (its address and the member's contact entry reduced to the digest)
    and after contacts are purged, not only when the process exits."""
    ctx, folder = _store(tmp_path)
    picked, unpicked = "picked.person@example.org", "never.picked@example.org"
    import_contacts(ctx, "ana", [ContactInput(picked), ContactInput(unpicked)], "test", T0)
    select_contacts(ctx, "ana", [picked], T0)
    _invite(ctx, (picked,))
    run_pass(ctx, T0 + timedelta(minutes=11), MemoryTransport())
    assert traces(raw_bytes(folder), picked)
    run_pass(ctx, T0 + timedelta(days=60), MemoryTransport())
    after = raw_bytes(folder)
    assert traces(after, picked) == []
    assert traces(after, unpicked) == []
    assert list_contacts(ctx, "ana") == []
    ctx.engine.dispose()


def test_not_interested_leaves_no_bytes_when_it_answers(tmp_path: Path) -> None:
    """Declining reduces the address to the digest, in the invitation and in the inviting
    member's contacts, and the log is truncated before the page answers."""
    ctx, folder = _store(tmp_path)
    import_contacts(ctx, "ana", [ContactInput(FORGOTTEN, "Nick Notinterested")], "test", T0)
    import_contacts(ctx, "ana", [ContactInput(KEPT)], "test", T0)
    _invite(ctx, (FORGOTTEN, KEPT))
    transport = MemoryTransport()
    run_pass(ctx, T0 + timedelta(minutes=11), transport)
    (mine,) = [o.invitation_ids[0] for o in transport.sent if o.to.lower() == FORGOTTEN.lower()]
    link = resolve_link(ctx, Scope.WHY, make_token(ctx.settings.token_secrets, Scope.WHY, mine))
    assert traces(raw_bytes(folder), FORGOTTEN)

    decline(ctx, link, T0 + timedelta(hours=1))
    after = raw_bytes(folder)
    assert traces(after, FORGOTTEN) == []
    assert b"Notinterested" not in after
    assert traces(after, KEPT)
    ctx.engine.dispose()


def test_deleting_the_address_book_leaves_no_bytes_when_it_answers(tmp_path: Path) -> None:
    """`DELETE /v1/members/{id}/contacts` and the member pages' "delete all" answer once
    the deleted addresses are gone from the files, not at the worker's next pass."""
    ctx, folder = _store(tmp_path)
    register_member(ctx, "bruno", "bruno@members.example", "Bruno", "en", T0)
    import_contacts(ctx, "bruno", [ContactInput(KEPT)], "test", T0)
    import_contacts(ctx, "ana", [ContactInput(FORGOTTEN, "Dora Apideleted")], "test", T0)
    assert traces(raw_bytes(folder), FORGOTTEN)
    with running_api(ctx) as api:
        assert api.ok(api.http.delete("/v1/members/ana/contacts")) == {"deleted": 1}
        after = raw_bytes(folder)
    assert traces(after, FORGOTTEN) == []
    assert b"Apideleted" not in after
    assert traces(after, KEPT)

    import_contacts(ctx, "ana", [ContactInput(OPTED_OUT, "Pia Pagedeleted")], "test", T0)
    assert traces(raw_bytes(folder), OPTED_OUT)
    with signed_in(ctx) as ana:
        deleted = ana.post("/member/contacts/delete", {"confirm": "yes"})
        assert deleted.status_code == 303
        after = raw_bytes(folder)
    assert traces(after, OPTED_OUT) == []
    assert b"Pagedeleted" not in after
    assert traces(after, KEPT)
    ctx.engine.dispose()
