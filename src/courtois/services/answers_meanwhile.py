"""What a recipient said while their email was being handed over, applied once the worker
records the email sent.

A word given without a link of that email (the platform's `POST /v1/joined`, "forget me" or
an opt-out from the command line or another email's page) cannot prove the email arrived,
so it leaves the invitation `scheduled` behind its `sending` email (`recipients`), to be
recorded sent if the server takes it. The word is kept on the recipient's row (joined,
forgotten, opted out) and on their blocks of members: when the worker then moves the
invitation to `sent`, it reads them under the recipient's lock and the invitation meets
the word at once, as one sent a moment earlier would have (joined: accepted; forgotten:
declined; opted out: no reminder), instead of waiting, sent, for an answer already given.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime

from courtois.domain.invitations import InvitationState, word_given_while_leaving
from courtois.services.facts import MEMBER_STOPS
from courtois.services.locks import LockedRecipient
from courtois.services.transitions import move_invitations
from courtois.services.unit_of_work import UnitOfWork
from courtois.services.worker_due import Due
from courtois.store.bulk import prebuilt
from courtois.store.tables import invitations

# The reasons `recipients.mark_joined` and `recipients.forget_recipient` give, so the
# ledger reads the same whichever came first, the word or the email.
_REASONS = {
    InvitationState.ACCEPTED: "the recipient joined",
    InvitationState.DECLINED: "the recipient asked to be forgotten",
}


def meet_words_given_meanwhile(
    uow: UnitOfWork, sent: Sequence[Due], facts: Mapping[str, LockedRecipient]
) -> list[str]:
    """The invitations just recorded `sent` (the claimed messages that carried them first,
    which name their member and recipient) meet their recipient's word given meanwhile:
    `facts` are the recipients' rows, locked by the caller. Returns those still waiting
    for an answer whose recipient did not stop mail from their member: the ones a reminder
    may follow."""
    answered: dict[tuple[InvitationState, datetime], list[str]] = defaultdict(list)
    waiting = []
    for due in sent:
        fact = facts.get(due.digest)
        word = word_given_while_leaving(fact.joined_at, fact.forgotten_at) if fact else None
        if word is not None:
            answered[word].append(due.invitation_id)
        elif fact is None or fact.unsubscribed_at is None:
            waiting.append(due)
    for (state, at), ids in sorted(answered.items()):
        move_invitations(
            uow, invitations.c.id.in_(ids), state, _REASONS[state], extra={"answered_at": at}
        )
    blocked = _blocked(uow, {due.digest for due in waiting})
    return [due.invitation_id for due in waiting if (due.digest, due.member_id) not in blocked]


def _blocked(uow: UnitOfWork, digests: set[str]) -> set[tuple[str, str]]:
    """(recipient, member) of every stop from one member these recipients asked for."""
    if not digests:
        return set()
    found = uow.conn.execute(prebuilt(MEMBER_STOPS, uow.conn), {"b_digests": sorted(digests)})
    return {(digest, member) for digest, member in found}
