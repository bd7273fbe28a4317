"""A database restored from a backup (SQLite's `.backup`, PostgreSQL's `pg_dump`), then
`courtois audit reapply-stops --file` with the ledger exported before the restore: every
stop made after the backup holds again (an opt-out, a block of one member, a "forget me",
suppressions by a dead address and by a complaint, a member's withdrawal and revocation),
every email that left after the backup stays unsent, and a second run changes nothing. A
file that is empty, edited, or another database's ledger is refused, and nothing is
applied."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bounce_support import arf
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from test_cli import NOW, assert_refused, at, courtois, digest, environment, ok

from conftest import POSTGRES_URL
from courtois.store.tables import (
    complaints,
    consents,
    contacts,
    invitations,
    ledger,
    messages,
    recipient_blocks,
    recipients,
)

POSTAL = "Agora, 1 Example Street, 99999 Exampleton"
MAIL_FROM = "invitations@agora.example"
BO, CY, DEE, FAY, GUS = (f"{n}@example.org" for n in ("bo", "cy", "dee", "fay", "gus"))
HAL, IVY, JO = (f"{n}@example.net" for n in ("hal", "ivy", "jo"))
DEAD = "550 5.1.1 <fay@example.org>: Recipient address rejected: User unknown"
ZERO = {"applied": 0, "skipped": 0}


class Stores:
    """Databases of one engine for a test module: made, backed up and restored as an
    operator does it, and dropped at the end."""

    def __init__(self, kind: str, folder: Path, admin: Engine) -> None:
        self.kind, self.folder, self.admin = kind, folder, admin
        self.made: list[str] = []

    def new(self, name: str) -> str:
        """The URL of a new, empty database."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / name}-{uuid.uuid4().hex[:8]}.db"
        database = f"courtois_restore_{uuid.uuid4().hex[:12]}"
        with self.admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        self.made.append(database)
        return make_url(POSTGRES_URL).set(database=database).render_as_string(False)

    def backup(self, url: str) -> Path:
        """`sqlite3 live.db ".backup kept.db"` (consistent, its log included), or
        `pg_dump --format=custom`."""
        kept = self.folder / f"backup-{uuid.uuid4().hex[:8]}"
        if self.kind == "sqlite":
            _copy(Path(make_url(url).database or ""), kept)
        else:
            subprocess.run(["pg_dump", "--format=custom", "-f", str(kept), _libpq(url)], check=True)
        return kept

    def restore(self, kept: Path, name: str) -> str:
        """A new database holding the backup, as an operator restores it."""
        url = self.new(name)
        if self.kind == "sqlite":
            _copy(kept, Path(make_url(url).database or ""))
        else:
            subprocess.run(["pg_restore", "--no-owner", "-d", _libpq(url), str(kept)], check=True)
        return url

    def drop(self) -> None:
        with self.admin.connect() as connection:
            for database in self.made:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def _copy(source: Path, target: Path) -> None:
    """SQLite's online backup, page by page."""
    live, copy = sqlite3.connect(source), sqlite3.connect(target)
    try:
        live.backup(copy)
    finally:
        copy.close()
        live.close()


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(False)


def snapshot(engine: Engine) -> dict[str, Any]:
    """Every table the stops change, row by row."""
    tables = (recipients, recipient_blocks, complaints, invitations, messages, consents, contacts)
    with engine.connect() as connection:
        rows = {
            t.name: sorted(tuple(map(str, r)) for r in connection.execute(select(t)))
            for t in tables
        }
        rows["ledger"] = connection.execute(select(func.count()).select_from(ledger)).scalar_one()
    return rows


def invited(env: dict[str, str], member: str, address: str, when: str) -> dict[str, Any]:
    """A new invitation's decision for one address."""
    answer = ok(env, "invite", "--member", member, "--email", address, "--now", when, "--json")
    (item,) = answer["invitations"]
    decision: dict[str, Any] = item["decision"]
    return decision


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def story(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_admin: Engine,
) -> Iterator[dict[str, Any]]:
    """A live database, its backup taken before the emails left, then what happened after
    the backup (sends and stops), and the ledger exported before the restore. Each test
    restores its own copy of the backup."""
    stores = Stores(request.param, tmp_path_factory.mktemp("restore"), postgres_admin)
    try:
        yield _story(stores)
    finally:
        stores.drop()


