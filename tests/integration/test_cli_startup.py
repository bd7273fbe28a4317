"""What `courtois` refuses when it starts: a configuration that cannot do the work is
refused in one line naming the key, before anything is read or written, so that no
worker claims a batch it can then only fail."""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select, text
from test_cli import (
    HEAD,
    NOW,
    assert_refused,
    at,
    courtois,
    environment,
    in_parallel,
    ok,
    postgres_database,
    table_counts,
)

from courtois.store.tables import messages

__all__ = ["postgres_database"]  # the fixture, shared with test_cli
NOT_MIGRATED = "the database is not migrated: run `courtois migrate`"
NEWER_SCHEMA = "the database is at a newer schema than this courtois"

POSTAL = "Agora, 1 Example Street, 99999 Exampleton"


@pytest.fixture
def queued(tmp_path: Path) -> Iterator[tuple[dict[str, str], Engine]]:
    """A database with one invitation email due, and a worker's environment to send it."""
    database = tmp_path / "c.db"
    env = environment(
        f"sqlite:///{database}",
        COURTOIS_SMTP_URL="smtp://127.0.0.1:9",
        COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL,
    )
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana")
    ok(env, "invite", "--member", "ana", "--email", "bo@example.com", "--now", NOW)
    engine = create_engine(f"sqlite:///{database}")
    yield env, engine
    engine.dispose()


def _statuses(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(messages.c.state)).scalars())


def test_a_mail_setting_the_worker_cannot_use_is_refused_before_any_claim(
    queued: tuple[dict[str, str], Engine], tmp_path: Path
) -> None:
    env, engine = queued
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n", encoding="utf-8")
    dkim = {"COURTOIS_DKIM_DOMAIN": "example.org", "COURTOIS_DKIM_SELECTOR": "s1"}
    worker = ["worker", "--once", "--now", at(minutes=20), "--json"]
    bad = [
        ({"COURTOIS_DKIM_DOMAIN": "example.org"}, "dkim_selector"),
        ({**dkim, "COURTOIS_DKIM_PRIVATE_KEY_FILE": str(tmp_path / "none.pem")}, "DKIM"),
        ({**dkim, "COURTOIS_DKIM_PRIVATE_KEY_FILE": str(junk)}, "DKIM"),
        # Two selectors and one key file: which selector the key is for cannot be known.
        (
            {
                **dkim,
                "COURTOIS_DKIM_SELECTOR": "s1,s2",
                "COURTOIS_DKIM_PRIVATE_KEY_FILE": str(junk),
            },
            "one key file per selector",
        ),
        ({"COURTOIS_TOKEN_KEYS": "abc"}, "COURTOIS_TOKEN_KEYS"),
        ({"COURTOIS_MAIL_FROM": "inv@agora example.org"}, "mail_from"),
    ]
    before, counts = _statuses(engine), table_counts(engine)
    runs = [({**env, **extra}, args) for extra, _ in bad for args in (worker, ["migrate"])]
    words = [word for _, word in bad for _ in (worker, ["migrate"])]
    for done, word in zip(in_parallel(runs), words, strict=True):
        assert_refused(done, word)
    # Nothing claimed, nothing failed: the email waits for a configuration that works.
    assert _statuses(engine) == before
    assert table_counts(engine) == counts


# Every command that reads or writes the database, as a first-time operator might run it.
EVERY_COMMAND: list[list[str]] = [
    ["member", "add", "ana", "--email", "secret.member@example.com", "--name", "Ana"],
    ["invite", "--member", "ana", "--email", "secret.guest@example.com", "--now", NOW],
    ["unsubscribe", "--email", "secret.guest@example.com"],
    ["forget", "--email", "secret.guest@example.com"],
    ["policy", "explain", "--member", "ana", "--email", "secret.guest@example.com"],
    ["audit", "verify"],
    ["audit", "export"],
    ["worker", "--once", "--now", NOW],
    ["worker", "--once", "--processes", "2", "--now", NOW],
]


def _refused_without_addresses(runs: list[tuple[dict[str, str], list[str]]], *words: str) -> None:
    for done in in_parallel(runs):
        assert_refused(done, *words)
        assert "@" not in done.stderr, done.stderr


def test_an_unmigrated_database_is_named_by_every_command(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'never.db'}")
    _refused_without_addresses([(env, args) for args in EVERY_COMMAND], NOT_MIGRATED)
    # migrate is the one command for it.
    assert "revision" in ok(env, "migrate")


