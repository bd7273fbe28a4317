"""The Sent-folder reader against a real Dovecot, seeded with APPEND like a mail client.

Besides what the reader yields, Dovecot's raw log of every command and its per-session
counters prove what was asked for: only the To and Cc fields of the Sent folder's messages.
"""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from dribbling import dribbling_server
from imap_server import ImapServer, dovecot, free_port
from support import T0, add_members, rows

from courtois.domain.contacts import ContactInput, ReadLimit, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers import imap as imap_reader
from courtois.importers.imap import read_sent_recipients
from courtois.importers.imap_headers import CUT_OFF, HEADER_BYTES, UNREADABLE
from courtois.services import imports as import_service
from courtois.services.contacts import ImportReport
from courtois.services.context import Context
from courtois.store.tables import contacts

PASSWORD = "ana-secret-41"
UNICODE_PASSWORD = "mot-de-passe-é"
TLS_HOST = "127.0.0.2"
SENT = "Outbox Archive"  # marked \Sent, under a name no guess would find


def message(headers: str, body: str = "Hello.\n") -> bytes:
    text = headers.strip() + "\nDate: Mon, 2 Mar 2026 09:00:00 +0000\n\n" + body
    return text.replace("\n", "\r\n").encode("utf-8")


LEE = base64.b64encode("李小龍".encode()).decode()
SENT_MESSAGES = [
    message(
        """From: Ana <ana@example.org>
To: =?UTF-8?Q?Zo=C3=A9_Br=C3=B6nte?= <zoe@example.org>, Bo Li <bo@example.org>
Cc: =?ISO-8859-1?Q?Andr=E9_D=FCrr?= <andre@example.fr>
Subject: Dinner""",
        "Please also tell body-only@example.com.\nTo: body-header@example.com\n",
    ),
    message(
        f"""From: ana@example.org
To: =?UTF-8?B?{LEE}?= <lee@example.jp>
Cc: cy@example.com, "Dee, Jr." <dee@example.net>
Subject: =?UTF-8?Q?R=C3=A9union?=
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="b\"""",
        "--b\nContent-Type: text/plain\n\nCc: forwarded@example.com\n--b--\n",
    ),
    message(
        """From: ana@example.org
To: undisclosed-recipients:;
Bcc: hidden-bcc@example.org
Subject: A surprise"""
    ),
    message(
        """From: ana@example.org
Reply-To: reply-to@example.org
To: Team: eve@example.org, Fay <fay@example.org>;
Subject: Team news"""
    ),
]
EXPECTED = [
    ContactInput("eve@example.org", "", "message 4, item 1"),
    ContactInput("fay@example.org", "Fay", "message 4, item 2"),
    RecordProblem("message 3", "no address in To or Cc"),
    ContactInput("lee@example.jp", "李小龍", "message 2, item 1"),
    ContactInput("cy@example.com", "", "message 2, item 2"),
    ContactInput("dee@example.net", "Dee, Jr.", "message 2, item 3"),
    ContactInput("zoe@example.org", "Zoé Brönte", "message 1, item 1"),
    ContactInput("bo@example.org", "Bo Li", "message 1, item 2"),
    ContactInput("andre@example.fr", "André Dürr", "message 1, item 3"),
]
# Addresses the reader must never return: bodies, Bcc, other headers, other folders.
NEVER = [
    "body-only@example.com",
    "body-header@example.com",
    "forwarded@example.com",
    "hidden-bcc@example.org",
    "reply-to@example.org",
    "ana@example.org",
    "inbox-from@example.org",
    "inbox-cc@example.org",
    "inbox-body@example.org",
    "decoy@example.org",
    "draft@example.org",
]


def cut_to_field() -> tuple[str, list[str]]:
    """A To field whose first HEADER_BYTES bytes, as the server sends the fields, end inside
    "carol@example.com" (at "carol@example.co", another valid address), and the addresses
    that come whole before it."""
    target = HEADER_BYTES - len("carol@example.co")
    text, whole = "To: ", []
    while target - len(text) >= 60:
        whole.append(f"p{len(whole)}@example.org")
        text += whole[-1] + ",\r\n "
    whole.append("q" * (target - len(text) - len("@example.org,\r\n ")) + "@example.org")
    text += whole[-1] + ",\r\n "
    assert len(text) == target
    rest = "carol@example.com,\r\n dave@example.net\r\nCc: erin@example.org\r\n"
    return text + rest, whole


