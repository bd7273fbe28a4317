"""`courtois simulate`, run as operators run it, on a history the use cases wrote.

`--json` prints one object; the table names every rule; a configuration that loosens a
hard cap, a bad date or a missing file is refused with one line on stderr and exit 1 or 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from simulate_story import SENT, write_story
from support import RULE_CODES

from conftest import SECRET
from courtois.config import Settings
from courtois.services.context import Context
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

EXECUTABLE = shutil.which("courtois", path=str(Path(sys.executable).parent)) or str(
    Path(sys.executable).parent / "courtois"
)


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """A SQLite file holding the story, the environment to reach it, and a folder."""
    folder = tmp_path_factory.mktemp("simulate")
    url = f"sqlite:///{folder / 'courtois.db'}"
    engine = make_engine(url)
    migrate(engine)
    write_story(Context(engine, Settings(secret_key=SECRET, platform_name="Agora")))
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COURTOIS_")}
    env.update(COURTOIS_SECRET_KEY=SECRET, COURTOIS_DATABASE_URL=url)
    return env, folder


def courtois(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXECUTABLE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def config(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_json_is_one_object_comparing_history_and_both_replays(
    story: tuple[dict[str, str], Path],
) -> None:
    env, folder = story
    other = config(folder, "other.toml", "[policy]\nsender_daily_cap = 2\n")
    done = courtois(env, "simulate", "--config", other, "--json")
    assert done.returncode == 0, done.stderr
    (line,) = done.stdout.splitlines()
    report = json.loads(line)
    assert report["policy_changes"] == {"sender_daily_cap": {"current": 100, "new": 2}}
    assert [r["rule"] for r in report["rules"] if r["outcome"] == "allow"] == RULE_CODES
    totals = {r["measure"]: r for r in report["totals"]}
    assert totals["emails"]["history"] == totals["emails"]["current"] == SENT["emails"]
    assert totals["emails"]["new"] < SENT["emails"]
    assert report["replay_gap"] == 0.0
    assert report["seconds"] >= 0
    assert report["events"] > 0


def test_the_table_shows_every_rule_and_how_far_to_trust_it(
    story: tuple[dict[str, str], Path],
) -> None:
    env, folder = story
    other = config(folder, "window.toml", "[policy]\nrecipient_short_window_days = 30\n")
    done = courtois(env, "simulate", "--config", other, "--since", "2026-03-01")
    assert done.returncode == 0, done.stderr
    for code in RULE_CODES:
        assert code in done.stdout
    assert "recipient_short_window_days 14 → 30" in done.stdout
    assert "matches history verdict for verdict" in done.stdout
    assert "counted from 2026-03-01T00:00:00+00:00" in done.stdout
    assert "@" not in done.stdout  # digests and ids only, never an address


def test_without_a_config_the_current_policy_is_replayed_against_history(
    story: tuple[dict[str, str], Path],
) -> None:
    """`courtois simulate` as the interface lists it, with nothing else: how faithfully the
    replay of the policy in force reproduces what was recorded."""
    env, _ = story
    done = courtois(env, "simulate", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["policy_changes"] == {}
    assert report["replay_gap"] == 0.0
    totals = {r["measure"]: r for r in report["totals"]}
    assert totals["emails"]["history"] == totals["emails"]["new"] == SENT["emails"]
    assert all(r["delta"] == 0 for r in report["rules"])
    table = courtois(env, "simulate")
    assert table.returncode == 0, table.stderr
    assert "policy changes: none (the new policy is the current one)" in table.stdout
    assert "matches history verdict for verdict" in table.stdout


@pytest.mark.parametrize(
    ("args", "words", "code"),
    [
        (["--config", "{folder}/loose.toml"], ["sender_daily_cap", "loosens the hard cap"], 1),
        (["--config", "{folder}/missing.toml"], ["does not exist"], 1),
        (["--config", "{folder}/other.toml", "--since", "last week"], ["--since"], 2),
        (["--config", "{folder}/other.toml", "--since", "0001-01-01"], ["outside the years"], 2),
        (["--config", "{folder}/other.toml", "--since", "9999-12-31"], ["outside the years"], 2),
        (["--config", "{folder}"], ["cannot be read"], 1),
    ],
)
def test_bad_input_is_refused_in_one_line(
    story: tuple[dict[str, str], Path], args: list[str], words: list[str], code: int
) -> None:
    env, folder = story
    config(folder, "loose.toml", "[policy]\nsender_daily_cap = 150\n")
    config(folder, "other.toml", "[policy]\nsender_daily_cap = 2\n")
    done = courtois(env, "simulate", *(a.format(folder=folder) for a in args))
    assert done.returncode == code
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("courtois: ")
    for word in words:
        assert word in line
