"""Random sequences of everything people can do, with the invariants checked after each step.

A hypothesis state machine drives the service layer on a real SQLite file: imports, picks,
invites with and without reminder consent, withdrawals, revocations, opt-outs, joins, "not
interested", "remind me later", "forget me", time passing and worker passes, and a
recipient answering (from the email's links or otherwise) while their email is at the
relay and its outcome is still to be written. After every step it checks invariants 1, 3,
4, 5, 6, 9, 10, 11 and 12 against what the transport actually carried and what the
database holds, and that no answer was lost.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import Connection, Engine, func, select

from conftest import SECRET, T0
from courtois.config import Settings
from courtois.delivery.transport import Delivery, MemoryTransport, Outgoing
from courtois.domain.contacts import ContactInput
from courtois.domain.errors import Conflict
from courtois.domain.invitations import INVITATION_MACHINE, InvitationState
from courtois.domain.messages import MessageState
from courtois.policy.facts import SenderFacts
from courtois.services.audit import verify_ledger
from courtois.services.contacts import import_contacts, select_contacts
from courtois.services.context import Context
from courtois.services.facts import sender_facts, senders_facts
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.lifecycle import revoke_consent, stop_everything, withdraw
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipient_actions import (
    accept,
    decline,
    forget_me,
    resolve_link,
    unsubscribe_link,
)
from courtois.services.recipient_reminders import ReminderOutcome, request_reminder
from courtois.services.recipients import forget_recipient, mark_joined, unsubscribe
from courtois.services.worker import run_pass
from courtois.store.engine import make_engine
from courtois.store.migrate import migrate
from courtois.store.tables import contacts, invitations, ledger, messages
from courtois.tokens import Scope, make_token

MEMBERS = ("ana", "bo", "cy")
RECIPIENTS = tuple(f"r{i}@example.org" for i in range(3))
UNDO = timedelta(minutes=10)
DAY = 60 * 24
# Minutes the clock may jump: mostly short, so that invitations meet inside the windows
# (undo, 14 days), with a few long jumps across them (reminders, expiry, 90 days).
PAUSES = [1, 9, 11, 11, 60, 360, DAY, DAY, 3 * DAY, 13 * DAY, 15 * DAY, 40 * DAY]
SHORT = timedelta(days=14)
CONTACT_RETENTION = timedelta(hours=24)
LONG = timedelta(days=90)
ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.\w+")

_TEMPLATE_DIR = Path(tempfile.mkdtemp(prefix="courtois-stateful-"))
_TEMPLATE = _TEMPLATE_DIR / "template.db"


def _template() -> Path:
    """Migrate once; every example starts from a copy of this file."""
    if not _TEMPLATE.exists():
        engine = make_engine(f"sqlite:///{_TEMPLATE}")
        migrate(engine)
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
    return _TEMPLATE


@dataclass
class ConsentModel:
    member: str
    recipients: frozenset[str]
    reminders: int
    given_at: datetime
    revoked_step: int | None = None


@dataclass
class Sent:
    """One email the transport carried: when (clock) and after which step (order)."""

    at: datetime
    step: int
    to: str
    invitations: tuple[str, ...]
    kind: str


@dataclass
class World:
    """What people did, and at which step: the yardstick the sent mail is held against.
    Steps, not clock times, order events, since several steps may share one instant."""

    consents: dict[str, ConsentModel] = field(default_factory=dict)
    invitation_consent: dict[str, str] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)
    stopped_all: dict[str, int] = field(default_factory=dict)
    stopped_member: dict[tuple[str, str], int] = field(default_factory=dict)
    joined: dict[str, int] = field(default_factory=dict)
    forgotten: set[str] = field(default_factory=set)
    # (member, digest) of every contact a member picked.
    picked: set[tuple[str, str]] = field(default_factory=set)
    # Invitations whose recipient asked for a reminder (`test_reminder_promises_stateful`
    # holds the day they were told against a worker that runs all along).
    asked: set[str] = field(default_factory=set)
    # Invitations answered while their email was at the relay: the state the answer left.
    answered: dict[str, InvitationState] = field(default_factory=dict)


def fresh_database(prefix: str) -> tuple[Path, Engine, Context]:
    """A folder holding a copy of the migrated template, and the context on it."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    database = folder / "courtois.db"
    shutil.copy(_template(), database)
    engine = make_engine(f"sqlite:///{database}")
    return folder, engine, Context(engine, Settings(secret_key=SECRET, platform_name="Agora"))