CUT_FIELD, BEFORE_THE_CUT = cut_to_field()
# Dee's Sent folder: messages whose To and Cc the stdlib alone reads wrong.
AWKWARD_MESSAGES = [
    f"{CUT_FIELD}From: dee@example.org\r\nSubject: everyone\r\n\r\nHello.\r\n".encode(),
    message(
        "To: =?UTF-8?Q?Bad=0D=0AName?= <bad-name@example.org>, Good Name <good@example.org>\n"
        "Cc: other@example.org"
    ),
    message("To: <=?utf-8?q?x=2Ey?=@example.org>, plain@example.org"),
    "To: Andr\xe9 D\xfcrr <andre.raw@example.fr>\r\nSubject: raw Latin-1\r\n\r\nHi.\r\n".encode(
        "latin-1"
    ),
]
# Written out, not imported: the test states what may be asked for.
FETCH_ONLY = "(BODY.PEEK[HEADER.FIELDS (TO CC)]<0.65536>)"
OLD_CAPABILITIES = "IMAP4rev1 LITERAL+ SASL-IR ID IDLE NAMESPACE CHILDREN UIDPLUS"
ALLOWED_COMMANDS = {"CAPABILITY", "LIST", "EXAMINE", "FETCH", "LOGOUT"}


def seed(server: ImapServer, user: str, password: str, folders: dict[str, list[bytes]]) -> None:
    """Create each folder (its wire name) unless it exists, then APPEND its messages."""
    imap = server.client(user, password)
    try:
        for folder, messages in folders.items():
            if folder not in ("INBOX", SENT):
                assert imap.create(f'"{folder}"')[0] == "OK"
            for raw in messages:
                assert imap.append(f'"{folder}"', None, None, raw)[0] == "OK"
    finally:
        imap.logout()


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    config = tmp_path_factory.mktemp("dovecot")
    users = {"ana": PASSWORD, "bo": UNICODE_PASSWORD, "cy": PASSWORD, "dee": PASSWORD}
    with dovecot(config, users, sent_mailbox=SENT) as server:
        seed(
            server,
            "ana",
            PASSWORD,
            {
                SENT: SENT_MESSAGES,
                "Sent": [message("To: decoy@example.org\nSubject: not the marked folder")],
                "Drafts": [message("To: draft@example.org\nSubject: unsent")],
                "INBOX": [
                    message(
                        "From: inbox-from@example.org\nTo: ana@example.org\n"
                        "Cc: inbox-cc@example.org\nSubject: for Ana",
                        "Write to inbox-body@example.org\n",
                    )
                ],
            },
        )
        seed(server, "bo", UNICODE_PASSWORD, {SENT: [message("To: Ana <ana@example.org>")]})
        seed(server, "dee", PASSWORD, {SENT: AWKWARD_MESSAGES})
        yield server


def read(
    server: ImapServer, user: str = "ana", password: str = PASSWORD, **options: Any
) -> Iterator[ContactInput | RecordProblem]:
    return read_sent_recipients(server.host, server.port, user, password, consent=True, **options)


def test_reads_only_to_and_cc_of_the_sent_folder(mail: ImapServer) -> None:
    before = mail.mark()

    items = list(read(mail))

    assert items == EXPECTED
    found = {item.email for item in items if isinstance(item, ContactInput)}
    assert not found & set(NEVER)

    # The server's own record of the session: no other command, folder or fetch item.
    commands = mail.commands_since(before)
    assert {command.split()[0] for command in commands} <= ALLOWED_COMMANDS
    assert 'LIST "" "*" RETURN (SPECIAL-USE)' in commands
    assert [c for c in commands if c.startswith("EXAMINE")] == [f'EXAMINE "{SENT}"']
    fetches = [c for c in commands if c.startswith("FETCH")]
    assert fetches == [f"FETCH 1:4 {FETCH_ONLY}"]
    assert not re.search(r"RFC822|BODY(\.PEEK)?\[(\]|TEXT)|SELECT|STORE", " ".join(commands))
    # ...and its counters: four header fetches, not one body.
    last = mail.logouts()[-1]
    assert "hdr_count=4 " in last
    assert "body_count=0 body_bytes=0" in last


