"""`audit verify`, `audit export` and `simulate` on a ledger tampered with outside the
application: each names the broken entry in one line, and `audit export --output` leaves
no partial file behind."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from test_cli import EXECUTABLE, NOW, assert_refused, courtois, environment, in_parallel, ok

NO_ENTRY = "the file holds no ledger entry (an export that failed writes none)"
TAMPERINGS = [
    ("update ledger set at = 'garbage' where seq = 3", "its time is not a date"),
    ("update ledger set at = '2026-13-45 99:00:00' where seq = 3", "its time is not a date"),
    ("update ledger set payload = 'not json' where seq = 3", "its payload is not JSON"),
    ("update ledger set hash = X'00ff' where seq = 3", "its hash is not text"),
]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database whose ledger holds a few entries."""
    database = tmp_path_factory.mktemp("audit") / "c.db"
    env = environment(f"sqlite:///{database}")
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@example.com", "--name", "Ana")
    args = ["invite", "--member", "ana", "--now", NOW, "--email", "bo@example.com"]
    ok(env, *args, "--email", "cy@example.com", "--email", "dee@example.com")
    ok(env, "unsubscribe", "--email", "cy@example.com", "--now", NOW)
    return database


def tampered(history: Path, folder: Path, statement: str) -> dict[str, str]:
    """A copy of the history with one statement applied, and the environment to reach it."""
    copy = folder / "tampered.db"
    shutil.copy(history, copy)
    with sqlite3.connect(copy) as connection:
        assert connection.execute("select count(*) from ledger").fetchone()[0] >= 4
        connection.execute(statement)
    return environment(f"sqlite:///{copy}")


@pytest.mark.parametrize(("statement", "problem"), TAMPERINGS)
def test_a_tampered_entry_is_named_by_every_command(
    history: Path, tmp_path: Path, statement: str, problem: str
) -> None:
    env = tampered(history, tmp_path, statement)
    policy = tmp_path / "policy.toml"
    policy.write_text("[policy]\nsender_daily_cap = 5\n", encoding="utf-8")
    output = tmp_path / "export.jsonl"
    verify, export, to_file, simulate = in_parallel(
        [
            (env, ["audit", "verify", "--json"]),
            (env, ["audit", "export"]),
            (env, ["audit", "export", "--output", str(output)]),
            (env, ["simulate", "--config", str(policy), "--json"]),
        ]
    )
    assert verify.returncode == 1
    assert json.loads(verify.stdout) == {
        "ok": False,
        "entries": 2,
        "first_broken_seq": 3,
        "problem": problem,
        "last_hash": None,
    }
    assert verify.stderr == f"courtois: ledger broken at entry 3: {problem}\n"
    assert export.returncode == 1
    assert export.stderr == f"courtois: ledger broken at entry 3: {problem}\n"
    assert_refused(to_file, "entry 3", problem)
    assert not output.exists()
    assert not list(tmp_path.glob(".export.jsonl*"))
    if "payload" in statement or "at =" in statement:
        assert_refused(simulate, "entry 3", problem)


def test_export_to_a_file_is_whole_or_absent(history: Path, tmp_path: Path) -> None:
    env = environment(f"sqlite:///{history}")
    never = environment(f"sqlite:///{tmp_path / 'never.db'}")
    kept = tmp_path / "kept.jsonl"
    kept.write_text("an earlier export\n", encoding="utf-8")
    folder, missing = in_parallel(
        [
            (env, ["audit", "export", "--output", str(tmp_path)]),
            (env, ["audit", "export", "--output", str(tmp_path / "no" / "such" / "x.jsonl")]),
        ]
    )
    assert_refused(folder, "is a folder")
    assert_refused(missing, "cannot write")
    # A database that fails leaves neither an empty file nor a changed one.
    for target in (tmp_path / "new.jsonl", kept):
        assert_refused(courtois(never, "audit", "export", "-o", str(target)), "not migrated")
    assert not (tmp_path / "new.jsonl").exists()
    assert kept.read_text(encoding="utf-8") == "an earlier export\n"
    # Nor a database file for the mistyped path: only `migrate` makes one.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.jsonl"]
    # A whole export, and its count as JSON on stdout when asked for.
    written = ok(env, "audit", "export", "-o", str(tmp_path / "whole.jsonl"), "--json")
    lines = (tmp_path / "whole.jsonl").read_text(encoding="utf-8").splitlines()
    assert written == {"entries": len(lines), "output": str(tmp_path / "whole.jsonl")}
    assert ok(env, "audit", "verify", "--file", str(tmp_path / "whole.jsonl"), "--json")["ok"]


