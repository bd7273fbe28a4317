"""Replaying, under the policy that made it, a history the real services wrote gives back
every recorded verdict, decision and send.

Hypothesis drives the use cases on a real SQLite file with random sequences of invitations
(with and without reminders), worker passes, withdrawals, revocations, opt-outs, joins,
registrations, forget-me requests, acceptances, declines, complaints and hard bounces;
then `simulate` reads the ledger back and the current-policy replay, with only the
recorded worker passes, must match history count for count. What the replay cannot carry
("remind me later", refused SMTP transactions) is left out of the scenarios, and the
tests of `courtois.simulation.replay` say why.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from conftest import SECRET, T0
from courtois.config import Settings
from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.delivery.transport import MemoryTransport
from courtois.domain.errors import DomainError
from courtois.domain.invitations import InvitationState
from courtois.policy.config import PolicyConfig
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.lifecycle import revoke_consent, withdraw
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipient_actions import Link, accept, decline
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.simulate import simulate
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import invitations

MEMBERS = ("ana", "bo", "cy")
ADDRESSES = (*(f"r{i}@example.org" for i in range(5)), "bo@members.example")
DAY = 60 * 24
# Minutes between steps: short ones so invitations meet in the undo window and in digests,
# long ones across the 14-day and 90-day windows, reminders and expiry.
PAUSES = (1, 9, 11, 30, 60, DAY, 3 * DAY, 13 * DAY, 15 * DAY, 40 * DAY)

# Caps small enough for a few members to reach them, and rates that a few answers and one
# complaint move: the feedback of sends on the senders' facts is exercised, not skirted.
POLICY = PolicyConfig(
    sender_daily_cap=3, sender_weekly_cap=6, sender_min_sample=3, complaint_min_denominator=20
)
_FOLDER = Path(tempfile.mkdtemp(prefix="courtois-simulate-"))
_TEMPLATE = _FOLDER / "template.db"

address = st.integers(0, len(ADDRESSES) - 1)
pick = st.integers(0, 10_000)
INVITE = st.tuples(
    st.just("invite"),
    st.integers(0, len(MEMBERS) - 1),
    st.sets(address, min_size=1, max_size=4),
    st.integers(0, 1),
)
# Invitations a third of the time; each of the other steps about one time in twenty.
STEP = st.one_of(
    INVITE,
    INVITE,
    INVITE,
    INVITE,
    INVITE,
    st.tuples(st.just("withdraw"), pick),
    st.tuples(st.just("revoke"), pick),
    st.tuples(st.just("unsubscribe"), address, st.none() | st.integers(0, len(MEMBERS) - 1)),
    st.tuples(st.just("join"), address),
    st.tuples(st.just("register"), address),
    st.tuples(st.just("forget"), address),
    st.tuples(st.just("accept"), pick),
    st.tuples(st.just("decline"), pick),
    st.tuples(st.just("complaint"), address),
    st.tuples(st.just("bounce"), address),
)
# Each step comes after a pause, at the end of which the worker may have run.
SCENARIO = st.lists(
    st.tuples(st.sampled_from(PAUSES), st.booleans(), STEP), min_size=3, max_size=30
)


@contextmanager
def fresh_store() -> Iterator[Context]:
    """A migrated SQLite file (copied from one migrated once) under POLICY."""
    if not _TEMPLATE.exists():
        engine = make_engine(f"sqlite:///{_TEMPLATE}")
        migrate(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
    folder = Path(tempfile.mkdtemp(dir=_FOLDER))
    shutil.copy(_TEMPLATE, folder / "courtois.db")
    engine = make_engine(f"sqlite:///{folder / 'courtois.db'}")
    try:
        yield Context(engine, Settings(secret_key=SECRET, platform_name="Agora", policy=POLICY))
    finally:
        engine.dispose()
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Driver:
    """Plays a scenario's steps on the real use cases."""

    ctx: Context
    now: datetime = T0
    transport: MemoryTransport = field(default_factory=MemoryTransport)
    invitations: list[str] = field(default_factory=list)
    consents: list[str] = field(default_factory=list)
    registered: int = 0

    def play(self, step: tuple[Any, ...]) -> None:
        # A refusal (withdrawing twice, revoking twice) changes nothing.
        with suppress(DomainError):
            getattr(self, step[0])(*step[1:])

    def invite(self, member: int, picked: set[int], reminders: int) -> None:
        emails = [ADDRESSES[i] for i in sorted(picked)]
        name = MEMBERS[member]
        preview = preview_invitations(self.ctx, name, len(emails), "", None, reminders)
        request = InviteRequest(
            name,
            tuple(emails),
            "",
            None,
            reminders,
            preview.preview_hash,
            ConsentInput(preview.consent_text),
        )
        answer = invite(self.ctx, request, self.now)
        self.consents.append(answer["consent_id"])
        self.invitations += [item["id"] for item in answer["invitations"]]

    def worker_pass(self) -> None:
        run_pass(self.ctx, self.now, self.transport)

    def _invitation(self, index: int) -> str | None:
        return self.invitations[index % len(self.invitations)] if self.invitations else None

    def withdraw(self, index: int) -> None:
        if (chosen := self._invitation(index)) is not None:
            withdraw(self.ctx, chosen, self.now)

    def revoke(self, index: int) -> None:
        if self.consents:
            revoke_consent(self.ctx, self.consents[index % len(self.consents)], self.now)

    def _digest(self, index: int) -> str:
        return self.ctx.digest_email(ADDRESSES[index])

    def unsubscribe(self, index: int, member: int | None) -> None:
        source = None if member is None else MEMBERS[member]
        unsubscribe(self.ctx, self._digest(index), self.now, source)

    def join(self, index: int) -> None:
        mark_joined(self.ctx, self._digest(index), self.now)

    def register(self, index: int) -> None:
        self.registered += 1
        name = f"new{self.registered}"
        register_member(self.ctx, name, ADDRESSES[index], name.title(), "en", self.now)

    def forget(self, index: int) -> None:
        forget_recipient(self.ctx, self._digest(index), self.now)

    def _link(self, index: int) -> Link | None:
        chosen = self._invitation(index)
        if chosen is None:
            return None
        with self.ctx.engine.connect() as connection:
            row = connection.execute(select(invitations).where(invitations.c.id == chosen)).one()
        state = InvitationState(row.state)
        return Link(chosen, row.member_id, row.recipient_digest, state, row.locale)

    def accept(self, index: int) -> None:
        if (link := self._link(index)) is not None:
            accept(self.ctx, link, self.now)

    def decline(self, index: int) -> None:
        if (link := self._link(index)) is not None:
            decline(self.ctx, link, self.now)

    def _report(self, kind: str, index: int) -> None:
        recipient = BouncedRecipient(ADDRESSES[index], "5.1.1", kind == "hard_bounce")
        apply_bounce(self.ctx, BounceReport("test", kind, (recipient,)), self.now)

    def complaint(self, index: int) -> None:
        self._report("complaint", index)

    def bounce(self, index: int) -> None:
        self._report("hard_bounce", index)


Scenario = list[tuple[int, bool, tuple[Any, ...]]]


def replay_of(ctx: Context, scenario: Scenario) -> dict[str, Any]:
    """Play the scenario, then a pass a week for 30 weeks (what waits is decided or expires),
    and simulate."""
    driver = Driver(ctx)
    for name in MEMBERS:
        register_member(ctx, name, f"{name}@members.example", name.title(), "en", T0)
    for pause, worker_ran, step in scenario:
        driver.now += timedelta(minutes=pause)
        if worker_ran:
            driver.worker_pass()
        driver.play(step)
    for _ in range(30):
        driver.now += timedelta(days=7)
        driver.worker_pass()
    return simulate(ctx, PolicyConfig(sender_daily_cap=2), idle_after=None).report


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(scenario=SCENARIO)
def test_the_current_policy_replays_a_random_history_exactly(scenario: Scenario) -> None:
    with fresh_store() as ctx:
        report = replay_of(ctx, scenario)
    assert report["replay_gap"] in (0.0, None), report["rules"]
    for row in report["rules"] + report["totals"]:
        assert row["history"] == row["current"], row
    assert report["not_replayed"]["dropped_answers"]["current"] == 0
    assert report["not_replayed"]["dropped_complaints"]["current"] == 0