def test_reads_newest_messages_first_in_batches(
    mail: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imap_reader, "BATCH_SIZE", 3)
    before = mail.mark()

    items = list(read(mail))

    assert items == EXPECTED
    fetches = [c for c in mail.commands_since(before) if c.startswith("FETCH")]
    assert fetches == [f"FETCH 2:4 {FETCH_ONLY}", f"FETCH 1:1 {FETCH_ONLY}"]


def test_the_limit_keeps_the_newest_messages_and_says_so(mail: ImapServer) -> None:
    assert list(read(mail, limit=2)) == [ReadLimit(SENT, read=2, total=4), *EXPECTED[:3]]
    # A folder within the limit is read whole, with nothing to say.
    assert not [item for item in read(mail, limit=4) if isinstance(item, ReadLimit)]


def test_a_folder_the_member_names_is_read_instead(mail: ImapServer) -> None:
    items = list(read(mail, folder="sent"))

    assert items == [ContactInput("decoy@example.org", "", "message 1")]


def test_a_non_ascii_password_logs_in_with_sasl_plain(mail: ImapServer) -> None:
    items = list(read(mail, "bo", UNICODE_PASSWORD))

    assert items == [ContactInput("ana@example.org", "Ana", "message 1")]


def test_a_wrong_password_is_refused_clearly(tmp_path: Path) -> None:
    # A server of its own: after a failed login Dovecot delays the next ones from the
    # same address for seconds, which would slow every test after this one.
    with (
        dovecot(tmp_path, {"ana": PASSWORD}, sent_mailbox=SENT) as server,
        pytest.raises(InvalidInput, match="refused the user name or password") as caught,
    ):
        list(read(server, "ana", "not-" + PASSWORD))

    assert PASSWORD not in caught.value.message
    assert "not-" not in caught.value.message


def test_a_folder_that_does_not_exist_is_refused(mail: ImapServer) -> None:
    with pytest.raises(InvalidInput, match="no folder named 'Archives'"):
        list(read(mail, "cy", PASSWORD, folder="Archives"))


@pytest.fixture(scope="module")
def unmarked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    """An older server: no \\Sent attribute, no SPECIAL-USE; the reader goes by names."""
    config = tmp_path_factory.mktemp("dovecot-unmarked")
    users = dict.fromkeys(("items", "french", "child", "none"), PASSWORD)
    with dovecot(config, users, capabilities=OLD_CAPABILITIES) as server:
        archive = {"Archive": [message("To: decoy@example.org")]}
        folders = {
            "items": "Sent Items",
            "french": "Envoy&AOk-s",  # "Envoyés" in modified UTF-7
            "child": "INBOX/Sent",
        }
        for user, folder in folders.items():
            found = [message(f"To: {user}-friend@example.org")]
            seed(server, user, PASSWORD, {**archive, folder: found})
        seed(server, "none", PASSWORD, {**archive, "INBOX": [message("To: ana@example.org")]})
        yield server


@pytest.mark.parametrize("user", ["items", "french", "child"])
def test_a_usual_name_is_found_without_special_use(unmarked: ImapServer, user: str) -> None:
    before = unmarked.mark()

    items = list(read(unmarked, user))

    assert items == [ContactInput(f"{user}-friend@example.org", "", "message 1")]
    assert 'LIST "" "*"' in unmarked.commands_since(before)


def test_no_sent_folder_is_a_clear_error_before_any_message_is_opened(
    unmarked: ImapServer,
) -> None:
    before = unmarked.mark()

    with pytest.raises(InvalidInput, match="No Sent folder was found"):
        list(read(unmarked, "none"))

    commands = unmarked.commands_since(before)
    assert commands
    assert not [c for c in commands if c.split()[0] in ("EXAMINE", "SELECT", "FETCH")]


@pytest.fixture(scope="module")
def tls_mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    config = tmp_path_factory.mktemp("dovecot-tls")
    # Dovecot trusts a client whose address is the one it listens on (as from 127.0.0.1 to
    # 127.0.0.1) with a password in clear; from 127.0.0.1 to 127.0.0.2 it does not.
    with dovecot(config, {"ana": PASSWORD}, sent_mailbox=SENT, tls=True, host=TLS_HOST) as server:
        seed(server, "ana", PASSWORD, {SENT: [message("To: Bo <bo@example.org>")]})
        yield server


