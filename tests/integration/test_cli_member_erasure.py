"""`courtois member delete ID`: the member is erased before the command returns, on SQLite
and PostgreSQL; a repeat succeeds with zeros, an unknown id and a second registration of
an erased one are refused in one line, and the ledger still verifies."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from test_cli import BO, NOW, assert_refused, at, courtois, environment, ok, postgres_database

from courtois.store.tables import members

__all__ = ["postgres_database"]  # the fixture, shared with test_cli

ERASED = {
    "id": "zed",
    "erased_at": at(minutes=5),
    "invitations_withdrawn": 1,
    "emails_cancelled": 1,
    "consents_revoked": 1,
    "contacts_deleted": 0,
    "already_leaving": 0,
}


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'c.db'}"
    return str(request.getfixturevalue("postgres_database"))


def test_a_member_is_erased_from_the_command_line(database_url: str) -> None:
    env = environment(database_url)
    ok(env, "migrate")
    ok(env, "member", "add", "zed", "--email", "zed@members.example", "--name", "Zed Quill")
    ok(env, "invite", "--member", "zed", "--email", BO, "--reminders", "1", "--now", NOW)

    assert ok(env, "member", "delete", "zed", "--now", at(minutes=5), "--json") == ERASED
    # Nothing of theirs is waiting: the pass after the undo window finds nothing to send.
    assert ok(env, "worker", "--once", "--now", at(minutes=11), "--json")["waiting"] == 0
    again = ok(env, "member", "delete", "zed", "--now", at(minutes=20), "--json")
    assert again == {
        **ERASED,
        "invitations_withdrawn": 0,
        "emails_cancelled": 0,
        "consents_revoked": 0,
    }
    plain = ok(env, "member", "delete", "zed")
    assert plain.splitlines()[:3] == [
        "member zed erased",
        f"  erased at: {ERASED['erased_at']}",
        "  invitations withdrawn: 0",
    ]
    assert "{" not in plain
    assert ok(env, "audit", "verify", "--json")["ok"] is True

    assert_refused(courtois(env, "member", "delete", "nobody", "--json"), "No member 'nobody'")
    refused = courtois(env, "member", "add", "zed", "--email", "z@members.example", "--name", "Z")
    assert refused.returncode == 1
    assert_refused(refused, "erased", "new id")
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(select(members).where(members.c.id == "zed")).one()
    finally:
        engine.dispose()
    assert (row.email, row.name, row.email_digest) == ("", "", "")
    assert row.erased_at is not None
