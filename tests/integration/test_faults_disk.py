"""The SQLite database's disk fills up: an import that does not fit is refused clearly (the
API: a 507 problem; the CLI: one line and a non-zero exit), leaves the database exactly as
it was and consistent (`courtois audit verify`), and succeeds once there is room again.

Run on a small tmpfs (the kernel says "no space left"), and under SQLite's page limit (the
same error from SQLite itself, where mounting is not possible).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from api_support import API_KEY, HandClock, problem, served
from small_disk import SmallDisk, small_disk

from conftest import SECRET, T0
from courtois.config import Settings
from courtois.services.audit import verify_ledger
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.web.app import create_app

CONTACTS = 1200
# Room for a few pages: a member row fits, thousands of contacts do not.
ROOM = 48 * 1024


@pytest.fixture(params=["tmpfs", "page-limit"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path, request.param) as found:
        yield found


def dump(database: Path) -> list[str]:
    """Every schema object and row, as SQL: equal dumps are equal databases."""
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return list(connection.iterdump())


def courtois(disk: SmallDisk, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "COURTOIS_DATABASE_URL": disk.url,
        "COURTOIS_SECRET_KEY": SECRET,
    }
    return subprocess.run(
        disk.command(*arguments), env=env, capture_output=True, text=True, timeout=120
    )


def test_an_import_that_does_not_fit_changes_nothing_and_fits_once_there_is_room(
    disk: SmallDisk, tmp_path: Path
) -> None:
    engine = make_engine(disk.url)
    disk.attach(engine)
    migrate(engine)
    ctx = Context(engine, Settings(secret_key=SECRET, api_key=API_KEY))
    register_member(ctx, "ana", "ana@members.example", "Ana", "en", T0)
    with engine.connect() as connection:
        # The log is folded into the file, so what follows must grow the disk's use.
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    contacts = [{"email": f"c{i}@example{i % 50}.org", "name": f"C {i}"} for i in range(CONTACTS)]
    card_file = tmp_path / "book.vcf"
    card_file.write_text(
        "".join(
            f"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:V {i}\r\nEMAIL:v{i}@example{i % 50}.org\r\n"
            "END:VCARD\r\n"
            for i in range(CONTACTS)
        )
    )
    cli_import = ("import", str(card_file), "--member", "ana", "--now", "2026-03-02T10:00")

    disk.squeeze(ROOM)
    before = dump(disk.database)
    with (
        served(create_app(ctx, HandClock(T0))) as base_url,
        httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
        ) as http,
    ):
        refused = http.post("/v1/members/ana/imports", json={"contacts": contacts})
        body = problem(refused, 507, "storage-full")
        assert "nothing was changed" in body["detail"]
        assert refused.headers["retry-after"]
        assert dump(disk.database) == before

        failed = courtois(disk, *cli_import)
        assert failed.returncode == 75, failed.stderr
        assert failed.stderr.startswith("courtois: storage-full: "), failed.stderr
        assert len(failed.stderr.splitlines()) == 1, failed.stderr
        assert dump(disk.database) == before

        verified = courtois(disk, "audit", "verify", "--json")
        assert verified.returncode == 0, verified.stderr
        assert '"ok": true' in verified.stdout

        disk.relieve()
        imported = http.post("/v1/members/ana/imports", json={"contacts": contacts})
        assert imported.status_code == 200, imported.text
        assert imported.json()["imported"] == CONTACTS
    done = courtois(disk, *cli_import, "--json")
    assert done.returncode == 0, done.stderr
    assert f'"imported": {CONTACTS}' in done.stdout
    assert verify_ledger(engine).ok
    engine.dispose()