def test_starttls_and_implicit_tls(tls_mail: ImapServer) -> None:
    context = tls_mail.trusting_context()
    expected = [ContactInput("bo@example.org", "Bo", "message 1")]

    assert list(read(tls_mail, starttls=True, ssl_context=context)) == expected
    assert tls_mail.tls_port is not None
    implicit = read_sent_recipients(
        TLS_HOST,
        tls_mail.tls_port,
        "ana",
        PASSWORD,
        consent=True,
        use_ssl=True,
        ssl_context=context,
    )
    assert list(implicit) == expected


def test_a_server_wanting_tls_says_so(tls_mail: ImapServer) -> None:
    # "IMAP" as people write it, not "Imap" (str.capitalize).
    with pytest.raises(
        InvalidInput, match=r"^The IMAP server 127\.0\.0\.2:\d+ accepts passwords only over TLS"
    ):
        list(read(tls_mail))


def test_an_untrusted_certificate_is_refused(tls_mail: ImapServer) -> None:
    with pytest.raises(
        InvalidInput,
        match=r"TLS with the IMAP server 127\.0\.0\.2:\d+ failed \(CERTIFICATE_VERIFY_FAILED\)",
    ):
        list(read(tls_mail, starttls=True))


@pytest.mark.parametrize("consent", [False, None, "yes", 1])
def test_nothing_happens_without_explicit_consent(consent: object) -> None:
    with pytest.raises(InvalidInput, match="explicit consent"):
        read_sent_recipients(
            "127.0.0.1",
            free_port(),
            "ana",
            PASSWORD,
            consent=consent,  # type: ignore[arg-type]
        )


def test_consent_cannot_be_left_out() -> None:
    with pytest.raises(TypeError, match="consent"):
        read_sent_recipients("127.0.0.1", 143, "ana", PASSWORD)  # type: ignore[call-arg]


def test_an_unreachable_server_is_reported_when_read() -> None:
    reader = read_sent_recipients("127.0.0.1", free_port(), "ana", PASSWORD, consent=True)

    with pytest.raises(
        InvalidInput,
        match=r"Could not connect to the IMAP server 127\.0\.0\.1:\d+: Connection refused",
    ):
        next(reader)


def test_a_silent_server_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the connection; no greeting ever comes
        port = silent.getsockname()[1]

        with pytest.raises(InvalidInput, match=r"did not answer within 0\.3 seconds"):
            list(read_sent_recipients("127.0.0.1", port, "a", "b", consent=True, timeout=0.3))


def dribbling_imap_server() -> AbstractContextManager[int]:
    """An IMAP server that greets at once, then answers the first command one byte at a
    time."""
    return dribbling_server(b"", b"* CAPABILITY IMAP4rev1 X-SLOW", greeting=b"* OK ready\r\n")


def test_a_server_sending_a_byte_now_and_then_is_stopped_at_the_deadline() -> None:
    with dribbling_imap_server() as port:
        started = time.monotonic()
        with pytest.raises(InvalidInput) as caught:
            list(read_sent_recipients("127.0.0.1", port, "a", "b", consent=True, deadline=1.5))
        took = time.monotonic() - started

    assert re.fullmatch(
        r"The IMAP server 127\.0\.0\.1:\d+ did not send the Sent folder's headers within the "
        r"1\.5 seconds an import may take; nothing was imported\.",
        caught.value.message,
    )
    assert 1.5 <= took < 2.5


@pytest.mark.parametrize(
    "options",
    [{"port": 0}, {"host": ""}, {"limit": 0}, {"deadline": 0}, {"use_ssl": True, "starttls": True}],
)
def test_bad_settings_are_refused_at_once(options: dict[str, object]) -> None:
    arguments: dict[str, Any] = {"host": "127.0.0.1", "port": 143, **options}
    with pytest.raises(InvalidInput):
        read_sent_recipients(username="ana", password=PASSWORD, consent=True, **arguments)


def by_message(items: list[ContactInput | RecordProblem | ReadLimit]) -> dict[str, list[object]]:
    """What each message yielded, in order, by message ("message 2", whatever its item)."""
    found: dict[str, list[object]] = {}
    for item in items:
        assert not isinstance(item, ReadLimit)
        found.setdefault(item.where.partition(", item ")[0], []).append(
            (item.email, item.name) if isinstance(item, ContactInput) else item.reason
        )
    return found


