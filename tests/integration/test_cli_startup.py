"""What `courtois` refuses when it starts: a configuration that cannot do the work is
refused in one line naming the key, before anything is read or written, so that no
worker claims a batch it can then only fail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, select
from test_cli import NOW, assert_refused, at, environment, in_parallel, ok, table_counts

from courtois.store.tables import messages

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