def test_a_mistyped_sqlite_path_is_refused_without_making_a_file(tmp_path: Path) -> None:
    """A command other than `migrate` run against a path where there is no database leaves
    nothing there: no empty file, no folder, to be taken later for the real database."""
    typo = tmp_path / "x" / "typo.db"
    env = environment(f"sqlite:///{typo}")
    mail = tmp_path / "bounce.eml"
    mail.write_bytes(b"Subject: hello\r\n\r\nnothing\r\n")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    commands = [*EVERY_COMMAND, ["serve", "--port", port], ["bounces", "ingest", str(mail)]]
    # The same path as a SQLite URI filename.
    uri = environment(f"sqlite:///file:{typo}?uri=true")
    runs = [(env, args) for args in commands] + [(uri, ["worker", "--once", "--now", NOW])]
    _refused_without_addresses(runs, NOT_MIGRATED, str(typo))
    assert not typo.parent.exists()
    assert "revision" in ok(env, "migrate")
    assert typo.is_file()


def _as_newer_release(database: Path, oldest_reader: str) -> None:
    """What a later release's `courtois migrate` leaves: a revision this code does not
    know, and the oldest revision that release lets run against it."""
    with sqlite3.connect(database) as connection:
        connection.execute("update alembic_version set version_num = 'ffff99'")
        connection.execute("update schema_readers set oldest_reader = ?", (oldest_reader,))


def test_a_database_from_newer_code_is_refused_even_by_migrate(tmp_path: Path) -> None:
    database = tmp_path / "newer.db"
    env = environment(f"sqlite:///{database}")
    ok(env, "migrate")
    # The later release allows only its own code.
    _as_newer_release(database, "ffff99")
    runs = [(env, args) for args in [*EVERY_COMMAND, ["migrate"]]]
    _refused_without_addresses(runs, NEWER_SCHEMA)
    with sqlite3.connect(database) as connection:
        assert connection.execute("select count(*) from members").fetchone() == (0,)


def test_a_database_from_newer_code_that_allows_this_one_is_used(tmp_path: Path) -> None:
    """A rolling upgrade: a later release migrated the database and allows this one, whose
    processes keep working (`serve` gets as far as its port) until they are replaced;
    `migrate` alone still refuses it, never downgrading."""
    database = tmp_path / "newer.db"
    env = environment(f"sqlite:///{database}", COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL)
    ok(env, "migrate")
    _as_newer_release(database, str(HEAD))
    for args in EVERY_COMMAND[:2]:
        ok(env, *args)
    assert ok(env, "audit", "verify", "--json")["ok"] is True
    ok(env, "worker", "--once", "--now", at(minutes=20))
    with sqlite3.connect(database) as connection:
        assert connection.execute("select count(*) from invitations").fetchone() == (1,)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert_refused(courtois(env, "serve", "--port", port), f"127.0.0.1:{port}", "in use")
    assert_refused(courtois(env, "migrate"), NEWER_SCHEMA)
    with sqlite3.connect(database) as connection:
        assert connection.execute("select version_num from alembic_version").fetchone() == (
            "ffff99",
        )


def test_a_read_only_database_is_one_line_without_its_parameters(tmp_path: Path) -> None:
    database = tmp_path / "x.db"
    writable = environment(f"sqlite:///{database}")
    ok(writable, "migrate")
    ok(writable, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana")
    card = tmp_path / "c.vcf"
    card.write_text(
        "BEGIN:VCARD\nVERSION:3.0\nFN:Zed One\nEMAIL:secret.zed@example.org\nEND:VCARD\n",
        encoding="utf-8",
    )
    env = environment(f"sqlite:///file:{database}?mode=ro&uri=true")
    runs = [
        (env, ["import", str(card), "--member", "ana", "--now", NOW]),
        (env, ["member", "add", "bo", "--email", "secret.member@example.com", "--name", "Bo"]),
        (env, ["invite", "--member", "ana", "--email", "secret.guest@example.com", "--now", NOW]),
        (env, ["worker", "--once", "--now", NOW]),
        (env, ["worker", "--once", "--processes", "2", "--now", NOW]),
    ]
    _refused_without_addresses(runs, "read-only")


def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path) -> None:
    database = tmp_path / "junk.db"
    database.write_bytes(bytes(range(256)) * 64)
    env = environment(f"sqlite:///{database}")
    runs = [(env, args) for args in [*EVERY_COMMAND[:2], ["migrate"]]]
    _refused_without_addresses(runs, "not a SQLite database")