def test_an_address_cut_at_the_header_bound_is_never_imported(mail: ImapServer) -> None:
    """The fields are read up to HEADER_BYTES: "carol@example.com" reaches the reader as
    "carol@example.co", a valid address of somebody else, and must be left out, said so."""
    items = by_message(list(read(mail, "dee")))["message 1"]

    assert items == [*[(address, "") for address in BEFORE_THE_CUT], CUT_OFF]
    found = " ".join(str(item) for item in items)
    assert "carol@" not in found
    assert "dave@" not in found
    assert "erin@" not in found


def test_one_unreadable_address_costs_only_itself(mail: ImapServer) -> None:
    items = by_message(list(read(mail, "dee")))["message 2"]

    # The stdlib refuses the whole To field for the name holding CR LF.
    assert items == [UNREADABLE, ("good@example.org", "Good Name"), ("other@example.org", "")]


def test_an_encoded_word_inside_an_address_is_passed_on_as_written(mail: ImapServer) -> None:
    """The stdlib decodes it ("x.y@example.org"); the import service refuses it as written,
    as it refuses it in a file."""
    items = by_message(list(read(mail, "dee")))["message 3"]

    assert items == [("=?utf-8?q?x=2Ey?=@example.org", ""), ("plain@example.org", "")]


def test_raw_latin1_names_are_read_as_windows_1252(mail: ImapServer) -> None:
    items = by_message(list(read(mail, "dee")))["message 4"]

    assert items == [("andre.raw@example.fr", "André Dürr")]


def test_each_address_of_a_message_has_its_own_place(mail: ImapServer) -> None:
    """Several addresses of one message are "message 2, item 1", "message 2, item 2"...,
    numbered among the addresses read (a problem is placed at the message); a message with
    one address is the message alone."""
    places = [
        (item.where, item.email) for item in read(mail, "dee") if isinstance(item, ContactInput)
    ]
    found = dict(places)
    assert len(found) == len(places), "two addresses share a place"
    assert [where for where, _ in places if where.startswith("message 2")] == [
        "message 2, item 1",
        "message 2, item 2",
    ]
    assert found["message 3, item 1"] == "=?utf-8?q?x=2Ey?=@example.org"
    assert found["message 4"] == "andre.raw@example.fr"
    assert found[f"message 1, item {len(BEFORE_THE_CUT)}"] == BEFORE_THE_CUT[-1]


def import_sent(ctx: Context, mail: ImapServer, user: str, **options: Any) -> ImportReport:
    local = replace(ctx, settings=replace(ctx.settings, import_private_hosts=True))
    server = import_service.ImapServer(mail.host, mail.port, "none")
    return import_service.import_sent_folder(
        local, "ana", server, user, PASSWORD, T0, consent=True, **options
    )


def test_the_report_says_which_messages_were_left_unread(ctx: Context, mail: ImapServer) -> None:
    add_members(ctx)

    report = import_sent(ctx, mail, "ana", limit=2)

    assert report.records == 3  # Eve, Fay and the message to nobody: the newest two
    assert report.as_dict()["not_read"] == [
        {
            "where": SENT,
            "read": 2,
            "total": 4,
            "reason": f"only the newest 2 of the 4 messages in {SENT} were read",
        }
    ]


def test_what_the_header_parser_alone_gets_wrong_is_stored_right_or_refused(
    ctx: Context, mail: ImapServer
) -> None:
    add_members(ctx)

    report = import_sent(ctx, mail, "dee")

    stored = {row.address: row.display_name for row in rows(ctx, contacts)}
    expected = dict.fromkeys(BEFORE_THE_CUT, "")
    expected |= {
        "good@example.org": "Good Name",
        "other@example.org": "",
        "plain@example.org": "",
        "andre.raw@example.fr": "André Dürr",
    }
    assert stored == expected
    rejected = {(note["where"], note["reason"]) for note in report.rejected}
    assert rejected == {
        ("message 1", CUT_OFF),
        ("message 2", UNREADABLE),
        (
            "message 3, item 1",
            "invalid address: Not a valid email address: it holds an encoded word (=?).",
        ),
    }
    assert report.as_dict()["not_read"] == []  # four messages, all read
