"""The real `courtois` executable, as operators and scripts run it.

Exit code 0 and JSON on stdout with `--json`; otherwise non-zero and one line on stderr
starting with "courtois:". The store is inspected directly, so the tests see what each
command really wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from support import MEMBER_RULE_CODES, RULE_CODES, T0

from conftest import POSTGRES_URL, SECRET
from courtois.config import Settings
from courtois.domain.addresses import digest_of
from courtois.store.migrate import alembic_config
from courtois.store.tables import (
    consents,
    invitations,
    ledger,
    members,
    messages,
    recipient_blocks,
    recipients,
)
from courtois.tokens import Scope, read_token

EXECUTABLE = shutil.which("courtois", path=str(Path(sys.executable).parent)) or str(
    Path(sys.executable).parent / "courtois"
)
NOW = T0.isoformat()
BO, CY, DEE = "bo@example.com", "cy@example.com", "dee@example.org"
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def at(**delta: float) -> str:
    return (T0 + timedelta(**delta)).isoformat()


def environment(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment without any COURTOIS_* setting, then the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    env.update(
        COURTOIS_SECRET_KEY=SECRET,
        COURTOIS_DATABASE_URL=database_url,
        COURTOIS_PLATFORM_NAME="Agora",
        **extra,
    )
    return env


def courtois(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the command and wait for it."""
    return subprocess.run(
        [EXECUTABLE, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok(env: Mapping[str, str], *args: str) -> Any:
    """Run a command that must succeed; with --json, its parsed output."""
    done = courtois(env, *args)
    assert done.returncode == 0, f"{args}: {done.stderr}"
    if "--json" in args:
        lines = done.stdout.splitlines()
        assert len(lines) == 1, done.stdout
        return json.loads(lines[0])
    return done.stdout


def in_parallel(
    runs: Sequence[tuple[Mapping[str, str], Sequence[str]]],
) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once, to keep the suite quick."""
    started = [
        (
            args,
            subprocess.Popen(
                [EXECUTABLE, *args],
                env=dict(env),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
        for env, args in runs
    ]
    done = []
    for args, process in started:
        stdout, stderr = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(list(args), process.returncode, stdout, stderr))
    return done


def assert_refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """Non-zero exit, nothing on stdout, and exactly one line on stderr naming `words`."""
    assert done.returncode != 0, (done.args, done.stdout)
    assert done.stdout == "", done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert done.stderr.endswith("\n")
    assert lines[0].startswith("courtois: "), lines[0]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def scalar(engine: Engine, query: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def table_counts(engine: Engine) -> dict[str, int]:
    return {
        t.name: int(scalar(engine, select(func.count()).select_from(t)))
        for t in (consents, invitations, messages, recipients, ledger)
    }


def digest(address: str) -> str:
    return digest_of(address, SECRET.encode())


@pytest.fixture(scope="module")
def cli_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Engine]]:
    """A migrated SQLite database with member Ana, and an engine to inspect it."""
    folder = tmp_path_factory.mktemp("cli")
    database = folder / "c.db"
    env = environment(f"sqlite:///{database}")
    assert f"revision {HEAD}" in ok(env, "migrate")
    member = ok(
        env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana", "--json"
    )
    assert member == {"id": "ana", "name": "Ana", "locale": "en"}
    engine = create_engine(f"sqlite:///{database}")
    yield env, engine
    engine.dispose()


def test_executable_is_the_project_script() -> None:
    assert Path(EXECUTABLE).is_file()
    assert Path(EXECUTABLE).parent == Path(sys.executable).parent


def test_a_whole_flow_from_the_command_line(
    cli_db: tuple[dict[str, str], Engine], tmp_path: Path
) -> None:
    env, engine = cli_db
    args = ["invite", "--member", "ana", "--email", BO, "--email", CY, "--email", DEE]
    answer = ok(env, *args, "--reminders", "1", "--now", NOW, "--json")
    consent_id = answer["consent_id"]
    items = {i["email"]: i for i in answer["invitations"]}
    assert sorted(items) == [BO, CY, DEE]
    for item in items.values():
        assert item["status"] == "scheduled"
        assert item["scheduled_at"] == at(minutes=10)
        assert item["decision"]["allowed"] is True
        assert [v["rule"] for v in item["decision"]["verdicts"]] == MEMBER_RULE_CODES
    with engine.connect() as connection:
        consent = connection.execute(select(consents).where(consents.c.id == consent_id)).one()
    assert consent.reminders == 1
    assert "3 people" in consent.text_shown
    assert "one reminder" in consent.text_shown
    written = table_counts(engine)

    # policy explain: every verdict, as an admin sees it, and nothing written.
    explained = ok(
        env, "policy", "explain", "--member", "ana", "--email", BO, "--now", at(minutes=1), "--json"
    )
    assert explained["outcome"] == "deny"
    assert explained["allowed"] is False
    verdicts = {v["rule"]: v for v in explained["verdicts"]}
    assert list(verdicts) == RULE_CODES
    assert verdicts["not-already-invited"]["outcome"] == "deny"
    assert verdicts["not-already-invited"]["reason"] == "this member already invited this recipient"
    assert table_counts(engine) == written

    withdrawn = ok(env, "withdraw", items[BO]["id"], "--now", at(minutes=2), "--json")
    assert withdrawn == {"id": items[BO]["id"], "status": "withdrawn"}

    stopped = ok(env, "unsubscribe", "--email", "CY@Example.com", "--now", at(minutes=3), "--json")
    assert stopped["blocked"] == 1
    assert scalar(
        engine, select(recipients.c.unsubscribed_at).where(recipients.c.digest == digest(CY))
    )

    # Dee's invitation is due; with no SMTP wired it waits, and nothing is marked sent.
    report = ok(env, "worker", "--once", "--now", at(minutes=11), "--json")
    assert report["waiting"] == 1
    assert (report["sent"], report["unknown"], report["expired"]) == (0, 0, 0)
    assert scalar(engine, select(func.count()).where(messages.c.state == "sent")) == 0

    revoked = ok(env, "revoke", consent_id, "--now", at(minutes=12), "--json")
    assert revoked == {
        "id": consent_id,
        "withdrawn": 1,
        "reminders_cancelled": 0,
        "already_leaving": 0,
    }

    joined = ok(env, "joined", "--email", DEE, "--now", at(minutes=13), "--json")
    assert joined == {"accepted": 0, "blocked": 0}
    assert scalar(engine, select(recipients.c.joined_at).where(recipients.c.digest == digest(DEE)))

    forgotten = ok(env, "forget", "--email", BO, "--now", at(minutes=14), "--json")
    assert forgotten == {"blocked": 0, "declined": 0, "contacts": 0}
    with engine.connect() as connection:
        bo = connection.execute(select(recipients).where(recipients.c.digest == digest(BO))).one()
        states = connection.execute(
            select(invitations.c.state, invitations.c.address).where(
                invitations.c.consent_id == consent_id
            )
        ).all()
    assert bo.forgotten_at is not None
    assert bo.unsubscribed_at is not None
    assert sorted(states) == [("blocked", None), ("withdrawn", None), ("withdrawn", None)]

    verified = ok(env, "audit", "verify", "--json")
    entries = scalar(engine, select(func.count()).select_from(ledger))
    last_hash = scalar(engine, select(ledger.c.hash).where(ledger.c.seq == entries))
    assert verified == {
        "ok": True,
        "entries": entries,
        "first_broken_seq": None,
        "problem": None,
        "last_hash": last_hash,
    }

    exported = ok(env, "audit", "export")
    lines = exported.splitlines()
    assert len(lines) == entries
    parsed = [json.loads(line) for line in lines]
    assert [e["seq"] for e in parsed] == list(range(1, entries + 1))
    assert {"seq", "at", "event", "payload", "prev_hash", "hash"} == set(parsed[0])
    assert "@" not in exported

    # A third party holding only the file, and no configuration, checks it.
    handed = tmp_path / "ledger.jsonl"
    handed.write_text(exported, encoding="utf-8")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    assert ok(bare, "audit", "verify", "--file", str(handed), "--json") == verified
    handed.write_text("\n".join(lines[:3] + lines[4:]) + "\n", encoding="utf-8")
    cut = courtois(bare, "audit", "verify", "--file", str(handed))
    assert (cut.returncode, cut.stderr) == (
        1,
        "courtois: ledger broken at entry 5: expected entry 4 here\n",
    )


def test_reports_for_people_name_each_recipient_and_read_as_lines(
    cli_db: tuple[dict[str, str], Engine],
) -> None:
    """Without --json: each decision table is headed by the address it is about, and the
    reports are `name: value` lines, not a Python dict with quotes, True and None."""
    env, engine = cli_db
    one, two = "eve@example.com", "fay@example.com"
    shown = ok(env, "invite", "--member", "ana", "--email", one, "--email", two, "--now", NOW)
    consent_id = shown.splitlines()[0].removeprefix("consent ")
    with engine.connect() as connection:
        made = dict(
            connection.execute(
                select(invitations.c.address, invitations.c.id).where(
                    invitations.c.consent_id == consent_id
                )
            ).all()
        )
    assert f"\n{one} ({made[one]}): scheduled\n" in shown
    assert f"\n{two} ({made[two]}): scheduled\n" in shown
    reports = [
        ok(env, "worker", "--once", "--now", at(minutes=11)),
        ok(env, "unsubscribe", "--email", two, "--now", at(minutes=12)),
        ok(env, "audit", "verify"),
    ]
    for report in reports:
        for python_only in ("{", "'", "True", "None"):
            assert python_only not in report, report
    assert "  sent: 0\n" in reports[0]
    assert "  failed: 0\n" in reports[0]
    assert reports[1].startswith("unsubscribed\n  blocked: 1\n")
    last_hash = scalar(engine, select(ledger.c.hash).order_by(ledger.c.seq.desc()).limit(1))
    assert reports[2].startswith("ledger intact\n  ok: yes\n")
    assert f"\n  last hash: {last_hash}\n" in reports[2]


def test_refusals_exit_non_zero_with_one_line(
    cli_db: tuple[dict[str, str], Engine], tmp_path: Path
) -> None:
    env, engine = cli_db
    before = table_counts(engine)
    loose = tmp_path / "courtois.toml"
    loose.write_text('platform_name = "Agora"\n\n[policy]\nreminder_cap = 2\n', encoding="utf-8")
    fresh = tmp_path / "never" / "c.db"
    fresh_env = environment(f"sqlite:///{fresh}")
    no_secret = {k: v for k, v in fresh_env.items() if k != "COURTOIS_SECRET_KEY"}
    invite = ["invite", "--member", "ana", "--now", NOW]
    runs: list[tuple[Mapping[str, str], Sequence[str]]] = [
        (env, [*invite, "--email", BO, "--email", "not-an-email"]),
        (env, ["withdraw", str(uuid.uuid4()), "--json"]),
        (env, [*invite, "--email", BO, "--now", "yesterday"]),
        ({**fresh_env, "COURTOIS_CONFIG": str(loose)}, ["migrate"]),
        ({**fresh_env, "COURTOIS_POLICY_UNDO_WINDOW_MINUTES": "1"}, ["migrate"]),
        (no_secret, ["migrate"]),
        # Instants a pass cannot reach back or ahead from without leaving the calendar.
        (env, [*invite, "--email", BO, "--now", "9999-12-01T00:00:00"]),
        (env, ["worker", "--once", "--now", "0001-01-01T00:00:00+01:00"]),
    ]
    bad_email, unknown_invitation, bad_now, loose_file, loose_env, missing, *far = in_parallel(runs)

    # Named by position, never by the address: stderr goes to logs.
    assert "not-an-email" not in assert_refused(bad_email, "--email #2")
    assert_refused(unknown_invitation, "No invitation")
    assert_refused(bad_now, "--now")
    assert_refused(loose_file, "reminder_cap")
    assert_refused(loose_env, "undo_window_minutes")
    assert_refused(missing, "COURTOIS_SECRET_KEY")
    for done in far:
        assert_refused(done, "outside the years")
    # Nothing was written anywhere: not one row, and no database where startup was refused.
    assert table_counts(engine) == before
    assert not fresh.exists()


def test_unsubscribing_from_a_member_nobody_is_refused_with_nothing_written(
    cli_db: tuple[dict[str, str], Engine],
) -> None:
    env, engine = cli_db
    before = (
        table_counts(engine),
        scalar(engine, select(func.count()).select_from(recipient_blocks)),
    )
    done = courtois(env, "unsubscribe", "--email", BO, "--from-member", "no-such-member", "--json")
    assert_refused(done, "No member 'no-such-member'")
    after = table_counts(engine), scalar(engine, select(func.count()).select_from(recipient_blocks))
    assert after == before


def test_two_spellings_of_one_address_are_one_recipient(
    cli_db: tuple[dict[str, str], Engine],
) -> None:
    env, _ = cli_db
    args = ["invite", "--member", "ana", "--now", NOW, "--json"]
    answer = ok(env, *args, "--email", "Gus@example.com", "--email", "gus@example.com")
    assert len(answer["invitations"]) == 1


def test_an_address_with_a_line_feed_is_refused_in_one_line(
    cli_db: tuple[dict[str, str], Engine],
) -> None:
    env, engine = cli_db
    before = table_counts(engine)
    done = courtois(env, "invite", "--member", "ana", "--now", NOW, "--email", "x\ny@example.com")
    assert table_counts(engine) == before
    assert "example.com" not in assert_refused(done, "--email #1")


def test_a_role_mailbox_is_refused_by_position_not_by_address(
    cli_db: tuple[dict[str, str], Engine],
) -> None:
    env, engine = cli_db
    before = table_counts(engine)
    args = ["invite", "--member", "ana", "--now", NOW, "--email", "real.person@bigcorp.example"]
    done = courtois(env, *args, "--email", "noreply@bigcorp.example")
    assert "bigcorp" not in assert_refused(done, "--email #2", "no-reply")
    assert table_counts(engine) == before


@pytest.mark.parametrize("engine_name", ["sqlite", "postgresql"])
def test_a_name_that_disguises_the_email_is_refused_in_one_line(
    engine_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """`member add` refuses a name that makes a first invitation read as a reminder or a
    reply, or shows an address in From, with the reason, and writes nothing; characters
    that show nothing are dropped from the name it keeps."""
    url = (
        f"sqlite:///{tmp_path / 'c.db'}"
        if engine_name == "sqlite"
        else request.getfixturevalue("postgres_database")
    )
    env = environment(url)
    ok(env, "migrate")
    add = ["member", "add", "cy", "--email", "cy@example.com", "--name"]
    runs = [
        (env, [*add, "Reminder: Ana Lima"]),
        (env, [*add, "Rappel : Ana Lima"]),
        (env, [*add, "R\u0435: Ana Lima"]),
        (env, [*add, "Ana <ceo@bank.example>"]),
    ]
    reminder, rappel, reply, address = in_parallel(runs)
    assert_refused(reminder, "must not start like a reminder")
    assert_refused(rappel, "must not start like a reminder")
    assert_refused(reply, "must not start like a reply")
    assert_refused(address, "must not contain an email address")
    engine = create_engine(url)
    try:
        assert scalar(engine, select(func.count()).select_from(members)) == 0
        assert ok(env, *add, "Ana\u200f Lima\u200b", "--json")["name"] == "Ana Lima"
        assert scalar(engine, select(members.c.name)) == "Ana Lima"
    finally:
        engine.dispose()


@pytest.fixture
def postgres_database(postgres_admin: Engine) -> Iterator[str]:
    """A database of its own on the test server, dropped afterwards."""
    name = f"courtois_cli_{uuid.uuid4().hex[:12]}"
    with postgres_admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with postgres_admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_a_flow_on_postgresql(postgres_database: str) -> None:
    env = environment(postgres_database)
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana", "--locale", "fr")
    args = ["invite", "--member", "ana", "--email", BO, "--email", CY, "--reminders", "1"]
    answer = ok(env, *args, "--now", NOW, "--json")
    assert [i["status"] for i in answer["invitations"]] == ["scheduled", "scheduled"]
    report = ok(env, "worker", "--once", "--now", at(minutes=11), "--json")
    assert (report["waiting"], report["sent"]) == (2, 0)
    verified = ok(env, "audit", "verify", "--json")
    assert verified["ok"] is True

    engine = create_engine(postgres_database)
    try:
        assert verified["entries"] == scalar(engine, select(func.count()).select_from(ledger))
        with engine.connect() as connection:
            consent = connection.execute(select(consents)).one()
            rows = connection.execute(select(invitations.c.state, invitations.c.locale)).all()
        assert consent.id == answer["consent_id"]
        assert "personnes" in consent.text_shown  # the member's language, French
        assert sorted(rows) == [("scheduled", "fr"), ("scheduled", "fr")]
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("postgres_database"))


def test_strict_eu_prints_the_link_and_the_text_to_send_and_refuses_a_reminder(
    any_database: str,
) -> None:
    """Under strict-eu the member sends each invitation: the plain output gives them what
    `--json` gives (the personal link and the text), printed as is; a reminder, which could
    never be sent, is refused in one line with nothing written."""
    env = environment(
        any_database, COURTOIS_POLICY_PROFILE="strict-eu", COURTOIS_BASE_URL="https://agora.test"
    )
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana")
    invite = ["invite", "--member", "ana", "--now", NOW]
    engine = create_engine(any_database)
    try:
        note = "[bold]Come[/bold] :smile: https://example.org/a-very-long-path/" + "x" * 80
        shown = ok(env, *invite, "--email", "k1@example.net", "--note", note)
        (token,) = re.findall(r"^personal link: https://agora\.test/join/(\S+)$", shown, re.M)
        # The subject of the email the member sends: the one previewed, in its language.
        assert "\nsubject: Ana invites you to join Agora\ntext to send:\n" in shown
        text = shown.split("text to send:\n", 1)[1]
        assert text.startswith("Hello,\n")
        assert f"https://agora.test/join/{token}\n" in text
        # No markup or emoji made of what the member wrote; the link is never cut (the
        # note is wrapped at spaces, as in every email's text).
        assert "  [bold]Come[/bold] :smile:\n" in text
        assert "  https://example.org/a-very-long-path/" + "x" * 80 + "\n" in text
        assert "from their own mailbox" in " ".join(text.split())
        assert "k1@example.net" in shown.split("personal link:")[0].splitlines()[-1]
        with engine.connect() as connection:
            row = connection.execute(select(invitations.c.id, invitations.c.state)).one()
        secrets = Settings(secret_key=SECRET).token_secrets
        assert tuple(row) == (read_token(secrets, Scope.JOIN, token), "sent")

        before = table_counts(engine)
        refused = courtois(env, *invite, "--email", "k2@example.net", "--reminders", "1")
        assert_refused(refused, "strict-eu", "reminder")
        assert table_counts(engine) == before
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("policy", "words"),
    [
        ({"COURTOIS_POLICY_PROFILE": "strict-eu"}, ("strict-eu", "reminder")),
        ({"COURTOIS_POLICY_REMINDER_CAP": "0"}, ("No reminder", "reminder_cap")),
    ],
)
def test_policy_explain_refuses_a_reminder_that_invite_refuses(
    tmp_path: Path, policy: dict[str, str], words: tuple[str, ...]
) -> None:
    """A reminder that cannot exist (strict-eu, or a policy allowing none) is not explained
    as if it could: `policy explain --reminders 1` refuses it in one line, with or without
    `--json`, as `invite --reminders 1` does; without a reminder it explains as ever."""
    env = environment(f"sqlite:///{tmp_path / 'c.db'}", **policy)
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana")
    asked = ["--member", "ana", "--email", "k1@example.net", "--now", NOW]
    refused = in_parallel(
        [
            (env, ["policy", "explain", *asked, "--reminders", "1"]),
            (env, ["policy", "explain", *asked, "--reminders", "1", "--json"]),
            (env, ["invite", *asked, "--reminders", "1"]),
        ]
    )
    lines = [assert_refused(done, *words) for done in refused]
    assert lines[0] == lines[1] == lines[2]
    explained = ok(env, "policy", "explain", *asked, "--json")
    assert {v["rule"] for v in explained["verdicts"]} == set(RULE_CODES)


@pytest.mark.parametrize("processes", ["1", "2"])
def test_serve_warns_that_several_processes_are_slower_on_sqlite(
    tmp_path: Path, processes: str
) -> None:
    """Starts the real server and reads its first lines: with more than one process on
    SQLite it says so (and serves anyway); with one it says nothing of the kind."""
    env = environment(f"sqlite:///{tmp_path / 'serve.db'}")
    ok(env, "migrate")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [EXECUTABLE, "serve", "--port", str(port), "--processes", processes],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        lines: list[str] = []
        # uvicorn logs "Started ..." once it serves; the warning comes before it.
        while not any("Started" in line for line in lines):
            line = server.stderr.readline()
            assert line, f"the server stopped: {lines}"
            lines.append(line)
        warned = [line for line in lines if "one process serves more requests than 2 do" in line]
        assert len(warned) == (1 if processes == "2" else 0), lines
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()