def _story(stores: Stores) -> dict[str, Any]:
    handler = FaultyHandler(rcpt_replies={FAY: DEAD})
    with smtp_server(handler) as url:
        live = stores.new("live")
        env = environment(
            live,
            COURTOIS_SMTP_URL=url,
            COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL,
            COURTOIS_MAIL_FROM=MAIL_FROM,
        )
        ok(env, "migrate")
        for member in ("ana", "ben"):
            ok(
                env,
                "member",
                "add",
                member,
                "--email",
                f"{member}@members.example",
                "--name",
                member,
            )
        mine = ["--email", BO, "--email", CY, "--email", DEE, "--email", FAY, "--email", GUS]
        ana = ok(
            env, "invite", "--member", "ana", *mine, "--reminders", "1", "--now", NOW, "--json"
        )
        theirs = ["--email", HAL, "--email", IVY, "--reminders", "1", "--now", NOW, "--json"]
        ben = ok(env, "invite", "--member", "ben", *theirs)
        kept = stores.backup(live)

        # After the backup: the emails leave (Fay's address is dead), and people stop them.
        passed = ok(env, "worker", "--once", "--now", at(minutes=11), "--json")
        assert (passed["sent"], passed["failed"]) == (6, 1)
        ok(env, "unsubscribe", "--email", BO, "--now", at(minutes=12))
        ok(env, "unsubscribe", "--email", CY, "--from-member", "ana", "--now", at(minutes=12))
        ok(env, "forget", "--email", DEE, "--now", at(minutes=13))
        gus = {i["email"]: i["id"] for i in ana["invitations"]}[GUS]
        ok(env, "withdraw", gus, "--now", at(minutes=14))
        engine = create_engine(live)
        with engine.connect() as connection:
            hal = connection.execute(
                select(messages.c.id).where(
                    messages.c.recipient_digest == digest(HAL), messages.c.kind == "invitation"
                )
            ).scalar_one()
        engine.dispose()
        report = stores.folder / "complaint.eml"
        report.write_bytes(arf("abuse", HAL, HAL, f"{hal}@agora.example", MAIL_FROM))
        ingested = ok(env, "bounces", "ingest", str(report), "--json")
        assert ingested["kind"] == "complaint"
        ok(env, "revoke", ben["consent_id"], "--now", at(minutes=16))
        export = stores.folder / "ledger.jsonl"
        ok(env, "audit", "export", "--output", str(export))
        sent_before = len(handler.received)
    assert sent_before == 6
    return {"env": env, "backup": kept, "export": export, "stores": stores}


def restored(story: dict[str, Any], name: str) -> tuple[dict[str, str], Engine]:
    """A new database holding the backup, and the environment to reach it."""
    url = story["stores"].restore(story["backup"], name)
    return {**story["env"], "COURTOIS_DATABASE_URL": url}, create_engine(url)


