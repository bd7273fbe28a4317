"""Random sequences of invitations to one inbox and "remind me later" requests.

The broad state machine (`test_invariants_stateful.py`) rarely has a recipient ask for a
reminder while other members' invitations wait for the same inbox. This one does little
else: three members invite two people, again and again, recipients ask for reminders on
days of their choosing, time passes and the worker runs. After every step: the inbox's
quota holds (invariant 6), each invitation gets at most its own email, the reminder its
member ticked and the one its recipient asked for (invariant 3), and every reminder asked
for leaves at the first pass from the day the recipient was told, unless its invitation
stopped waiting for an answer.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from sqlalchemy import func, select
from test_invariants_stateful import fresh_database, waiting_invitations

from conftest import T0
from courtois.delivery.transport import MemoryTransport
from courtois.domain.invitations import InvitationState
from courtois.domain.messages import MessageState
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipient_actions import resolve_link
from courtois.services.recipient_reminders import ReminderOutcome, request_reminder
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages
from courtois.tokens import Scope, make_token

MEMBERS = ("ana", "bo", "cy")
RECIPIENTS = ("r0@example.org", "r1@example.org")
SHORT = timedelta(days=14)
LONG = timedelta(days=90)
# Mostly days, so that invitations, held ones and reminders meet inside the windows.
# How long after an instant something falls due the worker's pass comes.
LATE = timedelta(minutes=1)
PAUSES = [timedelta(minutes=11), timedelta(hours=6), *(timedelta(days=d) for d in (1, 3, 6, 13))]


class ReminderWorld(RuleBasedStateMachine):
    """Invitations to two inboxes, reminders asked for, time passing."""

    def __init__(self) -> None:
        super().__init__()
        self.folder, self.engine, self.ctx = fresh_database("courtois-reminders-")
        self.transport = MemoryTransport()
        self.now = T0
        # (when, recipient digest, kind, invitation ids) of every email that left.
        self.sent: list[tuple[datetime, str, str, tuple[str, ...]]] = []
        self.ticked: dict[str, int] = {}  # invitation id: reminders its member ticked
        self.asked: dict[str, datetime] = {}  # invitation id: the day the recipient was told
        self.kept: set[str] = set()

    def teardown(self) -> None:
        self.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    @initialize()
    def members(self) -> None:
        for name in MEMBERS:
            register_member(self.ctx, name, f"{name}@members.example", name.title(), "en", self.now)

    @rule(
        member=st.sampled_from(MEMBERS),
        recipient=st.sampled_from(RECIPIENTS),
        reminders=st.integers(0, 1),
    )
    def invites(self, member: str, recipient: str, reminders: int) -> None:
        preview = preview_invitations(self.ctx, member, 1, "", None, reminders)
        request = InviteRequest(
            member,
            (recipient,),
            "",
            None,
            reminders,
            preview.preview_hash,
            ConsentInput(preview.consent_text),
        )
        for item in invite(self.ctx, request, self.now)["invitations"]:
            self.ticked[item["id"]] = reminders

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data(), days=st.sampled_from([1, 2, 5, 13, 14, 20, 40, 89]))
    def remind_me_later(self, data: st.DataObject, days: int) -> None:
        """From the link of an invitation that reached its recipient and waits for their
        answer: its reminder, `days` on."""
        waiting = waiting_invitations(self.engine)
        reached = sorted({i for *_, ids in self.sent for i in ids if i in waiting})
        if not reached:
            return
        invitation = data.draw(st.sampled_from(reached))
        token = make_token(self.ctx.settings.token_secrets, Scope.WHY, invitation)
        link = resolve_link(self.ctx, Scope.WHY, token)
        answer = request_reminder(
            self.ctx, link, (self.now + timedelta(days=days)).date(), self.now
        )
        if answer.outcome is ReminderOutcome.SCHEDULED:
            assert answer.due_at is not None
            self.asked[invitation] = answer.due_at
            self.kept.discard(invitation)

    @rule(pause=st.sampled_from(PAUSES))
    def time_passes(self, pause: timedelta) -> None:
        """The clock moves on; the worker, which runs all along, makes a pass a little after
        each instant something falls due (`LATE`), as passes come every few seconds and
        take their time."""
        end = self.now + pause
        for _ in range(500):
            with self.engine.connect() as connection:
                due = connection.execute(
                    select(func.min(messages.c.scheduled_at)).where(
                        messages.c.state == MessageState.SCHEDULED.value,
                        messages.c.scheduled_at > self.now - LATE,
                        messages.c.scheduled_at <= end - LATE,
                    )
                ).scalar_one()
            if due is None or due + LATE > end:
                break
            self.work(max(self.now, due + LATE))
        self.work(end)

    def work(self, at: datetime) -> None:
        """One worker pass at `at`."""
        self.now = at
        before = len(self.transport.sent)
        run_pass(self.ctx, self.now, self.transport)
        for outgoing in self.transport.sent[before:]:
            digest = self.ctx.digest_email(outgoing.to)
            self.sent.append((self.now, digest, outgoing.kind, outgoing.invitation_ids))
            if outgoing.kind == "reminder":
                asked = [i for i in outgoing.invitation_ids if i in self.asked]
                self.kept.update(asked)
                if asked and currently_in_test_context():
                    event("a reminder asked for left")
        self.promises_kept()

    def promises_kept(self) -> None:
        """A reminder asked for has left by the first pass from its day, or its invitation
        stopped waiting (here: it expired)."""
        with self.engine.connect() as connection:
            for invitation, due in self.asked.items():
                if due > self.now or invitation in self.kept:
                    continue
                state = connection.execute(
                    select(invitations.c.state).where(invitations.c.id == invitation)
                ).scalar_one()
                assert state != InvitationState.SENT.value, (invitation, due, self.now)

    @invariant()
    def inbox_protected(self) -> None:
        """6: one email per 14 days and two per 90 days per recipient, across senders."""
        for recipient in {to for _, to, _, _ in self.sent}:
            times = sorted(at for at, to, _, _ in self.sent if to == recipient)
            for earlier, later in pairwise(times):
                assert later - earlier >= SHORT, times
            for first, third in zip(times, times[2:], strict=False):
                assert third - first >= LONG, times

    @invariant()
    def no_unasked_reminder(self) -> None:
        """3: an invitation's own email, the reminder its member ticked, the one its
        recipient asked for; no more."""
        carried: dict[str, int] = {}
        for *_, ids in self.sent:
            for invitation in ids:
                carried[invitation] = carried.get(invitation, 0) + 1
        for invitation, count in carried.items():
            assert count <= 1 + self.ticked[invitation] + (invitation in self.asked)


ReminderWorld.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestReminderWorld = ReminderWorld.TestCase


def test_three_reminders_asked_for_in_one_inbox_each_keep_their_day() -> None:
    """Ana, Bo and Cy's invitations reached r0 in one digest; on day 13 r0 asks each
    reminder for the next day. They are told days 14, 90 and 104 (two emails per 90 days,
    one per 14), and an hour more for each one before that may leave late. Each then leaves on
    its day though every pass comes a minute late: without that hour, the first, leaving at
    14 days and a minute, would have put three emails within 90 days with the next two, and
    waited past the day it was told."""
    world = ReminderWorld()
    try:
        world.members()
        for member in MEMBERS:
            world.invites(member, RECIPIENTS[0], 0)
        world.time_passes(timedelta(minutes=11))
        ((sent_at, _, kind, carried),) = world.sent
        assert kind == "digest"
        world.time_passes(timedelta(days=13))
        told = []
        for invitation in carried:
            token = make_token(world.ctx.settings.token_secrets, Scope.WHY, invitation)
            link = resolve_link(world.ctx, Scope.WHY, token)
            answer = request_reminder(
                world.ctx, link, (world.now + timedelta(days=1)).date(), world.now
            )
            assert answer.outcome is ReminderOutcome.SCHEDULED
            assert answer.due_at is not None
            world.asked[invitation] = answer.due_at
            told.append(answer.due_at - sent_at.replace(second=0, microsecond=0))
        hour = timedelta(hours=1)
        assert told == [
            timedelta(days=14),
            timedelta(days=90) + hour,
            timedelta(days=104) + 2 * hour,
        ]
        for _ in range(8):
            world.time_passes(timedelta(days=13))
        assert world.kept == set(carried)
        world.inbox_protected()
    finally:
        world.teardown()
