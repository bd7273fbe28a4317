"""One simulated world: the recorded requests and recipient events replayed under a policy.

What the replay keeps from history, and what it decides for itself:

- Members' requests are replayed as they happened: each invitation asked for is decided
  at its time by the real `CHAIN` (queue stage), with facts from the simulated world.
- The simulated world's own sends, not the recorded ones, feed every quota: a message it
  schedules counts against its sender's caps, an email it sends takes a slot in the
  recipient's windows, and an invitation it sends counts in the sender's 90-day acceptance
  and decline rates. So a tighter cap that stops one invitation frees room for another.
- The worker is replayed too: due messages are decided again at the send stage, those of
  one recipient due together leave as one digest, deferred ones come back at their retry
  time, a first send schedules the reminder the member ticked, invitations expire. The
  worker runs when the ledger shows it ran (any trace of a pass); a message due when no
  pass left a trace within `idle_after` is taken to go at its due time (the worker ran but
  had nothing to record); with `idle_after=None` only the recorded passes run, which is how
  a replay under the policy that made the history reproduces it exactly.
- Recipients' actions are replayed as they happened: unsubscribes, joins, registrations,
  forget-me, hard bounces and complaint suppressions stop mail whatever the policy did,
  though under another policy some of them would not have happened (no email, nothing to
  unsubscribe from, nothing to complain about). Answers and complaints are tied to mail:
  an acceptance or decline reaches an invitation only if the simulated world still has it
  open (and an acceptance only if it was sent), and a complaint is charged to the member
  only if the simulated world mailed that recipient on their behalf; the others are
  counted as dropped.
- Every message is taken as delivered: the replay cannot know how a receiving server would
  have answered an email that was never sent. "Remind me later" requests are not replayed
  (the ledger does not record the day asked for); they are counted.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from datetime import datetime, timedelta
from heapq import heappop
from typing import Any

from courtois.domain.consent import Consent as ConsentRecord
from courtois.domain.messages import MessageKind, leaving_together
from courtois.policy.chain import evaluate
from courtois.policy.config import PolicyConfig
from courtois.policy.facts import (
    Candidate,
    Facts,
    InvitationFacts,
    RecipientFacts,
    SenderFacts,
    Stage,
)
from courtois.policy.rules import strict_eu
from courtois.policy.verdict import Decision, Outcome
from courtois.simulation import events as ev
from courtois.simulation.acts import Acts
from courtois.simulation.tally import Tally
from courtois.simulation.world import (
    CLOSED,
    SENT,
    UNANSWERED,
    Consent,
    Invitation,
    Message,
    Recipient,
)

IDLE_AFTER = timedelta(minutes=15)
# A deferral without a retry time comes back in an hour, as the worker does.
RETRY_LATER = timedelta(hours=1)
_REMINDER = MessageKind.REMINDER
_INVITATION = MessageKind.INVITATION
_ALLOW, _DENY = Outcome.ALLOW, Outcome.DENY


def shared_by_member(decision: Decision) -> bool:
    """Only strict-eu refused: the member sends it from their own mailbox (see `invite`)."""
    refusing = {v.rule for v in decision.verdicts if v.outcome is _DENY}
    return refusing == {strict_eu.CODE}


def _without(recent: tuple[datetime, ...], created_at: datetime) -> tuple[datetime, ...]:
    """The sender's messages as one of them sees them: every other one, not itself."""
    index = bisect_left(recent, created_at)
    if index < len(recent) and recent[index] == created_at:
        return recent[:index] + recent[index + 1 :]
    return recent


