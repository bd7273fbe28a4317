"""The CardDAV reader against a real Radicale server, seeded through CardDAV itself."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from carddav_server import CardDavServer, free_port, radicale
from dribbling import dribbling_server

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.carddav import read_carddav

PASSWORD = "pässwörd-Ana-7"  # a non-ASCII secret on purpose
OTHER_PASSWORD = "bo-secret-2"

CONTACTS = {
    "zoe.vcf": """BEGIN:VCARD
VERSION:3.0
UID:zoe-1
FN:Zoé Brontë
N:Brontë;Zoé;;;
EMAIL;TYPE=HOME:zoe@example.org
EMAIL;TYPE=WORK:zoe.bronte@work.example
EMAIL;TYPE=INTERNET:z@example.net
END:VCARD""",
    "bo.vcf": """BEGIN:VCARD
VERSION:4.0
UID:bo-2
FN:Bo Li
EMAIL;TYPE=work:bo@example.org
END:VCARD""",
    "phone-only.vcf": """BEGIN:VCARD
VERSION:3.0
UID:tel-3
FN:Only A Phone
TEL;TYPE=CELL:+33 1 23 45 67 89
END:VCARD""",
    "søren.vcf": """BEGIN:VCARD
VERSION:3.0
UID:lee-4
FN:李小龍 Søren
EMAIL:lee@example.jp
END:VCARD""",
}
WORK = {
    "cy.vcf": """BEGIN:VCARD
VERSION:4.0
UID:cy-5
FN:Cy Ödegaard
EMAIL:cy@example.com
END:VCARD""",
}
OTHER_MEMBER = {
    "private.vcf": """BEGIN:VCARD
VERSION:3.0
UID:private-6
FN:Not Ana's Friend
EMAIL:private@example.org
END:VCARD""",
}

EXPECTED_CONTACTS = {
    # Each address of a card with several has its own place, as in a vCard file.
    ("zoe@example.org", "Zoé Brontë", "/ana/contacts/zoe.vcf, item 1"),
    ("zoe.bronte@work.example", "Zoé Brontë", "/ana/contacts/zoe.vcf, item 2"),
    ("z@example.net", "Zoé Brontë", "/ana/contacts/zoe.vcf, item 3"),
    ("bo@example.org", "Bo Li", "/ana/contacts/bo.vcf"),
    ("lee@example.jp", "李小龍 Søren", "/ana/contacts/søren.vcf"),
}
EXPECTED_WORK = {("cy@example.com", "Cy Ödegaard", "/ana/work/cy.vcf")}


@pytest.fixture(scope="module")
def dav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CardDavServer]:
    """Radicale with two members; Ana has two address books, Bo one."""
    root = tmp_path_factory.mktemp("radicale")
    with radicale(root, {"ana": PASSWORD, "bo": OTHER_PASSWORD}) as server:
        with server.client("ana", PASSWORD) as ana:
            server.make_address_book(ana, "/ana/contacts/", "Contacts")
            for name, card in CONTACTS.items():
                server.put_card(ana, f"/ana/contacts/{name}", card)
            server.make_address_book(ana, "/ana/work/", "Work")
            for name, card in WORK.items():
                server.put_card(ana, f"/ana/work/{name}", card)
        with server.client("bo", OTHER_PASSWORD) as bo:
            server.make_address_book(bo, "/bo/book/", "Book")
            for name, card in OTHER_MEMBER.items():
                server.put_card(bo, f"/bo/book/{name}", card)
        yield server


def split(
    items: list[ContactInput | RecordProblem],
) -> tuple[set[tuple[str, str, str]], list[RecordProblem]]:
    contacts = {(i.email, i.name, i.where) for i in items if isinstance(i, ContactInput)}
    problems = [i for i in items if isinstance(i, RecordProblem)]
    assert len(contacts) + len(problems) == len(items), "an address was yielded twice"
    return contacts, problems


@pytest.mark.parametrize("start", ["", "/", "/ana/"])
def test_root_or_principal_reads_every_address_book_of_the_member(
    dav: CardDavServer, start: str
) -> None:
    contacts, problems = split(list(read_carddav(dav.url + start, "ana", PASSWORD)))

    assert contacts == EXPECTED_CONTACTS | EXPECTED_WORK
    assert [problem.where for problem in problems] == ["/ana/contacts/phone-only.vcf"]
    assert problems[0].reason


def test_address_book_url_reads_only_that_book(dav: CardDavServer) -> None:
    contacts, problems = split(list(read_carddav(dav.url + "/ana/work/", "ana", PASSWORD)))

    assert contacts == EXPECTED_WORK
    assert problems == []


def test_each_member_reads_only_their_own_cards(dav: CardDavServer) -> None:
    contacts, _ = split(list(read_carddav(dav.url, "bo", OTHER_PASSWORD)))

    assert contacts == {("private@example.org", "Not Ana's Friend", "/bo/book/private.vcf")}


def test_credentials_written_in_the_url_are_dropped_and_never_shown(dav: CardDavServer) -> None:
    host = dav.url.removeprefix("http://")
    items = list(read_carddav(f"http://ana:not-the-password@{host}/", "ana", PASSWORD))

    contacts, _ = split(items)
    assert contacts == EXPECTED_CONTACTS | EXPECTED_WORK
    wheres = [item.where for item in items]
    assert not any("not-the-password" in where or PASSWORD in where for where in wheres)
    assert all(where.startswith("/ana/") for where in wheres)


@pytest.mark.parametrize(("user", "secret"), [("ana", "wrong"), ("nobody", PASSWORD)])
def test_bad_credentials_are_refused_clearly(dav: CardDavServer, user: str, secret: str) -> None:
    with pytest.raises(InvalidInput, match="refused the user name or password") as caught:
        list(read_carddav(dav.url + "/ana/contacts/", user, secret))

    assert PASSWORD not in caught.value.message
    assert secret not in caught.value.message


def test_a_size_limit_stops_a_big_answer(dav: CardDavServer) -> None:
    with pytest.raises(InvalidInput, match="larger than"):
        list(read_carddav(dav.url, "ana", PASSWORD, max_bytes=1_500))


class _Website(BaseHTTPRequestHandler):
    """An ordinary web server: pages for GET, nothing for WebDAV methods."""

    def do_GET(self) -> None:
        body = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the outcome, not the access log."""


