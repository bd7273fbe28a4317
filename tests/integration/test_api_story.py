"""The whole story over real sockets, as a platform drives it: a member, an address book
uploaded, the preview, the consent with its hash, the worker's pass sending over a real SMTP
server, the join reported back, and signed webhooks received by a real HTTP server."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import re
import time

import httpx
import pytest
from api_support import add_member, preview_and_invite, running_api, webhook_receiver
from smtp_server import FaultyHandler, smtp_server

from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.services.webhook_delivery import deliver_webhooks
from courtois.services.worker import run_pass
from courtois.webhook_signature import verify

WEBHOOK_SECRET = "whsec-0123456789abcdef"

ADDRESS_BOOK = (
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo Berg\r\nEMAIL;TYPE=HOME:bo@example.org\r\n"
    "END:VCARD\r\n"
    # A name carrying a line break and a header: stored flattened, never a header.
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cy\\r\\nBcc: victim@evil.example\r\n"
    "EMAIL:cy@example.org\r\nEND:VCARD\r\n"
    "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Nobody\r\nEND:VCARD\r\n"
)


def test_import_preview_invite_send_join_and_webhooks(
    ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    handler = FaultyHandler()
    with (
        webhook_receiver() as hooks,
        smtp_server(handler) as smtp_url,
        running_api(
            ctx, smtp_url=smtp_url, webhook_url=hooks.url, webhook_secret=WEBHOOK_SECRET
        ) as api,
    ):
        add_member(api)
        files = {"file": ("contacts.vcf", ADDRESS_BOOK.encode(), "text/vcard")}
        report = api.ok(api.http.post("/v1/members/ana/imports", files=files))
        assert (report["records"], report["imported"], report["rejected"]) == (3, 2, 1)
        assert report["rejected_records"][0]["where"] == "card 3"

        contacts = api.ok(api.get("/v1/members/ana/contacts"))["items"]
        assert {c["email"] for c in contacts} == {"bo@example.org", "cy@example.org"}
        assert not any(c["selected"] for c in contacts)
        assert all("\r" not in c["name"] and "\n" not in c["name"] for c in contacts)
        emails = [c["email"] for c in contacts]
        picked = api.post("/v1/members/ana/contacts/selection", {"emails": emails})
        assert api.ok(picked) == {"changed": 2}

        shown = api.ok(
            api.post("/v1/members/ana/invitations/preview", {"emails": emails, "note": "Join!"})
        )
        assert "Ana Lima" in shown["text"]
        assert "Join!" in shown["text"]
        consent = {"text_shown": shown["consent_text"], "ip": "192.0.2.7", "user_agent": "t"}
        body = {"emails": emails, "note": "Join!", "preview_hash": shown["preview_hash"]}
        answer = api.ok(api.post("/v1/members/ana/invitations", {**body, "consent": consent}), 201)
        assert {i["status"] for i in answer["invitations"]} == {"scheduled"}
        ids = {i["email"]: i["id"] for i in answer["invitations"]}

        # The undo window passes; the worker's pass sends (and delivers the webhooks).
        now = api.clock.advance(minutes=11)
        smtp = SmtpTransport(parse_smtp_url(smtp_url))
        assert run_pass(api.ctx, now, smtp).sent == 2
        assert sorted(rcpts[0] for rcpts, _ in handler.received) == sorted(emails)
        for _, raw in handler.received:
            sent = email.message_from_bytes(raw, policy=email.policy.default)
            assert "Ana Lima" in str(sent["From"])
            assert sent["Bcc"] is None
            assert "victim" not in raw.decode()
            assert sent["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        detail = api.ok(api.get(f"/v1/invitations/{ids['bo@example.org']}"))
        assert detail["status"] == "sent"
        assert [d["stage"] for d in detail["decisions"]] == ["queue", "send"]
        assert [m["status"] for m in detail["messages"]] == ["sent"]

        joined = api.ok(api.post("/v1/joined", {"email": "BO@example.org"}))
        assert joined == {"accepted": 1, "blocked": 0}
        assert api.ok(api.get(f"/v1/invitations/{ids['bo@example.org']}"))["status"] == "accepted"
        with httpx.Client() as client:
            delivered = deliver_webhooks(api.ctx, api.clock.now, client)
        assert delivered.delivered == 1

        exported = api.ok(api.get("/v1/members/ana/export"))
        assert {i["status"] for i in exported["invitations"]} == {"accepted", "sent"}
        assert exported["consents"][0]["text_shown"] == shown["consent_text"]
        # The words consented to, as kept to be sent: the preview's own.
        previewed = exported["consents"][0]["previewed"]
        assert previewed["name"] == "Ana Lima"
        assert previewed["invitation"] == {k: shown[k] for k in ("subject", "text", "html")}
        assert previewed["reminder"] is None
        metrics = api.get("/metrics").text
        assert 'courtois_messages{kind="invitation",state="sent"} 2.0' in metrics
        assert (
            'courtois_decisions_total{outcome="allow",rule="not-unsubscribed",stage="send"} 2.0'
            in metrics
        )

    events = [json.loads(body) for _, body in hooks.received]
    assert sorted(e["type"] for e in events) == [
        "invitation.accepted",
        "invitation.sent",
        "invitation.sent",
    ]
    for headers, raw in hooks.received:
        assert verify(WEBHOOK_SECRET, headers["courtois-signature"], raw, time.time())
        assert not verify(
            "another-secret-0123456789", headers["courtois-signature"], raw, time.time()
        )
        assert "@" not in raw.decode()
        assert headers["courtois-event-id"] == json.loads(raw)["id"]
    accepted = next(e for e in events if e["type"] == "invitation.accepted")
    assert accepted["data"]["invitation_id"] == ids["bo@example.org"]
    assert accepted["data"]["member_id"] == "ana"
    assert verify_ledger(ctx.engine).ok
    # Everything but the test's own SMTP server (aiosmtpd logs each RCPT TO it hears).
    ours = [r for r in caplog.records if not r.name.startswith("mail.log")]
    logged = "\n".join(f"{r.name} {r.getMessage()}" for r in ours)
    assert "@example.org" not in logged
    assert "@evil.example" not in logged


def test_send_latency_counts_from_falling_due_to_leaving(ctx: Context) -> None:
    with smtp_server(FaultyHandler()) as smtp_url, running_api(ctx) as api:
        add_member(api)
        preview_and_invite(api, ["dee@example.org"])
        now = api.clock.advance(minutes=10, seconds=90)  # due after 10 minutes, sent 90 s late
        assert run_pass(api.ctx, now, SmtpTransport(parse_smtp_url(smtp_url))).sent == 1
        fresh = api.get("/metrics").text
        api.clock.advance(minutes=16)
        stale = api.get("/metrics").text
    assert 'courtois_send_latency_seconds{quantile="0.5"} 90.0' in fresh
    assert "courtois_send_latency_window_messages 1.0" in fresh
    # Out of the 15-minute window: no sample, no quantile.
    assert "courtois_send_latency_window_messages 0.0" in stale
    assert "courtois_send_latency_seconds{" not in stale


def test_send_latency_of_a_retried_email_counts_from_when_it_first_fell_due(
    ctx: Context,
) -> None:
    handler = FaultyHandler(rcpt_replies={"dee@example.org": "451 4.7.1 try again later"})
    with smtp_server(handler) as smtp_url, running_api(ctx) as api:
        add_member(api)
        preview_and_invite(api, ["dee@example.org"])
        due = api.clock.advance(minutes=10)
        transport = SmtpTransport(parse_smtp_url(smtp_url))
        assert run_pass(api.ctx, due, transport).retried == 1
        handler.rcpt_replies.clear()
        now = api.clock.advance(minutes=9)  # past any retry time (2 to 8 minutes)
        assert run_pass(api.ctx, now, transport).sent == 1
        metrics = api.get("/metrics").text
    assert 'courtois_send_latency_seconds{quantile="0.5"} 540.0' in metrics


def test_messages_by_state_count_emails_not_the_invitations_a_digest_carries(
    ctx: Context,
) -> None:
    """Ana's email goes; Bruno's and Cy's invitations wait out the recipient's quota and
    leave together in one digest: two emails, as the admin chart and the server count."""
    handler = FaultyHandler()
    with smtp_server(handler) as smtp_url, running_api(ctx) as api:
        transport = SmtpTransport(parse_smtp_url(smtp_url))
        for member in ("ana", "bruno", "cy"):
            add_member(api, member, member.title())
        preview_and_invite(api, ["dee@example.org"], "ana")
        assert run_pass(api.ctx, api.clock.advance(minutes=11), transport).sent == 1
        preview_and_invite(api, ["dee@example.org"], "bruno")
        preview_and_invite(api, ["dee@example.org"], "cy")
        assert run_pass(api.ctx, api.clock.advance(days=15), transport).sent == 1
        metrics = api.get("/metrics").text
    assert len(handler.received) == 2
    sent = re.findall(r'courtois_messages\{kind="(\w+)",state="sent"\} ([\d.]+)', metrics)
    assert sum(float(count) for _, count in sent) == 2.0
    assert dict(sent) == {"digest": "1.0", "invitation": "1.0"}