def waiting_invitations(engine: Engine) -> set[str]:
    """The invitations sent and still waiting for an answer."""
    with engine.connect() as connection:
        return set(
            connection.execute(
                select(invitations.c.id).where(invitations.c.state == InvitationState.SENT.value)
            ).scalars()
        )


# What a recipient may do while their email is at the relay, its outcome still unwritten:
# from its links (join, forget me, not interested, the one-click unsubscribe), or by other
# means (the platform reports the join; "forget me" or an opt-out from the command line).
ANSWERS = (
    "join-link",
    "forget-link",
    "decline-link",
    "unsubscribe-link",
    "joined",
    "forgotten",
    "unsubscribed",
)


class AnsweredAtTheRelay(MemoryTransport):
    """Carries every email as `MemoryTransport` does; the first one to `to` is answered
    by its recipient before the worker hears the server took it: in the window where the
    email is `sending` and its invitation's fate is still to be written."""

    def __init__(self, to: str, answer: Callable[[Outgoing], None]) -> None:
        super().__init__()
        self.to = to
        self.answer: Callable[[Outgoing], None] | None = answer
        self.answered: Outgoing | None = None

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        deliveries = super().send_batch(batch, until)
        for outgoing in batch:
            if self.answer is not None and outgoing.to == self.to:
                answer, self.answer = self.answer, None
                answer(outgoing)
                self.answered = outgoing
        return deliveries


