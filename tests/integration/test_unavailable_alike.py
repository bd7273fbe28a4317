"""A member never learns why a recipient is unavailable (invariant 11): whether the person
opted out, stopped this member, asked to be forgotten, or their address bounced for good
(refused while sending, or in a report) or complained, the member's contacts, a new
import, the decisions on a new invitation, the member's export and the stored API answers
read alike. And a member never learns when someone else's email reached a person: an
invitation held by the recipient's quota gives no day and names no other sender.

Ana mails every recipient first (the bounce while sending is hers); Bruno, who holds
them all in his contacts, looks. Everything runs through the host API, the worker (over
a real SMTP server) and the bounce service, on both engines.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from api_support import Api, add_member, preview_and_invite, running_api
from smtp_server import FaultyHandler, smtp_server
from support import T0, rows

from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import MemoryTransport
from courtois.services.admin_lookup import look_up_recipient
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.tables import contacts

CAUSES = ("opt-out", "stop-member", "forget", "bounce-sending", "bounce-report", "complaint")
ADDRESS = {cause: f"{cause}@example.org" for cause in CAUSES}
DEAD = "550 5.1.1 <bounce-sending@example.org>: Recipient address rejected: User unknown"
SENT = T0 + timedelta(minutes=11)
LATER = T0 + timedelta(hours=1)


@pytest.fixture
def api(ctx: Context) -> Iterator[Api]:
    with running_api(ctx) as running:
        add_member(running, "ana", "Ana")
        add_member(running, "bruno", "Bruno")
        yield running


def import_all(api: Api, member: str = "bruno") -> dict[str, Any]:
    """The member imports every recipient (by name, the cause: nothing the test reads)."""
    book = {"contacts": [{"email": ADDRESS[c], "name": c.title()} for c in CAUSES]}
    return api.ok(api.post(f"/v1/members/{member}/imports", book))  # type: ignore[no-any-return]


def send_due(api: Api) -> None:
    """One worker pass over a real SMTP server that refuses the dead address for good."""
    handler = FaultyHandler(rcpt_replies={ADDRESS["bounce-sending"]: DEAD})
    with smtp_server(handler) as url:
        report = run_pass(api.ctx, SENT, SmtpTransport(parse_smtp_url(url)))
    assert report.failed == 1
    # Each delivered address was mailed; the dead one was refused, and nothing else.
    delivered = {r for rcpts, _ in handler.received for r in rcpts}
    assert ADDRESS["bounce-sending"] not in delivered


def make_unavailable(api: Api, stopped_member: str = "bruno") -> None:
    """Every other cause, an hour later: the recipient's own acts through the platform's
    API, a bounce and a complaint as `courtois bounces ingest` applies them."""
    api.clock.now = LATER
    unsubscribe = "/v1/recipients/unsubscribe"
    api.ok(api.post(unsubscribe, {"email": ADDRESS["opt-out"]}))
    api.ok(api.post(unsubscribe, {"email": ADDRESS["stop-member"], "from_member": stopped_member}))
    api.ok(api.post("/v1/recipients/forget", {"email": ADDRESS["forget"]}))
    dead = BouncedRecipient(ADDRESS["bounce-report"], "5.1.1", True)
    bounced = apply_bounce(api.ctx, BounceReport("t", "hard_bounce", (dead,)), LATER)
    reported = BouncedRecipient(ADDRESS["complaint"], "", False)
    complained = apply_bounce(api.ctx, BounceReport("t", "complaint", (reported,)), LATER)
    assert (bounced["suppressed"], complained["suppressed"]) == (1, 1)


@pytest.fixture
def unavailable(api: Api) -> Api:
    """Bruno holds every recipient in his contacts; Ana mails them all (one address is
    dead); then each becomes unavailable in its own way."""
    assert import_all(api)["imported"] == len(CAUSES)
    preview_and_invite(api, [ADDRESS[c] for c in CAUSES], member_id="ana")
    send_due(api)
    make_unavailable(api)
    # The admins see every cause, each its own.
    files = {c: look_up_recipient(api.ctx, ADDRESS[c]) for c in CAUSES}
    assert files["bounce-sending"].suppressed_reason == "hard-bounce"
    assert files["bounce-report"].suppressed_reason == "hard-bounce"
    assert files["complaint"].suppressed_reason == "complaint"
    assert files["forget"].forgotten_at is not None
    assert files["opt-out"].unsubscribed_at is not None
    assert [b.member_id for b in files["stop-member"].blocks] == ["bruno"]
    return api


def test_contacts_and_a_new_import_read_alike_whatever_the_cause(unavailable: Api) -> None:
    api = unavailable
    listed = api.ok(api.get("/v1/members/bruno/contacts"))
    # Each cause dropped the contact from every address book that held it.
    assert [item["email"] for item in listed["items"]] == []
    assert rows(api.ctx, contacts) == []
    again = import_all(api)
    assert (again["imported"], again["duplicates"]) == (0, 0)
    reasons = [note["reason"] for note in again["flagged_records"]]
    assert reasons == ["unavailable"] * len(CAUSES)


def test_a_contact_kept_from_before_a_stop_is_still_unavailable_on_import(api: Api) -> None:
    """Bounces used to leave the contact in place: a row left by then is in the address
    book, yet a new import says only "unavailable", as for an opt-out."""
    preview_and_invite(api, [ADDRESS[c] for c in CAUSES], member_id="ana")
    send_due(api)
    make_unavailable(api)
    with api.ctx.engine.begin() as connection:
        connection.execute(
            contacts.insert(),
            [
                {
                    "member_id": "bruno",
                    "recipient_digest": api.ctx.digest_email(ADDRESS[c]),
                    "address": ADDRESS[c],
                    "display_name": c,
                    "search_key": c,
                    "source": "json",
                    "selected": False,
                    "imported_at": T0,
                }
                for c in CAUSES
            ],
        )
    again = import_all(api)
    assert again["duplicates"] == 0
    assert [n["reason"] for n in again["flagged_records"]] == ["unavailable"] * len(CAUSES)


def _alike(per_cause: dict[str, Any]) -> Any:
    """The one value every cause gave (the test fails naming the causes that differ)."""
    shown = {cause: json.dumps(value, sort_keys=True) for cause, value in per_cause.items()}
    assert len(set(shown.values())) == 1, shown
    return per_cause[CAUSES[0]]


def _verdicts(decision: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(v["rule"], v["outcome"], v["reason"]) for v in decision["verdicts"]]


def test_a_new_invitation_is_decided_and_answered_alike_whatever_the_cause(
    unavailable: Api,
) -> None:
    api = unavailable
    emails = [ADDRESS[c] for c in CAUSES]
    answer = preview_and_invite(api, emails, member_id="bruno", key="bruno-again")
    items = dict(zip(CAUSES, answer["invitations"], strict=True))
    shown = _alike(
        {
            c: (item["status"], item["scheduled_at"], _verdicts(item["decision"]))
            for c, item in items.items()
        }
    )
    status, scheduled_at, verdicts = shown
    assert (status, scheduled_at) == ("blocked", None)
    assert verdicts[-1] == ("recipient-available", "deny", "unavailable")
    # The same request with the same key: the answer kept quotes none of them.
    again = preview_and_invite(api, emails, member_id="bruno", key="bruno-again")
    assert [item["email"] for item in again["invitations"]] == [None] * len(CAUSES)
    # Read back one by one: the same decisions.
    read = {c: api.ok(api.get(f"/v1/invitations/{item['id']}")) for c, item in items.items()}
    _alike(
        {
            c: (
                one["status"],
                one["messages"],
                [(d["stage"], d["outcome"], _verdicts(d)) for d in one["decisions"]],
            )
            for c, one in read.items()
        }
    )


def test_the_export_reads_alike_whatever_the_cause_and_gives_no_hash(unavailable: Api) -> None:
    api = unavailable
    answer = preview_and_invite(api, [ADDRESS[c] for c in CAUSES], member_id="bruno")
    ids = {item["id"]: c for item, c in zip(answer["invitations"], CAUSES, strict=True)}
    exported = api.ok(api.get("/v1/members/bruno/export"))
    assert exported["contacts"] == []
    invited = {ids[i["id"]]: i for i in exported["invitations"]}
    _alike(
        {
            c: (
                i["status"],
                i["email"],
                i["messages"],
                [(d["stage"], d["outcome"], _verdicts(d)) for d in i["decisions"]],
            )
            for c, i in invited.items()
        }
    )
    decided = {
        ids[e["payload"]["invitation"]]: e
        for e in exported["ledger"]
        if e["event"] == "decision" and e["payload"]["invitation"] in ids
    }
    _alike({c: (e["payload"]["outcome"], e["payload"]["rules"]) for c, e in decided.items()})
    # No entry carries a hash: a redacted one's is the full entry's, and each next one
    # chains on it, from which the hidden reason could be guessed word by word.
    assert all("hash" not in entry for entry in exported["ledger"])
    assert all(entry["redacted"] for entry in decided.values())
    schema = api.ok(api.get("/openapi.json"))["components"]["schemas"]["LedgerEntry"]
    assert "hash" not in schema["properties"]


def test_every_stop_and_suppression_scrubs_the_answers_that_quoted_the_address(
    api: Api,
) -> None:
    """Bruno invited them all himself (his email to the dead address was the one refused);
    Ana invited the one who stops Bruno only. Afterwards Bruno's kept answer quotes none
    of them, and Ana's still quotes hers: she was not stopped."""
    emails = [ADDRESS[c] for c in CAUSES]
    first = preview_and_invite(api, emails, member_id="bruno", key="bruno-first")
    assert [item["email"] for item in first["invitations"]] == emails
    ana = preview_and_invite(api, [ADDRESS["stop-member"]], member_id="ana", key="ana-first")
    send_due(api)
    make_unavailable(api)
    replayed = preview_and_invite(api, emails, member_id="bruno", key="bruno-first")
    assert [item["id"] for item in replayed["invitations"]] == [
        item["id"] for item in first["invitations"]
    ]
    assert [item["email"] for item in replayed["invitations"]] == [None] * len(CAUSES)
    hers = preview_and_invite(api, [ADDRESS["stop-member"]], member_id="ana", key="ana-first")
    assert hers == ana
    assert hers["invitations"][0]["email"] == ADDRESS["stop-member"]