def test_postgresql_unmigrated_then_read_only(postgres_database: str) -> None:
    env = environment(postgres_database)
    _refused_without_addresses([(env, args) for args in EVERY_COMMAND[:3]], NOT_MIGRATED)
    ok(env, "migrate")
    engine = create_engine(postgres_database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            name = connection.execute(text("select current_database()")).scalar_one()
            connection.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
    finally:
        engine.dispose()
    done = courtois(env, *EVERY_COMMAND[0])
    assert_refused(done, "read-only")
    assert "secret" not in done.stderr


def test_configuration_mistakes_are_one_line_in_every_entry_point(tmp_path: Path) -> None:
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00bin")
    strict = tmp_path / "strict.toml"
    strict.write_text('policy = "strict"\n', encoding="utf-8")
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    runs = [
        ({**env, "COURTOIS_CONFIG": str(tmp_path)}, ["audit", "verify"]),
        ({**env, "COURTOIS_CONFIG": str(strict)}, ["migrate"]),
        (env, ["simulate", "--config", str(tmp_path)]),
        (env, ["simulate", "--config", str(binary)]),
        ({**env, "COURTOIS_DATABASE_URL": "not a url"}, ["serve", "--port", "1"]),
        ({**env, "COURTOIS_DATABASE_URL": "mysql://x@localhost/db"}, ["migrate"]),
        ({**env, "COURTOIS_DATABASE_URL": "sqlite:////proc/1/nope/x.db"}, ["migrate"]),
        ({**env, "COURTOIS_POLICY_PROFILES": "strict-eu"}, ["migrate"]),
    ]
    words = ["cannot be read", "[policy]", "cannot be read", "UTF-8"]
    words += ["database_url", "database_url", "database_url", "profiles"]
    for done, word in zip(in_parallel(runs), words, strict=True):
        assert_refused(done, word)
    assert not (tmp_path / "c.db").exists()


def test_a_refusal_never_shows_the_smtp_password_and_reads_as_a_sentence(
    queued: tuple[dict[str, str], Engine],
) -> None:
    env, _ = queued
    runs = [
        ({**env, "COURTOIS_SMTP_URL": "smtpx://relay:s3cr%40t@mail.example:25"}, ["worker"]),
        ({**env, "COURTOIS_SMTP_URL": "smtpz://relay:p@ss:w@rd@mail.example"}, ["worker"]),
        ({**env, "COURTOIS_POLICY_REMINDER_CAP": "x"}, ["audit", "verify"]),
        ({**env, "COURTOIS_POLICY_UNDO_WINDOW_MINUTES": "1.5"}, ["audit", "verify"]),
    ]
    first, second, cap, undo = (assert_refused(done) for done in in_parallel(runs))
    for line in (first, second):
        assert "relay:***@mail.example" in line
        for secret in ("s3cr", "ss:w", "rd@"):
            assert secret not in line
    assert cap.endswith("reminder_cap: must be a whole number, not 'x'.")
    assert undo.endswith("undo_window_minutes: must be a whole number, not '1.5'.")


def test_half_a_webhook_configuration_is_refused_by_serve_and_worker(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}", COURTOIS_WEBHOOK_SECRET="short")
    runs = [(env, ["serve", "--port", "1"]), (env, ["worker", "--once", "--now", NOW])]
    for done in in_parallel(runs):
        assert_refused(done, "COURTOIS_WEBHOOK_URL")


def test_a_usage_mistake_is_one_line_with_exit_2(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    runs: list[tuple[dict[str, str], list[str]]] = [
        (env, ["invite", "--member", "ana"]),
        (env, ["invite", "--member", "ana", "--email", "a@example.org", "--reminders", "2"]),
        (env, ["worker", "--once", "--processes", "0"]),
        (env, ["frobnicate"]),
        (env, ["bounces", "ingest", "--json"]),
        (env, ["invite", "--bogus"]),
    ]
    words = ["--email", "--reminders", "--processes", "frobnicate", "PATH", "--bogus"]
    for done, word in zip(in_parallel(runs), words, strict=True):
        assert_refused(done, word, "--help")
        assert done.returncode == 2
    # Help asked for is still the whole text, on stdout.
    assert "Usage" in ok(env, "invite", "--help")


def test_serve_on_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    ok(env, "migrate")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = courtois(env, "serve", "--port", port)
    assert_refused(done, f"127.0.0.1:{port}", "in use")


def test_a_dkim_key_path_that_cannot_be_read_is_one_line_in_every_command(
    queued: tuple[dict[str, str], Engine], tmp_path: Path
) -> None:
    """A folder, a dangling link or (for a user root is not) a file without read
    permission at the key's path: one line naming the key and why, never a traceback."""
    env, engine = queued
    dangling = tmp_path / "gone.pem"
    dangling.symlink_to(tmp_path / "never-there.pem")
    unusable = [(tmp_path, "Is a directory"), (dangling, "No such file")]
    if os.geteuid() != 0:
        locked = tmp_path / "locked.pem"
        locked.write_text("-----BEGIN PRIVATE KEY-----\n", encoding="utf-8")
        locked.chmod(0)
        unusable.append((locked, "Permission denied"))
    dkim = {"COURTOIS_DKIM_DOMAIN": "example.org", "COURTOIS_DKIM_SELECTOR": "s1"}
    commands = [
        ["serve", "--port", "1"],
        ["worker", "--once", "--now", at(minutes=20)],
        ["migrate"],
        ["audit", "verify"],
    ]
    runs = [
        ({**env, **dkim, "COURTOIS_DKIM_PRIVATE_KEY_FILE": str(path)}, args)
        for path, _ in unusable
        for args in commands
    ]
    reasons = [(str(path), reason) for path, reason in unusable for _ in commands]
    before, counts = _statuses(engine), table_counts(engine)
    for done, (path, reason) in zip(in_parallel(runs), reasons, strict=True):
        assert_refused(done, "DKIM private key file", path, reason)
    assert _statuses(engine) == before
    assert table_counts(engine) == counts


def test_bounces_listen_on_a_port_in_use_or_a_bad_host_is_one_line(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    ok(env, "migrate")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        in_use, bad_host = in_parallel(
            [
                (env, ["bounces", "listen", "--port", port]),
                (env, ["bounces", "listen", "--host", "999.1.1.1", "--port", "2526"]),
            ]
        )
    assert_refused(in_use, f"127.0.0.1:{port}", "in use")
    assert_refused(bad_host, "cannot listen on 999.1.1.1:2526")


def test_a_folder_or_unreadable_file_at_the_sqlite_path_is_not_told_to_try_again(
    tmp_path: Path,
) -> None:
    """Nothing but a change of configuration helps: one line saying what is there, with
    an exit that does not mean "try again later" (75)."""
    folder = tmp_path / "c.db"
    folder.mkdir()
    paths = [(folder, "is a folder")]
    if os.geteuid() != 0:
        locked = tmp_path / "locked.db"
        locked.write_bytes(b"")
        locked.chmod(0)
        paths.append((locked, "cannot be read"))
    commands = [["migrate"], ["audit", "verify"], ["worker", "--once", "--now", NOW]]
    runs = [(environment(f"sqlite:///{path}"), args) for path, _ in paths for args in commands]
    words = [(str(path), word) for path, word in paths for _ in commands]
    for done, (path, word) in zip(in_parallel(runs), words, strict=True):
        assert_refused(done, "database_url", path, word)
        assert done.returncode == 1


def test_a_worker_interval_that_never_ends_is_refused(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    runs = [(env, ["worker", "--interval", value]) for value in ("inf", "nan")]
    endless, spinning = in_parallel(runs)
    assert_refused(endless, "--interval", "finite")
    assert_refused(spinning, "--interval")
    for done in (endless, spinning):
        assert done.returncode == 2


def test_import_of_a_folder_says_it_is_a_folder(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    done = courtois(env, "import", str(tmp_path), "--member", "ana", "--now", NOW)
    assert_refused(done, str(tmp_path), "is a folder")
    assert done.returncode == 2


def test_a_demo_folder_that_cannot_be_one_is_one_line(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    afile = tmp_path / "afile"
    afile.write_text("not a folder\n", encoding="utf-8")
    folders = [(afile, "is a file"), (afile / "sub", "is a file"), (Path("/proc/xyz"), "")]
    runs = [(env, ["demo", "--port", "0", "--data-dir", str(path)]) for path, _ in folders]
    for done, (path, word) in zip(in_parallel(runs), folders, strict=True):
        assert_refused(done, "demo's folder", str(path), word)
    assert afile.read_text(encoding="utf-8") == "not a folder\n"