class InvitationWorld(RuleBasedStateMachine):
    """The service layer under random use."""

    def __init__(self) -> None:
        super().__init__()
        self.folder, self.engine, self.ctx = fresh_database("courtois-example-")
        self.transport = MemoryTransport()
        self.now = T0
        self.world = World()
        self.sent: list[Sent] = []
        self.step = 0
        self.last_pass: datetime | None = None

    def _next_step(self) -> int:
        self.step += 1
        return self.step

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize()
    def members(self) -> None:
        for name in MEMBERS:
            register_member(self.ctx, name, f"{name}@members.example", name.title(), "en", self.now)

    @rule(member=st.sampled_from(MEMBERS), picked=st.sets(st.sampled_from(RECIPIENTS), min_size=1))
    def import_address_book(self, member: str, picked: set[str]) -> None:
        records = [ContactInput(email=r, name="Someone") for r in sorted(picked)]
        import_contacts(self.ctx, member, records, "test", self.now)

    @rule(member=st.sampled_from(MEMBERS), recipient=st.sampled_from(RECIPIENTS))
    def pick(self, member: str, recipient: str) -> None:
        """Through the API, which leaves the pick as it is once the contact is invited."""
        if select_contacts(self.ctx, member, [recipient], self.now):
            self.world.picked.add((member, self.ctx.digest_email(recipient)))

    @rule(
        member=st.sampled_from(MEMBERS),
        picked=st.sets(st.sampled_from(RECIPIENTS), min_size=1, max_size=3),
        reminders=st.integers(0, 1),
    )
    def invite_some(self, member: str, picked: set[str], reminders: int) -> None:
        preview = preview_invitations(self.ctx, member, len(picked), "", None, reminders)
        request = InviteRequest(
            member,
            tuple(sorted(picked)),
            "",
            None,
            reminders,
            preview.preview_hash,
            ConsentInput(preview.consent_text),
        )
        answer = invite(self.ctx, request, self.now)
        digests = frozenset(self.ctx.digest_email(r) for r in picked)
        self.world.consents[answer["consent_id"]] = ConsentModel(
            member, digests, reminders, self.now
        )
        for item in answer["invitations"]:
            self.world.invitation_consent[item["id"]] = answer["consent_id"]

    @rule(member=st.sampled_from(MEMBERS), recipient=st.sampled_from(RECIPIENTS))
    def invite_one(self, member: str, recipient: str) -> None:
        """A second way in, so that invitations meet in one inbox often."""
        self.invite_some(member, {recipient}, 0)

    @precondition(lambda self: bool(self.world.invitation_consent))
    @rule(data=st.data())
    def withdraw_one(self, data: st.DataObject) -> None:
        # Insertion order, not sorted ids: ids are random, and a replayed example must pick
        # the same invitation again.
        invitation = data.draw(st.sampled_from(list(self.world.invitation_consent)))
        try:
            withdraw(self.ctx, invitation, self.now)
        except Conflict:
            return
        self.world.withdrawn.setdefault(invitation, self._next_step())

    @precondition(lambda self: bool(self.world.consents))
    @rule(data=st.data())
    def revoke_one(self, data: st.DataObject) -> None:
        consent = data.draw(st.sampled_from(list(self.world.consents)))
        try:
            revoke_consent(self.ctx, consent, self.now)
        except Conflict:
            return
        self.world.consents[consent].revoked_step = self._next_step()

    @rule(member=st.sampled_from(MEMBERS))
    def member_stops_everything(self, member: str) -> None:
        stopped = stop_everything(self.ctx, member, self.now)
        active = [c for c in self.world.consents.values() if c.member == member]
        active = [c for c in active if c.revoked_step is None]
        assert stopped["consents_revoked"] == len(active)
        step = self._next_step()
        for consent in active:
            consent.revoked_step = step

    @rule(recipient=st.sampled_from(RECIPIENTS), member=st.none() | st.sampled_from(MEMBERS))
    def unsubscribe_one(self, recipient: str, member: str | None) -> None:
        digest = self.ctx.digest_email(recipient)
        unsubscribe(self.ctx, digest, self.now, member)
        if member is None:
            self.world.stopped_all.setdefault(digest, self._next_step())
        else:
            self.world.stopped_member.setdefault((digest, member), self._next_step())

    @rule(recipient=st.sampled_from(RECIPIENTS))
    def not_interested(self, recipient: str) -> None:
        """From the link of the latest invitation to them, if any."""
        digest = self.ctx.digest_email(recipient)
        with self.engine.connect() as connection:
            latest = connection.execute(
                select(invitations.c.id)
                .where(invitations.c.recipient_digest == digest)
                .order_by(invitations.c.created_at.desc(), invitations.c.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        if latest is not None:
            token = make_token(self.ctx.settings.token_secrets, Scope.WHY, latest)
            decline(self.ctx, resolve_link(self.ctx, Scope.WHY, token), self.now)

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data(), days=st.sampled_from([1, 3, 14, 20, 45, 89]))
    def remind_me_later(self, data: st.DataObject, days: int) -> None:
        """From the link of an invitation that reached someone and still waits for their
        answer, if any: its reminder, on a day `days` on."""
        waiting = waiting_invitations(self.engine)
        reached = [i for mail in self.sent for i in mail.invitations if i in waiting]
        if not reached:
            return
        invitation = data.draw(st.sampled_from(reached))
        token = make_token(self.ctx.settings.token_secrets, Scope.WHY, invitation)
        link = resolve_link(self.ctx, Scope.WHY, token)
        day = (self.now + timedelta(days=days)).date()
        answer = request_reminder(self.ctx, link, day, self.now)
        if answer.outcome is ReminderOutcome.SCHEDULED:
            self.world.asked.add(invitation)

    @rule(recipient=st.sampled_from(RECIPIENTS), joins=st.booleans())
    def recipient_leaves(self, recipient: str, joins: bool) -> None:
        """The recipient joins the platform, or asks to be forgotten."""
        if joins:
            self.join(recipient)
        else:
            self.forget(recipient)

    def join(self, recipient: str) -> None:
        digest = self.ctx.digest_email(recipient)
        mark_joined(self.ctx, digest, self.now)
        self.world.joined.setdefault(digest, self._next_step())

    def forget(self, recipient: str) -> None:
        digest = self.ctx.digest_email(recipient)
        forget_recipient(self.ctx, digest, self.now)
        self.world.forgotten.add(digest)
        self.world.stopped_all.setdefault(digest, self._next_step())

    @rule(minutes=st.sampled_from(PAUSES))
    def time_passes(self, minutes: int) -> None:
        """The clock moves on and the worker, which runs all along, does what fell due."""
        self.now += timedelta(minutes=minutes)
        self.tick()

    @rule()
    def tick(self) -> None:
        before = len(self.transport.sent)
        run_pass(self.ctx, self.now, self.transport)
        self._carried(self.transport.sent[before:])

    def _carried(self, carried: list[Outgoing]) -> None:
        """The pass that carried these emails is over: its step, and what it carried."""
        self.last_pass = self.now
        step = self._next_step()
        for outgoing in carried:
            to = self.ctx.digest_email(outgoing.to)
            self.sent.append(Sent(self.now, step, to, outgoing.invitation_ids, outgoing.kind))

    @rule(
        minutes=st.sampled_from(PAUSES),
        recipient=st.sampled_from(RECIPIENTS),
        answer=st.sampled_from(ANSWERS),
    )
    def answer_at_the_relay(self, minutes: int, recipient: str, answer: str) -> None:
        """The clock moves on as in `time_passes`, and in the worker's pass the recipient
        answers their email, if one goes to them, as soon as the relay has it: before the
        worker writes that it left."""
        self.now += timedelta(minutes=minutes)
        transport = AnsweredAtTheRelay(recipient, lambda email: self._answer(answer, email))
        run_pass(self.ctx, self.now, transport)
        self._carried(transport.sent)
        if transport.answered is None:
            return
        # The answer came after the email: its step follows the pass's.
        digest = self.ctx.digest_email(recipient)
        carried = transport.answered.invitation_ids
        if answer in ("join-link", "joined"):
            linked = carried[:1] if answer == "join-link" else carried
            self.world.answered.update(dict.fromkeys(linked, InvitationState.ACCEPTED))
        elif answer in ("forget-link", "decline-link", "forgotten"):
            self.world.answered.update(dict.fromkeys(carried, InvitationState.DECLINED))
        if answer == "joined":
            self.world.joined.setdefault(digest, self._next_step())
        elif answer in ("forget-link", "forgotten"):
            self.world.forgotten.add(digest)
        if answer in ("forget-link", "forgotten", "unsubscribe-link", "unsubscribed"):
            self.world.stopped_all.setdefault(digest, self._next_step())

    def _answer(self, answer: str, email: Outgoing) -> None:
        """What the recipient does, with the links the email carried."""
        secrets = self.ctx.settings.token_secrets
        linked = email.invitation_ids[0]
        digest = self.ctx.digest_email(email.to)
        if answer == "join-link":
            token = make_token(secrets, Scope.JOIN, linked)
            accept(self.ctx, resolve_link(self.ctx, Scope.JOIN, token), self.now)
        elif answer == "forget-link":
            token = make_token(secrets, Scope.WHY, linked)
            forget_me(self.ctx, resolve_link(self.ctx, Scope.WHY, token), self.now)
        elif answer == "decline-link":
            token = make_token(secrets, Scope.WHY, linked)
            decline(self.ctx, resolve_link(self.ctx, Scope.WHY, token), self.now)
        elif answer == "unsubscribe-link":
            unsubscribe_link(self.ctx, make_token(secrets, Scope.UNSUBSCRIBE, linked), self.now)
        elif answer == "joined":
            mark_joined(self.ctx, digest, self.now)
        elif answer == "forgotten":
            forget_recipient(self.ctx, digest, self.now)
        else:
            unsubscribe(self.ctx, digest, self.now)

    # Invariants, checked after every step.

    @invariant()
    def no_consent_no_mail(self) -> None:
        """1 and 5: each email carries only invitations whose consent was active, named the
        recipient, was given at least the undo window earlier, and was not withdrawn."""
        for mail in self.sent:
            for invitation in mail.invitations:
                consent = self.world.consents[self.world.invitation_consent[invitation]]
                assert mail.to in consent.recipients
                assert consent.revoked_step is None or consent.revoked_step > mail.step
                assert mail.at >= consent.given_at + UNDO
                withdrawn = self.world.withdrawn.get(invitation)
                assert withdrawn is None or withdrawn > mail.step

    @invariant()
    def contacts_start_unselected(self) -> None:
        """1: no contact is ever selected unless the member selected it (no rule does)."""
        with self.engine.connect() as connection:
            selected = connection.execute(
                select(contacts.c.member_id, contacts.c.recipient_digest).where(
                    contacts.c.selected.is_(True)
                )
            ).all()
        assert {(r.member_id, r.recipient_digest) for r in selected} <= self.world.picked

    @invariant()
    def silence_means_stop(self) -> None:
        """3: at most the invitation, the one reminder the member ticked and the one the
        recipient asked for, 14 days apart."""
        carried: dict[str, list[datetime]] = {}
        for mail in self.sent:
            for invitation in mail.invitations:
                carried.setdefault(invitation, []).append(mail.at)
        for invitation, times in carried.items():
            consent = self.world.consents[self.world.invitation_consent[invitation]]
            asked = 1 if invitation in self.world.asked else 0
            assert len(times) <= 1 + consent.reminders + asked, (invitation, times)
            for earlier, later in pairwise(sorted(times)):
                assert later - earlier >= SHORT

    @invariant()
    def recipients_can_stop_everything(self) -> None:
        """4: nothing after an opt-out (from everyone or that member), a join or a forget."""
        for mail in self.sent:
            stopped = self.world.stopped_all.get(mail.to)
            assert stopped is None or mail.step < stopped
            joined = self.world.joined.get(mail.to)
            assert joined is None or mail.step < joined
            for invitation in mail.invitations:
                member = self.world.consents[self.world.invitation_consent[invitation]].member
                blocked = self.world.stopped_member.get((mail.to, member))
                assert blocked is None or mail.step < blocked

    @invariant()
    def inbox_protected(self) -> None:
        """6: one email per 14 days and two per 90 days per recipient, across senders."""
        by_recipient: dict[str, list[datetime]] = {}
        for mail in self.sent:
            by_recipient.setdefault(mail.to, []).append(mail.at)
        for times in by_recipient.values():
            times.sort()
            for earlier, later in pairwise(times):
                assert later - earlier >= SHORT, times
            for first, third in zip(times, times[2:], strict=False):
                assert third - first >= LONG, times

    @invariant()
    def every_message_has_one_visible_state(self) -> None:
        """9: states are known, and nothing waits to be sent for a closed invitation."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(messages.c.state, invitations.c.state.label("invitation_state")).join(
                    invitations, invitations.c.id == messages.c.invitation_id
                )
            ).all()
        for row in rows:
            state = MessageState(row.state)
            invitation_state = InvitationState(row.invitation_state)
            assert state is not MessageState.SENDING
            if state is MessageState.SCHEDULED:
                assert not INVITATION_MACHINE.is_final(invitation_state)

    @invariant()
    def compare_and_forget(self) -> None:
        """10: no address kept for forgotten or opted-out recipients, nor for closed
        invitations; no contact, picked or not, past its day at the last pass, nor kept by
        the member whose invitation to it was declined since its import; none in the
        ledger."""
        gone = set(self.world.stopped_all) | self.world.forgotten
        declined: dict[tuple[str, str], datetime] = {}
        with self.engine.connect() as connection:
            for row in connection.execute(select(invitations)):
                if row.recipient_digest in gone or INVITATION_MACHINE.is_final(
                    InvitationState(row.state)
                ):
                    assert row.address is None
                if row.state == InvitationState.DECLINED.value:
                    key = (row.member_id, row.recipient_digest)
                    declined[key] = max(row.answered_at, declined.get(key, row.answered_at))
            for row in connection.execute(select(contacts)):
                assert row.recipient_digest not in gone
                if self.last_pass is not None:
                    assert row.imported_at > self.last_pass - CONTACT_RETENTION
                answered = declined.get((row.member_id, row.recipient_digest))
                assert answered is None or row.imported_at >= answered
            for row in connection.execute(select(ledger.c.payload)):
                assert not ADDRESS.search(str(row.payload))

    @invariant()
    def sender_facts_follow_their_sources(self) -> None:
        """12: the sender facts read from the member-side `sender_activity` table are the
        ones `messages` and `invitations` themselves give, whatever happened since."""
        with self.engine.connect() as connection:
            together = senders_facts(connection, MEMBERS, self.now)
            for member in MEMBERS:
                expected = _sender_facts_from_sources(connection, member, self.now)
                assert sender_facts(connection, member, self.now) == expected
                # All members in one statement, as a worker's batch reads them.
                assert together[member] == expected

    @invariant()
    def no_answer_is_lost(self) -> None:
        """An answer given while its email was at the relay stands once the worker has
        written the email's fate: joined, accepted; forgotten or not interested, declined."""
        with self.engine.connect() as connection:
            states = dict(
                connection.execute(
                    select(invitations.c.id, invitations.c.state).where(
                        invitations.c.id.in_(sorted(self.world.answered))
                    )
                ).all()
            )
        for invitation, state in self.world.answered.items():
            assert states[invitation] == state.value, (invitation, states[invitation], state)

    @invariant()
    def ledger_holds(self) -> None:
        """11: the hash chain verifies after every step."""
        assert verify_ledger(self.engine).ok


def _sender_facts_from_sources(connection: Connection, member: str, now: datetime) -> SenderFacts:
    """Invariant 12's facts as defined: the member's first emails created in the last week
    and not cancelled (a reminder is not one, even when it came to carry a digest), and
    their invitations sent in the last 90 days by state, complaints aside (none here)."""
    recent = connection.execute(
        select(messages.c.created_at)
        .join(invitations, invitations.c.id == messages.c.invitation_id)
        .where(
            messages.c.member_id == member,
            messages.c.created_at > now - timedelta(days=7),
            messages.c.created_at == invitations.c.created_at,
            messages.c.state != MessageState.CANCELLED.value,
        )
    ).scalars()
    by_state = {
        str(state): int(count)
        for state, count in connection.execute(
            select(invitations.c.state, func.count())
            .where(invitations.c.member_id == member, invitations.c.sent_at > now - LONG)
            .group_by(invitations.c.state)
        )
    }
    return SenderFacts(
        recent_messages=tuple(sorted(recent)),
        sent_90d=sum(by_state.values()),
        accepted_90d=by_state.get(InvitationState.ACCEPTED.value, 0),
        declined_90d=by_state.get(InvitationState.DECLINED.value, 0),
    )


InvitationWorld.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestInvitationWorld = InvitationWorld.TestCase