def test_a_held_invitation_gives_no_day_and_names_no_other_sender(api: Api) -> None:
    """Ana's email reaches Eve; a day later Bruno invites Eve and Cy. Eve's inbox is
    spaced: Bruno reads that it leaves when the limits allow, not the day (14 days after
    Ana's email), nor that others are inviting Eve. Cy's leaves at the undo window's end."""
    eve, cy = "eve@example.org", "cy@example.org"
    preview_and_invite(api, [eve], member_id="ana")
    run_pass(api.ctx, SENT, MemoryTransport())
    api.clock.now = T0 + timedelta(days=1)
    answer = preview_and_invite(api, [eve, cy], member_id="bruno", key="bruno")
    held, free = answer["invitations"]
    assert (held["status"], held["scheduled_at"]) == ("scheduled", None)
    assert free["scheduled_at"] == "2026-03-03T09:10:00Z"
    quota = {v["rule"]: v for v in held["decision"]["verdicts"]}["recipient-quota"]
    assert quota["outcome"] == "defer"
    assert quota["reason"] == "leaves when the limits on emails to this person allow"
    detail = api.ok(api.get(f"/v1/invitations/{held['id']}"))
    assert [m["scheduled_at"] for m in detail["messages"]] == [None]
    listed = api.ok(api.get("/v1/members/bruno/invitations"))
    replayed = preview_and_invite(api, [eve, cy], member_id="bruno", key="bruno")
    exported = api.ok(api.get("/v1/members/bruno/export"))
    # The day Eve's inbox frees: when Ana's email left, 14 days on.
    frees = SENT + timedelta(days=14)
    for shown in (answer, detail, listed, replayed, exported):
        text = json.dumps(shown)
        assert frees.date().isoformat() not in text
        for telling in ("other invitations", "grouped"):
            assert telling not in text
    # The admins still see the day it leaves.
    (bruno_s,) = [
        m for m in look_up_recipient(api.ctx, eve).messages if m.invitation_id == held["id"]
    ]
    assert bruno_s.scheduled_at == frees


