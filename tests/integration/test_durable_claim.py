"""On SQLite, the worker's claim is committed with an fsync (synchronous=FULL); other
writes keep WAL's cheaper NORMAL level. In WAL mode a NORMAL commit can be undone by a power
cut: were that the claim, a message already handed to the SMTP server would come back as
`scheduled` and leave a second time (invariant 8)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Connection, event
from support import T0, add_members, send_invites

from conftest import SECRET
from courtois.config import Settings
from courtois.delivery.transport import Delivery, MemoryTransport, Outgoing
from courtois.services.context import Context
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate

FULL, NORMAL = 2, 1


class Watching(MemoryTransport):
    """Notes the synchronous level of every commit made before each batch left."""

    def __init__(self, commits: list[int]) -> None:
        super().__init__()
        self.commits = commits
        self.before_send: list[list[int]] = []

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        self.before_send.append(list(self.commits))
        return super().send_batch(batch, until)


def test_the_claim_is_committed_with_an_fsync_and_other_writes_are_not(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'courtois.db'}")
    migrate(engine)
    ctx = Context(engine, Settings(secret_key=SECRET, platform_name="Agora"))
    commits: list[int] = []

    @event.listens_for(engine, "commit")
    def _level(connection: Connection) -> None:
        # Read inside the transaction being committed: the level its commit runs at.
        commits.append(int(connection.exec_driver_sql("PRAGMA synchronous").scalar_one()))

    add_members(ctx)
    send_invites(ctx, "ana", ["bo@example.org", "cy@example.org"], T0)
    assert commits
    assert set(commits) == {NORMAL}
    transport = Watching(commits)
    report = run_pass(ctx, T0 + timedelta(minutes=11), transport)
    assert report.sent == 2
    (before,) = transport.before_send
    # The last commit before the emails left is the claim, made durable.
    assert before[-1] == FULL
    # The outcomes recorded afterwards are ordinary writes again (a lost one leaves the
    # message `sending`, hence `unknown`, never sent twice).
    assert commits[-1] == NORMAL
    engine.dispose()
