"""An import reads its whole source before it writes: a slow CardDAV server holds no lock.

The server here is a real HTTP server in this process, answering the address-book query one
byte at a time until the test lets it finish: meanwhile an opt-out (which SQLite's one writer
lock would hold up) and the member's deletion of their contacts (which the member's row lock
would hold up on PostgreSQL) go through at once, and the import that ends afterwards still
honours the opt-out. Both engines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support import T0, add_members, count

from courtois.domain.errors import InvalidInput
from courtois.services.contacts import ImportReport, delete_contacts
from courtois.services.context import Context
from courtois.services.imports import import_carddav
from courtois.services.recipients import unsubscribe
from courtois.store.tables import contacts, ledger

CARDS = {
    "bo": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo\r\nEMAIL:bo@example.org\r\nEND:VCARD\r\n",
    "cy": "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Cy\r\nEMAIL:cy@example.org\r\nEND:VCARD\r\n",
}
# Longer than any write below may take, shorter than the busy timeout: an import still
# inside its transaction while it reads makes the writes wait about this long, and fail.
HOLD_SECONDS = 6.0
QUICK = 1.5


class _SlowBook(BaseHTTPRequestHandler):
    """One address book at /book/, its cards sent once `release` is set (or HOLD_SECONDS
    passed), a byte of whitespace every 50 ms until then."""

    reading: threading.Event
    release: threading.Event
    endless = False

    def do_PROPFIND(self) -> None:
        self._start()
        self.wfile.write(
            b'<?xml version="1.0"?><multistatus xmlns="DAV:" '
            b'xmlns:C="urn:ietf:params:xml:ns:carddav"><response><href>/book/</href>'
            b"<propstat><prop><resourcetype><collection/><C:addressbook/></resourcetype>"
            b"</prop><status>HTTP/1.1 200 OK</status></propstat></response></multistatus>"
        )

    def do_REPORT(self) -> None:
        self._start()
        self.wfile.write(
            b'<?xml version="1.0"?><multistatus xmlns="DAV:" '
            b'xmlns:C="urn:ietf:params:xml:ns:carddav">'
        )
        self.reading.set()
        until = time.monotonic() + HOLD_SECONDS
        try:
            while self.endless or not self.release.is_set():
                if time.monotonic() > until:
                    break
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)
            for name, card in CARDS.items():
                self.wfile.write(
                    f"<response><href>/book/{name}.vcf</href><propstat><prop><C:address-data>"
                    f"{card}</C:address-data></prop><status>HTTP/1.1 200 OK</status>"
                    "</propstat></response>".encode()
                )
            self.wfile.write(b"</multistatus>")
        except (BrokenPipeError, ConnectionResetError):
            return

    def _start(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(207)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.end_headers()  # no length: the body runs until the connection closes

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@dataclass
class SlowBook:
    url: str
    handler: type[_SlowBook]


@pytest.fixture
def slow_book() -> Iterator[SlowBook]:
    handler = type(
        "SlowBook", (_SlowBook,), {"reading": threading.Event(), "release": threading.Event()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield SlowBook(f"http://127.0.0.1:{server.server_address[1]}/book/", handler)
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def _local(ctx: Context, **more: object) -> Context:
    return replace(ctx, settings=replace(ctx.settings, import_private_hosts=True, **more))


def _timed(action: Callable[..., object], *args: object) -> float:
    started = time.monotonic()
    action(*args)
    return time.monotonic() - started


def test_writes_go_through_while_an_import_reads_a_slow_server(
    ctx: Context, slow_book: SlowBook
) -> None:
    add_members(ctx)
    local = _local(ctx)
    book = slow_book.handler
    outcome: dict[str, ImportReport | BaseException] = {}

    def run_import() -> None:
        try:
            outcome["report"] = import_carddav(local, "ana", slow_book.url, "ana", "secret", T0)
        except BaseException as error:
            outcome["report"] = error

    importing = threading.Thread(target=run_import)
    importing.start()
    try:
        assert book.reading.wait(10), "the import never asked for the cards"
        # Bo opts out of everything, and Ana deletes her contacts, while the import reads.
        opt_out = _timed(unsubscribe, ctx, ctx.digest_email("bo@example.org"), T0)
        deletion = _timed(delete_contacts, ctx, "ana", T0)
        still_reading = importing.is_alive()
    finally:
        book.release.set()
        importing.join(30)

    assert opt_out < QUICK
    assert deletion < QUICK
    assert still_reading
    report = outcome["report"]
    assert isinstance(report, ImportReport), report
    # The opt-out, committed while the import read, is honoured when it writes.
    assert report.imported == 1
    assert report.flagged == [{"where": "/book/bo.vcf", "reason": "unavailable"}]
    assert count(ctx, contacts) == 1


def test_a_server_that_never_finishes_stops_at_the_deadline_and_nothing_is_kept(
    ctx: Context, slow_book: SlowBook
) -> None:
    add_members(ctx)
    slow_book.handler.endless = True
    before = count(ctx, ledger)
    started = time.monotonic()

    with pytest.raises(InvalidInput, match="within the 2 seconds an import may take"):
        import_carddav(
            _local(ctx, import_deadline_seconds=2), "ana", slow_book.url, "ana", "secret", T0
        )

    assert time.monotonic() - started < 3.5
    assert count(ctx, contacts) == 0
    assert count(ctx, ledger) == before