def _instant(at: datetime) -> str:
    """An instant as the API writes it."""
    return at.isoformat().replace("+00:00", "Z")


def _invited_and_held(api: Api, email: str, member: str) -> str:
    """The member invites `email`, whose quota holds the invitation (no day is given);
    returns its id."""
    (item,) = preview_and_invite(api, [email], member_id=member)["invitations"]
    assert (item["status"], item["scheduled_at"]) == ("scheduled", None)
    quota = {v["rule"]: v["outcome"] for v in item["decision"]["verdicts"]}["recipient-quota"]
    assert quota == "defer"
    return str(item["id"])


def test_a_held_invitation_never_gives_its_day_whatever_became_of_it(api: Api) -> None:
    """Ana's email reaches Eve. Bruno and Dan invite Eve the next days: Eve's quota holds
    theirs 14 days after Ana's email; Dan withdraws his, Bruno's leaves on its day. Cara
    invites Eve after that and waits 90 days after Ana's email, until Eve joins on
    Bruno's invitation. None of them ever reads the day theirs waited for, in the
    invitation, the list or the export: to the second, another member's email reaching
    Eve, 14 or 90 days on (Bruno's own `sent_at` says when his left, a pass later)."""
    eve = "eve@example.org"
    add_member(api, "cara", "Cara")
    add_member(api, "dan", "Dan")
    preview_and_invite(api, [eve], member_id="ana")
    run_pass(api.ctx, SENT, MemoryTransport())
    held = {}
    for at, member in ((1, "bruno"), (2, "dan")):
        api.clock.now = T0 + timedelta(days=at)
        held[member] = _invited_and_held(api, eve, member)
    api.ok(api.post(f"/v1/invitations/{held['dan']}/withdraw"))
    outbox = MemoryTransport()
    run_pass(api.ctx, SENT + timedelta(days=14, hours=1), outbox)
    assert len(outbox.sent) == 1
    api.clock.now = T0 + timedelta(days=20)
    held["cara"] = _invited_and_held(api, eve, "cara")
    api.clock.now = T0 + timedelta(days=30)
    api.ok(api.post("/v1/joined", {"email": eve}))
    days = {"bruno": SENT + timedelta(days=14), "dan": SENT + timedelta(days=14)}
    days["cara"] = SENT + timedelta(days=90)
    # The admins still see each held email's day.
    seen = look_up_recipient(api.ctx, eve).messages
    assert {
        m: next(s.scheduled_at for s in seen if s.invitation_id == i) for m, i in held.items()
    } == days
    states = {}
    for member, invitation_id in held.items():
        detail = api.ok(api.get(f"/v1/invitations/{invitation_id}"))
        (exported,) = api.ok(api.get(f"/v1/members/{member}/export"))["invitations"]
        listed = api.ok(api.get(f"/v1/members/{member}/invitations"))
        for shown in (detail, exported):
            assert [m["scheduled_at"] for m in shown["messages"]] == [None], member
        for text in map(json.dumps, (detail, exported, listed)):
            assert not any(_instant(day) in text for day in days.values()), member
        states[member] = (detail["status"], detail["messages"][0]["status"])
    assert states == {
        "bruno": ("accepted", "sent"),
        "dan": ("withdrawn", "cancelled"),
        "cara": ("blocked", "cancelled"),
    }
