"""Migration 0015 deletes the contacts that stops made before it left in address books
(both engines).

Suppressions (a hard bounce, a complaint) used to leave the suppressed address in every
member's contacts, where an opt-out drops it. A database at 0014 is given the rows that
code left, written by SQL, then migrated: what remains is what each stop leaves today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, select
from support import T0

from conftest import _postgres_engine
from courtois.store.engine import WRITE_OPTION, make_engine
from courtois.store.migrate import alembic_config, current_revision, newest_revision
from courtois.store.tables import contacts, members, recipient_blocks, recipients

MEMBERS = ("ana", "bruno")
# Each recipient's state, as the earlier release stored it: the digest names the case.
STATES = {
    "bounced": {"suppressed_reason": "hard-bounce", "suppressed_at": T0},
    "complained": {"suppressed_reason": "complaint", "suppressed_at": T0},
    "opted-out": {"unsubscribed_at": T0},
    "forgotten": {"unsubscribed_at": T0, "forgotten_at": T0},
    "bounced-and-opted-out": {
        "unsubscribed_at": T0,
        "suppressed_reason": "hard-bounce",
        "suppressed_at": T0,
    },
    "stopped-ana": {},  # stopped Ana only: a row in recipient_blocks
    "available": {},
}
NEVER_KNOWN = "never-known"  # a contact whose recipient has no row at all


@pytest.fixture(params=["sqlite", "postgresql"])
def at_0014(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A fresh database migrated up to 0014 only."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        run(engine, command.upgrade, "0014")
        yield engine
        engine.dispose()
    else:
        for engine in _postgres_engine(request.getfixturevalue("postgres_admin")):
            run(engine, command.upgrade, "0014")
            yield engine


def run(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    """An Alembic command in one transaction, as `courtois migrate` runs."""
    config = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as connection:
        config.attributes["connection"] = connection
        step(config, revision)


def fill(engine: Engine) -> None:
    """Both members hold every case in their contacts, as the earlier release left them."""
    with engine.begin() as connection:
        connection.execute(
            members.insert(),
            [
                {
                    "id": m,
                    "email": f"{m}@example.com",
                    "email_digest": f"digest-of-{m}",
                    "name": m.title(),
                    "locale": "en",
                    "reply_to": False,
                    "created_at": T0,
                    "updated_at": T0,
                }
                for m in MEMBERS
            ],
        )
        connection.execute(
            recipients.insert(),
            [
                {
                    "digest": case,
                    "unsubscribed_at": None,
                    "suppressed_reason": None,
                    "suppressed_at": None,
                    "joined_at": None,
                    "forgotten_at": None,
                    **state,
                }
                for case, state in STATES.items()
            ],
        )
        connection.execute(
            recipient_blocks.insert(),
            {"recipient_digest": "stopped-ana", "member_id": "ana", "at": T0},
        )
        connection.execute(
            contacts.insert(),
            [
                {
                    "member_id": m,
                    "recipient_digest": case,
                    "address": f"{case}@example.org",
                    "display_name": case,
                    "search_key": case,
                    "source": "csv",
                    "selected": False,
                    "imported_at": T0,
                }
                for m in MEMBERS
                for case in (*STATES, NEVER_KNOWN)
            ],
        )


def held(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        found = connection.execute(select(contacts.c.member_id, contacts.c.recipient_digest))
        return sorted((str(m), str(d)) for m, d in found)


def test_the_upgrade_drops_what_each_stop_drops_today(at_0014: Engine) -> None:
    fill(at_0014)
    assert len(held(at_0014)) == 2 * (len(STATES) + 1)
    with at_0014.connect() as connection:
        stopped_before = connection.execute(select(recipients)).all()

    run(at_0014, command.upgrade, "head")
    assert current_revision(at_0014) == newest_revision()
    # Suppressed, opted out of everyone or forgotten: gone from every address book.
    # Stopped one member: gone from that member's only. The others stay.
    assert held(at_0014) == [
        ("ana", "available"),
        ("ana", NEVER_KNOWN),
        ("bruno", "available"),
        ("bruno", NEVER_KNOWN),
        ("bruno", "stopped-ana"),
    ]
    # Only contacts go: the stops themselves are kept as they were.
    with at_0014.connect() as connection:
        assert connection.execute(select(recipients)).all() == stopped_before
        assert len(connection.execute(select(recipient_blocks)).all()) == 1

    # Down and up again: nothing comes back, nothing more goes.
    run(at_0014, command.downgrade, "0014")
    assert len(held(at_0014)) == 5
    run(at_0014, command.upgrade, "head")
    assert len(held(at_0014)) == 5
