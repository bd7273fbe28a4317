"""`courtois check-words` as an operator runs it before switching a release or a
configuration: the current words hold nothing, other words are counted, and the command
changes nothing."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, update
from test_cli import BO, NOW, courtois, environment, ok, table_counts

from courtois.store.tables import consents

POSTAL = "Agora, 1 Example Street, 99999 Exampleton"


def test_check_words_counts_what_other_words_would_hold_and_changes_nothing(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    env = environment(url, COURTOIS_PLATFORM_POSTAL_ADDRESS=POSTAL)
    ok(env, "migrate")
    ok(env, "member", "add", "ana", "--email", "ana@members.example", "--name", "Ana Lima")
    ok(env, "invite", "--member", "ana", "--email", BO, "--now", NOW, "--json")

    same = ok(env, "check-words", "--json")
    assert same == {
        "waiting": 1,
        "held": 0,
        "groups": [{"kind": "invitation", "locale": "en", "waiting": 1, "held": 0}],
        "members": [],
    }

    moved = {**env, "COURTOIS_PLATFORM_POSTAL_ADDRESS": "Agora, 2 Other Street, Elsewhere"}
    # The consent kept the words previewed: they leave as they are, whatever the address.
    assert ok(moved, "check-words", "--json")["held"] == 0
    engine = create_engine(url)
    with engine.begin() as connection:  # as a consent given before schema 0017
        connection.execute(update(consents).values(words=None))
    before = table_counts(engine)
    other = ok(moved, "check-words", "--json")
    assert (other["waiting"], other["held"], other["members"]) == (1, 1, ["ana"])
    done = courtois(moved, "check-words")
    assert done.returncode == 0, done.stderr
    assert "1 of the 1 emails waiting to leave would be held" in done.stdout
    assert BO not in done.stdout + done.stderr
    assert table_counts(engine) == before
    engine.dispose()