LAUGHS = '<!ENTITY l0 "lol">' + "".join(
    f'<!ENTITY l{n} "{("&l" + str(n - 1) + ";") * 10}">' for n in range(1, 10)
)
HOSTILE_DOCUMENTS = {
    "billion laughs": (LAUGHS, "&l9;"),
    # Harmless in itself and accepted by the standard library's parser: refusing any
    # DTD at all is the policy, since no WebDAV answer needs one.
    "one internal entity": ('<!ENTITY home "/ana/">', "&home;"),
    "external entity": ('<!ENTITY secret SYSTEM "file:///etc/hostname">', "&secret;"),
}


class _HostileDav(_Website):
    """A hostile server answering WebDAV with a document declaring entities."""

    document = "billion laughs"

    def do_PROPFIND(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        declarations, reference = HOSTILE_DOCUMENTS[self.document]
        body = (
            f'<?xml version="1.0"?><!DOCTYPE m [{declarations}]>'
            f'<multistatus xmlns="DAV:"><response><href>{reference}</href></response>'
            "</multistatus>"
        ).encode()
        self.send_response(207)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _SloppyDav(_Website):
    """A minimal address book server whose store holds one entry that is not a vCard.

    Radicale refuses to store such an entry, so a server of its own plays one that did.
    """

    def do_PROPFIND(self) -> None:
        self._multistatus(
            "<response><href>/book/</href><propstat><prop><resourcetype><collection/>"
            "<C:addressbook/></resourcetype></prop><status>HTTP/1.1 200 OK</status>"
            "</propstat></response>"
        )

    def do_REPORT(self) -> None:
        entries = {"/book/broken.vcf": "garbage, not a card", "/book/ok.vcf": BO_CARD}
        self._multistatus(
            "".join(
                f"<response><href>{href}</href><propstat><prop><C:address-data>{data}"
                "</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat>"
                "</response>"
                for href, data in entries.items()
            )
        )

    def _multistatus(self, responses: str) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = (
            '<?xml version="1.0"?><multistatus xmlns="DAV:" '
            f'xmlns:C="urn:ietf:params:xml:ns:carddav">{responses}</multistatus>'
        ).encode()
        self.send_response(207)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _EndlessDav(_SloppyDav):
    """An address book whose REPORT never ends and announces no length."""

    def do_REPORT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(207)
        self.send_header("Content-Type", "application/xml; charset=utf-8")
        self.end_headers()  # no Content-Length: the body runs until the connection closes
        entry = (
            "<response><href>/book/{}.vcf</href><propstat><prop><C:address-data>"
            f"{BO_CARD}</C:address-data></prop><status>HTTP/1.1 200 OK</status></propstat>"
            "</response>"
        )
        try:
            self.wfile.write(
                b'<?xml version="1.0"?><multistatus xmlns="DAV:" '
                b'xmlns:C="urn:ietf:params:xml:ns:carddav">'
            )
            for number in range(1_000_000):  # bounded all the same, about 250 MB
                self.wfile.write(entry.format(number).encode())
        except (BrokenPipeError, ConnectionResetError):
            return


BO_CARD = "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo\r\nEMAIL:bo@example.org\r\nEND:VCARD\r\n"


def _serve(handler: type[BaseHTTPRequestHandler], host: str = "127.0.0.1") -> Iterator[str]:
    server = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def website() -> Iterator[str]:
    yield from _serve(_Website)


@pytest.fixture(params=sorted(HOSTILE_DOCUMENTS))
def hostile_dav(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_HostileDav,), {"document": request.param})
    yield from _serve(handler)


@pytest.fixture
def sloppy_dav() -> Iterator[str]:
    yield from _serve(_SloppyDav)


