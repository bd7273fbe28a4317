"""`courtois import FILE --member ID` as operators run it, then the purge of the address
book a day later, picked or not, by `courtois worker --once --now` (invariant 10)."""

from __future__ import annotations

import os
import pty
import select as poll
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select, update
from test_cli import EXECUTABLE, NOW, assert_refused, at, courtois, environment, ok

from courtois.store.tables import contacts, ledger

GOOGLE = (
    "Name,Given Name,Family Name,"
    "E-mail 1 - Type,E-mail 1 - Value,E-mail 2 - Type,E-mail 2 - Value\r\n"
    "Bo Berg,Bo,Berg,* Home,bo@example.com,Work,bo.berg@work.example\r\n"
    "Cy Chen,Cy,Chen,* Other,CY@Example.COM,,\r\n"
    "No Mail,No,Mail,,,,\r\n"
    "Dee Diaz,Dee,Diaz,Home,dee@@example.org,,\r\n"
    "Cy Again,Cy,Again,Home,cy@example.com,,\r\n"
    "Ana Self,Ana,Self,Home,ana@example.com,,\r\n"
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tuple[dict[str, str], Engine, Path]]:
    database = tmp_path / "c.db"
    env = environment(f"sqlite:///{database}")
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana", "--json")
    book = tmp_path / "google.csv"
    book.write_bytes(GOOGLE.encode("utf-8"))
    engine = create_engine(f"sqlite:///{database}")
    yield env, engine, book
    engine.dispose()


def count(engine: Engine, *where: object) -> int:
    with engine.connect() as connection:
        query = select(func.count()).select_from(contacts)
        for condition in where:
            query = query.where(condition)  # type: ignore[arg-type]
        return int(connection.execute(query).scalar_one())


def test_import_reports_every_record_and_the_purge_a_day_later_keeps_nothing(
    db: tuple[dict[str, str], Engine, Path],
) -> None:
    env, engine, book = db
    report = ok(env, "import", str(book), "--member", "ana", "--now", NOW, "--json")
    assert report["records"] == 7
    assert report["imported"] == 3
    assert (report["duplicates"], report["flagged"], report["rejected"]) == (1, 1, 2)
    assert report["imported"] + report["duplicates"] + report["flagged"] + report["rejected"] == 7
    reasons = {entry["reason"].split(":")[0] for entry in report["rejected_records"]}
    assert reasons == {"no address", "invalid address"}
    assert all(entry["where"] for entry in report["rejected_records"])
    assert report["flagged_records"][0]["reason"] == "your own address"
    assert report["duplicate_records"][0]["reason"].startswith("duplicate of ")
    assert count(engine) == 3
    assert count(engine, contacts.c.selected.is_(True)) == 0

    with engine.begin() as connection:
        connection.execute(
            update(contacts).where(contacts.c.address == "CY@example.com").values(selected=True)
        )
    ok(env, "worker", "--once", "--now", at(hours=23), "--json")
    assert count(engine) == 3
    # Picked or not, a contact goes a day after its import.
    ok(env, "worker", "--once", "--now", at(hours=25), "--json")
    with engine.connect() as connection:
        left = connection.execute(select(contacts.c.address, contacts.c.selected)).all()
    assert left == []


def test_the_human_report_is_a_summary_table(db: tuple[dict[str, str], Engine, Path]) -> None:
    env, _engine, book = db
    shown = ok(env, "import", str(book), "--member", "ana", "--now", NOW)
    assert "imported" in shown
    assert "no address" in shown
    assert "bo@example.com" not in shown  # where and why, never the addresses themselves


def test_a_file_over_the_limit_is_refused_before_it_is_read(
    db: tuple[dict[str, str], Engine, Path],
) -> None:
    env, engine, book = db
    before = ledger_size(engine)
    small = {**env, "COURTOIS_IMPORT_MAX_BYTES": "100"}
    line = assert_refused(
        courtois(small, "import", str(book), "--member", "ana", "--now", NOW), "bigger"
    )
    assert "100 bytes" in line
    assert count(engine) == 0
    assert ledger_size(engine) == before


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"\x00\x01\x02\xff garbage \xfe" * 50, ("format",)),
        (b"", ("format",)),
    ],
)
def test_an_unreadable_file_is_refused_and_changes_nothing(
    db: tuple[dict[str, str], Engine, Path], tmp_path: Path, content: bytes, words: tuple[str]
) -> None:
    env, engine, _book = db
    bad = tmp_path / "bad.bin"
    bad.write_bytes(content)
    before = ledger_size(engine)
    assert_refused(courtois(env, "import", str(bad), "--member", "ana", "--now", NOW), *words)
    assert count(engine) == 0
    assert ledger_size(engine) == before


def test_unknown_member_missing_file_and_bad_format_are_refused(
    db: tuple[dict[str, str], Engine, Path], tmp_path: Path
) -> None:
    env, engine, book = db
    assert_refused(courtois(env, "import", str(book), "--member", "nobody"), "nobody")
    assert_refused(
        courtois(env, "import", str(tmp_path / "missing.csv"), "--member", "ana"), "no such"
    )
    assert_refused(
        courtois(env, "import", str(book), "--member", "ana", "--format", "xls"), "--format"
    )
    assert count(engine) == 0


def ledger_size(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ledger)).scalar_one())


def test_a_large_file_on_a_terminal_shows_a_progress_bar(
    db: tuple[dict[str, str], Engine, Path], tmp_path: Path
) -> None:
    """On a terminal (a pseudo-terminal here), a file of a megabyte or more gets a bar."""
    env, engine, _book = db
    big = tmp_path / "big.csv"
    rows = "".join(f"Person {i},p{i}@example.org\r\n" for i in range(40_000))
    big.write_text("Name,E-mail Address\r\n" + rows)
    assert big.stat().st_size >= 1 << 20
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [EXECUTABLE, "import", str(big), "--member", "ana", "--now", NOW],
        env={**env, "COLUMNS": "100"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        ready, _, _ = poll.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=60) == 0
    os.close(leader)
    text = shown.decode("utf-8", "replace")
    assert "reading" in text  # the bar's label
    assert "MB" in text  # its byte count
    assert "40000" in text.replace(",", "")  # then the summary table
    assert count(engine) == 40_000
