"""`courtois import --carddav URL` and `--imap HOST` against real Radicale and Dovecot.

Passwords come from the environment, never the command line; the Sent folder is read only
with the member's consent; and by default only public servers are reached, so a member
cannot make the service probe the operator's own network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from carddav_server import CardDavServer, radicale
from imap_server import ImapServer, dovecot
from sqlalchemy import create_engine, func, select
from test_cli import NOW, assert_refused, courtois, environment, ok

from courtois.cli_imports import show
from courtois.domain.contacts import ReadLimit
from courtois.services.contacts import ImportReport
from courtois.store.tables import contacts

PASSWORD = "ana-secret-41"
CARDS = {
    "bo.vcf": "BEGIN:VCARD\nVERSION:3.0\nUID:bo-1\nFN:Bo Berg\nEMAIL:bo@example.org\nEND:VCARD",
    "cy.vcf": (
        "BEGIN:VCARD\nVERSION:3.0\nUID:cy-1\nFN:Cy Chen\nEMAIL:cy@example.org\n"
        "EMAIL:cy.chen@work.example\nEND:VCARD"
    ),
}
SENT = "Sent"
MESSAGE = (
    b"From: ana@example.org\r\nTo: Dee <dee@example.net>\r\nCc: eve@example.com\r\n"
    b"Subject: Hello\r\nDate: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\n"
    b"Tell body-only@example.com too.\r\n"
)


@pytest.fixture
def db(tmp_path: Path) -> tuple[dict[str, str], Path]:
    database = tmp_path / "c.db"
    env = environment(f"sqlite:///{database}", COURTOIS_IMPORT_PASSWORD=PASSWORD)
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana", "--json")
    return env, database


def stored(database: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(select(contacts.c.address)).scalars())
    finally:
        engine.dispose()


def count(database: Path) -> int:
    engine = create_engine(f"sqlite:///{database}")
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(contacts)).scalar())
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def carddav(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CardDavServer]:
    with radicale(tmp_path_factory.mktemp("radicale"), {"ana": PASSWORD}) as server:
        with server.client("ana", PASSWORD) as client:
            server.make_address_book(client, "/ana/contacts/", "Contacts")
            for name, card in CARDS.items():
                server.put_card(client, f"/ana/contacts/{name}", card)
        yield server


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ImapServer]:
    with dovecot(tmp_path_factory.mktemp("dovecot"), {"ana": PASSWORD}, sent_mailbox=SENT) as s:
        imap = s.client("ana", PASSWORD)
        try:
            assert imap.append(f'"{SENT}"', None, None, MESSAGE)[0] == "OK"
        finally:
            imap.logout()
        yield s


def test_carddav_account_imports_every_card(
    db: tuple[dict[str, str], Path], carddav: CardDavServer
) -> None:
    env, database = db
    args = ("import", "--carddav", carddav.url, "--user", "ana", "--member", "ana")
    local = {**env, "COURTOIS_IMPORT_PRIVATE_HOSTS": "true"}
    report = ok(local, *args, "--now", NOW, "--json")
    assert (report["records"], report["imported"]) == (3, 3)
    assert stored(database) == ["bo@example.org", "cy.chen@work.example", "cy@example.org"]


def test_a_server_on_a_private_network_is_refused_by_default(
    db: tuple[dict[str, str], Path], carddav: CardDavServer, mail: ImapServer
) -> None:
    env, database = db
    refused = courtois(env, "import", "--carddav", carddav.url, "--user", "ana", "--member", "ana")
    assert_refused(refused, "private network")
    imap = f"{mail.host}:{mail.port}"
    refused = courtois(
        env, "import", "--imap", imap, "--security", "none", "--consent-sent-headers",
        "--user", "ana", "--member", "ana",
    )  # fmt: skip
    assert_refused(refused, "private network")
    assert count(database) == 0


def test_sent_folder_headers_with_consent_only(
    db: tuple[dict[str, str], Path], mail: ImapServer
) -> None:
    env, database = db
    local = {**env, "COURTOIS_IMPORT_PRIVATE_HOSTS": "1"}
    imap = f"{mail.host}:{mail.port}"
    base = ("import", "--imap", imap, "--security", "none", "--user", "ana", "--member", "ana")
    assert_refused(courtois(local, *base), "consent")
    assert count(database) == 0
    report = ok(local, *base, "--consent-sent-headers", "--now", NOW, "--json")
    assert report["imported"] == 2
    assert stored(database) == ["dee@example.net", "eve@example.com"]


def test_no_password_on_a_pipe_is_refused(
    db: tuple[dict[str, str], Path], carddav: CardDavServer
) -> None:
    env, database = db
    bare = {k: v for k, v in env.items() if k != "COURTOIS_IMPORT_PASSWORD"}
    args = ("import", "--carddav", carddav.url, "--user", "ana", "--member", "ana")
    assert_refused(courtois(bare, *args), "COURTOIS_IMPORT_PASSWORD")
    assert_refused(courtois(env, "import", "--member", "ana"), "exactly one source")
    assert count(database) == 0


def test_the_summary_says_what_a_sent_folder_held_beyond_what_was_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = ImportReport(records=40, imported=40, limits=[ReadLimit("Sent", 5_000, 5_108)])

    show(report.as_dict())

    shown = " ".join(capsys.readouterr().out.split())
    assert "Only the newest 5,000 of the 5,108 messages in Sent were read." in shown