class Replay(Acts):
    """Feed events in order, then `finish`; decisions from `count_from` on are counted."""

    def __init__(
        self,
        policy: PolicyConfig,
        count_from: datetime | None = None,
        idle_after: timedelta | None = IDLE_AFTER,
    ) -> None:
        super().__init__(policy, count_from)
        self.idle_after = idle_after
        self._last_pass: datetime | None = None
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            ev.Requested: self._requested,
            ev.Withdrawn: self._withdrawn,
            ev.Revoked: self._revoked,
            ev.Answered: self._answered,
            ev.Unsubscribed: self._unsubscribed,
            ev.Joined: self._joined,
            ev.BecameMember: self._became_member,
            ev.Forgotten: self._forgotten,
            ev.Suppressed: self._suppressed,
            ev.WorkerPass: self._worker_pass,
            ev.AlreadyInvited: self._already_invited,
        }

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, event: ev.Event) -> None:
        """Apply one event (baseline-only events are ignored)."""
        handler = self._handlers.get(type(event))
        if handler is None:
            return
        if self.idle_after is not None:
            self._catch_up(event[0])
        handler(event)

    def finish(self, until: datetime | None) -> Tally:
        """Run the passes due before `until` that left no trace; count what still waits."""
        if until is not None and self.idle_after is not None:
            self._catch_up(until)
        self.tally.waiting = sum(len(i.messages) for i in self._open.values())
        return self.tally

    # -- deciding --------------------------------------------------------------------------

    def _decide(
        self,
        invitation: Invitation,
        kind: MessageKind,
        stage: Stage,
        recipient_facts: RecipientFacts,
        now: datetime,
        created_at: datetime | None = None,
        invited_before: int = 0,
    ) -> Decision:
        """The real chain on facts from the simulated world. As in the services, the
        member's earlier invitations of this recipient count on queueing only."""
        sender = self._senders[invitation.member]
        recent = sender.recent_messages(now)
        if created_at is not None and kind is not _REMINDER:
            recent = _without(recent, created_at)
        sent, accepted, declined, complaints = sender.window(now)
        consent = invitation.consent
        recipient = invitation.recipient
        facts = Facts(
            self.policy,
            recipient_facts,
            SenderFacts(recent, sent, accepted, declined, complaints),
            InvitationFacts(
                ConsentRecord(
                    consent.id,
                    consent.member,
                    frozenset((recipient.digest,)),
                    _INVITATION,
                    "",
                    consent.reminders,
                    "",
                    "",
                    "",
                    consent.given_at,
                    consent.revoked_at,
                ),
                invited_before,
                invitation.reminders_sent,
                invitation.sent_at,
            ),
        )
        candidate = Candidate(invitation.member, recipient.digest, kind, stage, invitation.id)
        decision = evaluate(candidate, facts, now)
        if self._counting(now):
            self.tally.count(decision)
        return decision

    def _requested(self, event: ev.Requested) -> None:
        at, invitation_id, consent_id, member, digest, reminders = event
        recipient = self._recipient(digest)
        self._sender(member)
        consent = self._consents.get(consent_id)
        if consent is None:
            consent = self._consents[consent_id] = Consent(consent_id, member, reminders, at)
        invitation = Invitation(invitation_id, consent, recipient)
        horizon = at - self.policy.long_window
        facts = RecipientFacts(
            recipient.unsubscribed,
            recipient.blocked,
            recipient.suppressed,
            recipient.is_member,
            recipient.slots(at, self.policy.long_window),
            recipient.pending_after(horizon),
        )
        decision = self._decide(
            invitation, _INVITATION, Stage.QUEUE, facts, at, None, recipient.invited_by(member)
        )
        counting = self._counting(at)
        self.tally.requested += counting
        if decision.outcome is _DENY:
            if shared_by_member(decision):
                self._open_invitation(invitation, at)
                invitation.state = SENT
                invitation.sent_at = at
                self._senders[member].add_sent(invitation)
                self.tally.shared += counting
            elif not consent.open:
                del self._consents[consent_id]
            return
        self._open_invitation(invitation, at)
        self._schedule(invitation, _INVITATION, at, decision.retry_at or at)
        self._senders[member].add_message(at)

    # -- the worker ------------------------------------------------------------------------

    def _catch_up(self, now: datetime) -> None:
        """Passes no trace shows: each due time that no recorded pass followed soon enough."""
        assert self.idle_after is not None
        while True:
            due = self._next_timer()
            if due is None or due + self.idle_after >= now:
                return
            self._pass(due)

    def _next_timer(self) -> datetime | None:
        due, expiries = self._due, self._expiries
        while due and not (due[0][2].alive and due[0][2].due == due[0][0]):
            heappop(due)
        while expiries and not (
            expiries[0][2].state != CLOSED and expiries[0][2].expires_at == expiries[0][0]
        ):
            heappop(expiries)
        times = [heap[0][0] for heap in (due, expiries) if heap]
        return min(times) if times else None

    def _worker_pass(self, event: ev.WorkerPass) -> None:
        if self._last_pass is None or event.at > self._last_pass:
            self._pass(event.at)

    def _pass(self, now: datetime) -> None:
        """Expiries, then every message due, grouped by recipient, as `run_pass` does."""
        self._last_pass = now
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            when, _, invitation = heappop(expiries)
            if invitation.state != CLOSED and invitation.expires_at == when:
                self._close(invitation, UNANSWERED)
        groups: dict[Recipient, list[Message]] = {}
        left, self._left_behind = self._left_behind, []
        for message in left:
            if message.alive:
                groups.setdefault(message.invitation.recipient, []).append(message)
        due = self._due
        while due and due[0][0] <= now:
            when, _, message = heappop(due)
            if message.alive and message.due == when:
                groups.setdefault(message.invitation.recipient, []).append(message)
        if not groups:
            return
        self._in_pass = True
        try:
            for recipient, group in groups.items():
                self._send(recipient, group, now)
        finally:
            self._in_pass = False
            for sender, created_at in self._dropped:
                sender.drop_message(created_at)
            for sender, invitation in self._sent:
                sender.add_sent(invitation)
            self._dropped.clear()
            self._sent.clear()

    def _send(self, recipient: Recipient, group: list[Message], now: datetime) -> None:
        """Decide each due message of one recipient; the allowed leave as one email."""
        facts = RecipientFacts(
            recipient.unsubscribed,
            recipient.blocked,
            recipient.suppressed,
            recipient.is_member,
            recipient.slots(now, self.policy.long_window),
        )
        allowed = []
        for message in group:
            if not message.alive:
                continue
            invitation = message.invitation
            decision = self._decide(
                invitation, message.kind, Stage.SEND, facts, now, message.created_at
            )
            outcome = decision.outcome
            if outcome is _ALLOW:
                allowed.append(message)
            elif outcome is _DENY:
                self._cancel(message)
                if message.kind is not _REMINDER:
                    self._close(invitation, UNANSWERED)
            else:
                self._reschedule(message, decision.retry_at or now + RETRY_LATER)
        if allowed:
            # As the worker claims: a reminder never joins a digest; the allowed left out
            # wait, due as they were, for the next pass.
            taken = [allowed[i] for i in leaving_together([m.kind for m in allowed])]
            self._deliver(recipient, taken, now)
            # The worker decides them again at its next pass, not before: no timer of their
            # own, or a replay would run a pass the history never had.
            self._left_behind.extend(m for m in allowed if m not in taken)

    def _deliver(self, recipient: Recipient, allowed: list[Message], now: datetime) -> None:
        recipient.add_email(now)
        counting = self._counting(now)
        tally = self.tally
        tally.emails += counting
        tally.digests += counting and len(allowed) > 1
        for message in allowed:
            invitation = message.invitation
            self._unschedule(message)
            invitation.messages.remove(message)
            recipient.mailed(invitation.member)
            if message.kind is _REMINDER:
                invitation.reminders_sent += 1
                tally.reminders_sent += counting
                continue
            tally.invitations_sent += counting
            invitation.state = SENT
            invitation.sent_at = now
            self._expire_at(invitation, now + self._expiry)
            self._sent.append((self._senders[invitation.member], invitation))
            if invitation.consent.reminders >= 1:
                due = now + self.policy.reminder_interval
                self._schedule(invitation, _REMINDER, now, due)