def test_every_stop_made_after_the_backup_holds_again_after_the_restore(
    story: dict[str, Any],
) -> None:
    # Restored alone, the database has forgotten every stop.
    env, engine = restored(story, "plain")
    assert invited(env, "ben", BO, at(minutes=20))["allowed"] is True
    engine.dispose()

    env, engine = restored(story, "restored")
    export = str(story["export"])
    try:
        first = ok(
            env, "audit", "reapply-stops", "--file", export, "--now", at(minutes=20), "--json"
        )
        applied = {k: v["applied"] for k, v in first["stops"].items() if v != ZERO}
        assert applied == {
            "opted_out": 1,
            "blocked": 1,
            "forgotten": 1,
            "hard_bounce": 1,
            "complaint": 1,
            "withdrawn": 1,
            "revoked": 1,
            "left": 6,
        }
        assert all(v["skipped"] == 0 for v in first["stops"].values())
        assert first["shared"] < first["entries"]
        held = snapshot(engine)

        # A second run changes nothing, and says everything was already there.
        again = ok(
            env, "audit", "reapply-stops", "--file", export, "--now", at(minutes=21), "--json"
        )
        assert {k: v["applied"] for k, v in again["stops"].items()} == dict.fromkeys(
            first["stops"], 0
        )
        assert {k: v["skipped"] for k, v in again["stops"].items() if v != ZERO} == applied
        assert snapshot(engine) == held
        assert ok(env, "audit", "verify", "--json")["ok"] is True

        # What left after the backup is never sent again: unknown, for an admin to resolve.
        with engine.connect() as connection:
            states = dict(
                connection.execute(select(messages.c.recipient_digest, messages.c.state)).all()
            )
            charged = connection.execute(
                select(complaints.c.member_id, complaints.c.recipient_digest)
            ).all()
            unsubscribed = connection.execute(
                select(recipients.c.digest).where(recipients.c.unsubscribed_at.is_not(None))
            ).scalars()
            assert sorted(unsubscribed) == sorted([digest(BO), digest(DEE)])
        assert {a: states[digest(a)] for a in (BO, CY, DEE, GUS, HAL, IVY)} == dict.fromkeys(
            (BO, CY, DEE, GUS, HAL, IVY), "unknown"
        )
        assert states[digest(FAY)] == "cancelled"
        assert charged == [("ben", digest(HAL))]
        handler = FaultyHandler()
        with smtp_server(handler) as url:
            worker = {**env, "COURTOIS_SMTP_URL": url}
            passed = ok(worker, "worker", "--once", "--now", at(days=20), "--json")
        assert passed["sent"] == 0
        assert handler.received == []

        # The stops hold as they did before the restore.
        assert invited(env, "ben", BO, at(days=20, minutes=1))["allowed"] is False
        assert invited(env, "ana", CY, at(days=20, minutes=1))["allowed"] is False
        assert invited(env, "ben", CY, at(days=20, minutes=1))["allowed"] is True
        assert invited(env, "ben", DEE, at(days=20, minutes=1))["allowed"] is False
        assert invited(env, "ben", FAY, at(days=20, minutes=1))["allowed"] is False
        assert invited(env, "ana", HAL, at(days=20, minutes=1))["allowed"] is False
        assert invited(env, "ana", JO, at(days=20, minutes=1))["allowed"] is True
    finally:
        engine.dispose()


def test_a_file_that_does_not_hold_or_is_not_this_databases_is_refused_whole(
    story: dict[str, Any], tmp_path: Path
) -> None:
    env, engine = restored(story, "restored")
    before = snapshot(engine)
    lines = Path(story["export"]).read_text(encoding="utf-8").splitlines()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    edited = tmp_path / "edited.jsonl"
    entry = json.loads(lines[-1])
    entry["payload"]["reason"] = "edited"
    edited.write_text("\n".join([*lines[:-1], json.dumps(entry)]) + "\n", encoding="utf-8")
    other = environment(story["stores"].new("other"))
    ok(other, "migrate")
    ok(other, "member", "add", "zed", "--email", "zed@members.example", "--name", "Zed")
    ok(other, "unsubscribe", "--email", BO)
    foreign = tmp_path / "foreign.jsonl"
    ok(other, "audit", "export", "--output", str(foreign))
    try:
        for path, words in (
            (empty, ("no ledger entry", "nothing was applied")),
            (edited, (f"entry {len(lines)}", "nothing was applied")),
            (foreign, ("not this database's ledger", "nothing was applied")),
            (tmp_path / "missing.jsonl", ("cannot read",)),
        ):
            done = courtois(env, "audit", "reapply-stops", "--file", str(path), "--json")
            assert_refused(done, *words)
        assert snapshot(engine) == before
    finally:
        engine.dispose()
