"""The demo's capture server and outbox viewer, in-process: real SMTP in, real HTTP out.

Whatever a captured email holds, the viewer shows it as text: no markup of the message
reaches the page, its HTML part only runs under a sandbox, and a broken message still
shows.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from html import escape

import aiosmtplib
import httpx
import pytest
import uvicorn
from browser_support import browser, playwright_driver  # noqa: F401 - fixtures used here
from fastapi import FastAPI, Response
from live_app import sqlite_only
from pages_site import invite_and_deliver
from playwright.sync_api import Browser
from smtp_server import free_port

from conftest import T0
from courtois.demo.capture import CaptureServer, CaptureStore
from courtois.demo.mail_view import read_mail
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.web.outbox import OutboxControls, outbox_router

HOSTILE_SUBJECT = '<script>alert("subject")</script>'


def hostile_email(base: str) -> bytes:
    message = EmailMessage()
    message["From"] = '"<img src=x onerror=alert(1)> via Agora" <invitations@agora.example.org>'
    message["To"] = "bo@example.org"
    message["Subject"] = HOSTILE_SUBJECT
    message["List-Unsubscribe"] = f"<{base}/u/tok-1>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(f"Hi <b>there</b>, see javascript:alert(2) and {base}/why/tok-2\n")
    message.add_alternative("<p>Hi</p><script>alert(3)</script>", subtype="html")
    return message.as_bytes()


def send(url_port: int, raw: bytes, to: str) -> None:
    asyncio.run(
        aiosmtplib.send(
            raw, sender="invitations@agora.example.org", recipients=[to],
            hostname="127.0.0.1", port=url_port, start_tls=False,
        )
    )  # fmt: skip


@pytest.fixture
def capture() -> Iterator[CaptureServer]:
    server = CaptureServer(CaptureStore(max_messages=2))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def outbox(store: CaptureStore, port: int, *, serves_unsubscribe: bool) -> Iterator[httpx.Client]:
    """The outbox router on uvicorn, on a free port, beside an unsubscribe route or not."""
    app = FastAPI()
    app.include_router(outbox_router(store, OutboxControls(send_now=lambda: "sent 0")))
    if serves_unsubscribe:

        @app.post("/u/{token}")
        def unsubscribe(token: str) -> Response:
            return Response(status_code=204)

    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_capture_server_keeps_envelope_and_bytes_within_its_bounds(
    capture: CaptureServer,
) -> None:
    for number in range(3):
        send(capture.port, hostile_email("http://127.0.0.1:1"), f"r{number}@example.org")
    kept = capture.store.newest_first()
    assert [m.number for m in kept] == [3, 2]  # the oldest went first
    assert capture.store.get(1) is None
    newest = kept[0]
    assert newest.rcpt_tos == ("r2@example.org",)
    assert newest.mail_from == "invitations@agora.example.org"
    assert HOSTILE_SUBJECT.encode() in newest.raw


def test_nothing_of_a_message_is_markup_on_the_outbox_pages() -> None:
    port = free_port()
    here = f"http://127.0.0.1:{port}"
    store = CaptureStore()
    raw = hostile_email(here)
    store.add("invitations@agora.example.org", ("bo@example.org",), raw)
    with outbox(store, port, serves_unsubscribe=True) as client:
        listing = client.get("/outbox")
        page = client.get("/outbox/1")
        html = client.get("/outbox/1/html")
        assert client.get("/outbox/1/raw").content == raw
        assert client.get("/outbox/9").status_code == 404
    for answer in (listing, page):
        assert answer.status_code == 200
        assert "<script>" not in answer.text
        assert "<img" not in answer.text
        assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;" in answer.text
        assert "script-src" not in answer.headers["content-security-policy"]
        assert answer.headers["referrer-policy"] == "same-origin"
    assert "Hi &lt;b&gt;there&lt;/b&gt;" in page.text
    assert 'href="javascript:' not in page.text
    assert f'href="{here}/why/tok-2"' in page.text
    assert "<script>alert(3)</script>" in html.text  # served as it was sent...
    assert "sandbox" in html.headers["content-security-policy"]  # ...but cannot run
    assert "default-src 'none'" in html.headers["content-security-policy"]


def test_one_click_is_offered_only_where_this_app_serves_it() -> None:
    port = free_port()
    here = f"http://127.0.0.1:{port}"
    store = CaptureStore()
    store.add("a@agora.example.org", ("bo@example.org",), hostile_email(here))
    store.add("a@agora.example.org", ("bo@example.org",), hostile_email("https://elsewhere"))
    with outbox(store, port, serves_unsubscribe=True) as client:
        ours, theirs = client.get("/outbox/1").text, client.get("/outbox/2").text
    with outbox(store, port, serves_unsubscribe=False) as client:
        unserved = client.get("/outbox/1").text
    assert f'<form method="post" action="{here}/u/tok-1"' in ours
    assert 'value="One-Click"' in ours
    assert 'value="One-Click"' not in theirs
    assert 'value="One-Click"' not in unserved


def test_a_broken_message_still_shows() -> None:
    store = CaptureStore()
    head = b"Subject: =?x-unknown?q?caf=E9?=\r\nContent-Type: text/plain; charset=nope\r\n"
    store.add("", (), head + b"\r\n\xff\xfe not text")
    port = free_port()
    with outbox(store, port, serves_unsubscribe=False) as client:
        assert client.get("/outbox").status_code == 200
        page = client.get("/outbox/1")
    assert page.status_code == 200
    assert "not text" in page.text


def test_the_send_now_button_refuses_other_origins() -> None:
    port = free_port()
    with outbox(CaptureStore(), port, serves_unsubscribe=False) as client:
        refused = client.post("/outbox/send-now", headers={"Origin": "https://evil.example"})
        assert refused.status_code == 403
        assert "sent 0" not in client.get("/outbox").text
        pressed = client.post("/outbox/send-now", headers={"Origin": f"http://127.0.0.1:{port}"})
        assert pressed.status_code == 303
        assert "sent 0" in client.get("/outbox").text


def test_the_send_now_button_works_in_a_real_browser(
    browser: Browser,  # noqa: F811 - the fixture imported above, as pytest hands it over
) -> None:
    """Chromium posts the page's own Origin (a no-referrer page would post `Origin: null`,
    which the origin check refuses): the button does what it says."""
    port = free_port()
    with outbox(CaptureStore(), port, serves_unsubscribe=False):
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{port}/outbox")
            page.locator("form[action='/outbox/send-now'] button").click()
            page.wait_for_load_state()
            assert "sent 0" in page.content()
        finally:
            context.close()


@sqlite_only
def test_an_emails_words_carry_its_language_on_the_english_outbox_pages(ctx: Context) -> None:
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (french,) = invite_and_deliver(ctx, "lea", ["bo@example.org"])
    store = CaptureStore()
    store.add("invitations@agora.test", ("bo@example.org",), french.outgoing.raw)
    forged = hostile_email("https://elsewhere")
    store.add(
        "a@agora.test", ("bo@example.org",), b'Content-Language: fr" onclick="alert(4)\r\n' + forged
    )
    port = free_port()
    with outbox(store, port, serves_unsubscribe=False) as client:
        listing = client.get("/outbox").text
        page = client.get("/outbox/1").text
        hostile = client.get("/outbox/2").text
    view = read_mail(french.outgoing.raw)
    subject = escape(view.subject, quote=False)
    assert '<html lang="en">' in page
    assert f'<a href="/outbox/1" lang="fr">{subject}</a>' in listing
    assert f'<h1 lang="fr">{subject}</h1>' in page
    assert f'<td class="value" lang="fr">{subject}</td>' in page
    assert '<pre tabindex="0" lang="fr">' in page
    assert 'lang="fr' not in hostile
    assert ' onclick="' not in hostile