def test_a_file_with_no_entry_is_not_verified(tmp_path: Path) -> None:
    """The output of an `audit export > file` that failed is empty, and an empty file proves
    nothing: it is refused in one line, never reported intact. The database's own check of
    an empty ledger passes, since its head row records that no entry was ever written."""
    never = environment(f"sqlite:///{tmp_path / 'never.db'}")
    failed = tmp_path / "failed.jsonl"
    with failed.open("w", encoding="utf-8") as redirected:
        done = subprocess.run(
            [EXECUTABLE, "audit", "export"], env=never, stdout=redirected, check=False
        )
    assert done.returncode != 0
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n  \n", encoding="utf-8")
    bare = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    for empty in (failed, blank):
        refused = courtois(bare, "audit", "verify", "--file", str(empty), "--json")
        line = assert_refused_after_report(refused)
        assert line == "courtois: ledger not verified: " + NO_ENTRY
        assert json.loads(refused.stdout) == {
            "ok": False,
            "entries": 0,
            "first_broken_seq": None,
            "problem": NO_ENTRY,
            "last_hash": None,
        }
        told = courtois(bare, "audit", "verify", "--file", str(empty))
        assert told.returncode == 1
        assert "ledger NOT VERIFIED" in told.stdout

    fresh = environment(f"sqlite:///{tmp_path / 'fresh.db'}")
    ok(fresh, "migrate")
    assert ok(fresh, "audit", "verify", "--json") == {
        "ok": True,
        "entries": 0,
        "first_broken_seq": None,
        "problem": None,
        "last_hash": "0" * 64,
    }


def assert_refused_after_report(done: subprocess.CompletedProcess[str]) -> str:
    """Exit 1 with exactly one line on stderr (the report itself went to stdout)."""
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_export_replaces_only_a_regular_file(history: Path, tmp_path: Path) -> None:
    """A symbolic link is refused, not renamed over (its target would stay stale) nor
    followed; a FIFO and a device node are refused, never replaced by a file."""
    env = environment(f"sqlite:///{history}")
    target = tmp_path / "target.jsonl"
    target.write_text("an earlier export\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    specials = [(link, "symbolic link"), (fifo, "not a regular file")]
    if os.geteuid() == 0:
        device = tmp_path / "null.jsonl"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        specials.append((device, "not a regular file"))
    runs = [(env, ["audit", "export", "--output", str(path)]) for path, _ in specials]
    for done, (path, words) in zip(in_parallel(runs), specials, strict=True):
        assert_refused(done, str(path), words)
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "an earlier export\n"
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    if os.geteuid() == 0:
        assert stat.S_ISCHR((tmp_path / "null.jsonl").lstat().st_mode)
    assert not list(tmp_path.glob(".*.part"))


def test_export_to_a_full_disk_is_one_line(history: Path) -> None:
    env = environment(f"sqlite:///{history}")
    with open("/dev/full", "w", encoding="utf-8") as full:
        done = subprocess.run(
            [EXECUTABLE, "audit", "export"],
            env=env,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    assert done.returncode == 1
    assert done.stderr == "courtois: cannot write the output: No space left on device\n"