def test_an_entry_that_is_not_a_vcard_is_one_problem_among_good_cards(sloppy_dav: str) -> None:
    items = list(read_carddav(sloppy_dav + "/book/", "ana", PASSWORD))

    assert items[1:] == [ContactInput("bo@example.org", "Bo", "/book/ok.vcf")]
    assert isinstance(items[0], RecordProblem)
    assert items[0].where == "/book/broken.vcf"
    assert "not a vCard" in items[0].reason


@pytest.fixture
def endless_dav() -> Iterator[str]:
    yield from _serve(_EndlessDav)


def test_a_size_limit_stops_an_answer_of_unannounced_length(endless_dav: str) -> None:
    reader = read_carddav(endless_dav + "/book/", "ana", PASSWORD, max_bytes=100_000)
    read: list[ContactInput | RecordProblem] = []

    with pytest.raises(InvalidInput, match=r"larger than the 0\.1 MB"):
        read.extend(reader)
    # Cards arrived, one by one, before the limit was reached.
    assert 100 < len(read) < 1_000
    assert read[0] == ContactInput("bo@example.org", "Bo", "/book/0.vcf")


@pytest.mark.parametrize("path", ["/", "/contacts/"])
def test_a_plain_website_is_not_taken_for_a_carddav_server(website: str, path: str) -> None:
    with pytest.raises(InvalidInput, match="does not look like a CardDAV server"):
        list(read_carddav(website + path, "ana", PASSWORD))


def test_xml_declaring_entities_is_refused(hostile_dav: str) -> None:
    with pytest.raises(InvalidInput, match="not WebDAV XML"):
        list(read_carddav(hostile_dav + "/ana/", "ana", PASSWORD))


def test_an_unreachable_host_is_reported_when_read() -> None:
    reader = read_carddav(f"http://127.0.0.1:{free_port()}/", "ana", PASSWORD)

    with pytest.raises(InvalidInput, match=r"Could not connect to http://127\.0\.0\.1:") as caught:
        next(reader)
    assert PASSWORD not in caught.value.message


def test_a_silent_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections complete in the kernel; nobody ever answers
        port = silent.getsockname()[1]

        with pytest.raises(InvalidInput, match=r"did not answer within 0\.3 seconds"):
            list(read_carddav(f"http://127.0.0.1:{port}/", "ana", PASSWORD, timeout=0.3))


@pytest.mark.parametrize(
    "url",
    ["dav.example.org", "ftp://dav.example.org/", "https://", "http://:80/", "http://a:99999/"],
)
def test_a_bad_url_is_refused_before_any_connection(url: str) -> None:
    with pytest.raises(InvalidInput, match="CardDAV address"):
        read_carddav(url, "ana", PASSWORD)


def test_timeout_and_limit_must_be_positive() -> None:
    with pytest.raises(InvalidInput, match="positive"):
        read_carddav("https://dav.example.org/", "ana", PASSWORD, max_bytes=0)
    with pytest.raises(InvalidInput, match="positive"):
        read_carddav("https://dav.example.org/", "ana", PASSWORD, deadline=0)


# What a dribbling server sends at once, then byte after byte: in the headers, or in the body.
DRIBBLES = {
    "headers": (b"HTTP/1.1 207 Multi-Status\r\nX-Slow: ", b"a"),
    "body": (
        b"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\n\r\n"
        b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">',
        b" ",
    ),
}


@pytest.mark.parametrize("where", sorted(DRIBBLES))
def test_a_server_sending_a_byte_now_and_then_is_stopped_at_the_deadline(where: str) -> None:
    with dribbling_server(*DRIBBLES[where]) as port:
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        with pytest.raises(InvalidInput) as caught:
            list(read_carddav(url + "/book/", "ana", PASSWORD, deadline=1.5))
        took = time.monotonic() - started

    assert re.fullmatch(
        r"http://127\.0\.0\.1:\d+ did not send the address books within the 1\.5 seconds an "
        r"import may take; nothing was imported\.",
        caught.value.message,
    )
    assert 1.5 <= took < 2.5


class _Redirect(_Website):
    """Sends every WebDAV request on to another server."""

    target = ""

    def do_PROPFIND(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Refusing(_Website):
    """Asks for a password, and records whether one came."""

    authorizations: ClassVar[list[str | None]] = []

    def do_PROPFIND(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.authorizations.append(self.headers.get("Authorization"))
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Basic realm="dav"')
        self.send_header("Content-Length", "0")
        self.end_headers()


def test_a_refusal_names_the_server_a_redirect_led_to() -> None:
    refusing = type("Refusing", (_Refusing,), {"authorizations": []})
    # Another host, so another origin: httpx sends the password to the first only.
    for there in _serve(refusing, "127.0.0.2"):
        for here in _serve(type("Redirect", (_Redirect,), {"target": there + "/dav/"})):
            with pytest.raises(InvalidInput) as caught:
                list(read_carddav(here + "/book/", "ana", PASSWORD))
    assert refusing.authorizations == [None]
    message = caught.value.message
    assert message.startswith(f"{there}, where {here} redirected, asks for a user name")
    assert f"give {there}'s address instead" in message
    assert PASSWORD not in message
