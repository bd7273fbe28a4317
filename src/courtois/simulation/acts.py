"""What members and recipients did, applied to the simulated world as the services apply
it (`courtois.services.lifecycle`, `recipients`, `recipient_actions`, `bounces`)."""

from __future__ import annotations

from courtois.domain.messages import MessageKind
from courtois.simulation import events as ev
from courtois.simulation.state import State
from courtois.simulation.world import ACCEPTED, DECLINED, SCHEDULED, SENT, UNANSWERED

HARD_BOUNCE = "hard-bounce"
_REMINDER = MessageKind.REMINDER


class Acts(State):
    """Handlers of the member and recipient events."""

    def _withdrawn(self, event: ev.Withdrawn) -> None:
        invitation = self._open.get(event.invitation)
        if invitation is not None:
            self._close(invitation, UNANSWERED)

    def _revoked(self, event: ev.Revoked) -> None:
        consent = self._consents.get(event.consent)
        if consent is None:
            return
        consent.revoked_at = event.at
        for invitation in list(consent.open.values()):
            if invitation.state == SCHEDULED:
                self._close(invitation, UNANSWERED)
            else:
                self._cancel_all(invitation, _REMINDER)

    def _answered(self, event: ev.Answered) -> None:
        invitation = self._open.get(event.invitation)
        if invitation is None or (event.accepted and invitation.state != SENT):
            self.tally.dropped_answers += self._counting(event.at)
            return
        self._close(invitation, ACCEPTED if event.accepted else DECLINED)

    def _unsubscribed(self, event: ev.Unsubscribed) -> None:
        recipient = self._recipient(event.recipient)
        if event.member is None:
            recipient.unsubscribed = True
        else:
            recipient.blocked = recipient.blocked | {event.member}
        for invitation in recipient.open_invitations():
            if event.member is not None and invitation.member != event.member:
                continue
            if invitation.state == SCHEDULED:
                self._close(invitation, UNANSWERED)
            else:
                self._cancel_all(invitation)

    def _joined(self, event: ev.Joined) -> None:
        recipient = self._recipient(event.recipient)
        recipient.is_member = True
        for invitation in recipient.open_invitations():
            self._close(invitation, ACCEPTED if invitation.state == SENT else UNANSWERED)

    def _became_member(self, event: ev.BecameMember) -> None:
        self._recipient(event.recipient).is_member = True

    def _forgotten(self, event: ev.Forgotten) -> None:
        recipient = self._recipient(event.recipient)
        recipient.unsubscribed = True
        for invitation in recipient.open_invitations():
            self._close(invitation, DECLINED if invitation.state == SENT else UNANSWERED)

    def _suppressed(self, event: ev.Suppressed) -> None:
        recipient = self._recipient(event.recipient)
        if recipient.suppressed is None:
            recipient.suppressed = event.reason
        if event.reported:
            for invitation in recipient.open_invitations():
                if invitation.state == SCHEDULED or event.reason == HARD_BOUNCE:
                    self._close(invitation, UNANSWERED)
                else:
                    self._cancel_all(invitation)
        if event.member is None:
            return
        if recipient.was_mailed_by(event.member):
            self._sender(event.member).complained(event.at)
        else:
            self.tally.dropped_complaints += self._counting(event.at)

    def _already_invited(self, event: ev.AlreadyInvited) -> None:
        self._recipient(event.recipient).count_invitation(event.member, 1)
