"""open_shares: the personal link, subject and text of a strict-eu invitation the member
sends themselves, given again while it is open.

`POST /v1/members/{id}/invitations` answers them once (kept a day for Idempotency-Key
replays). No token and no text is stored: both are rebuilt, the tokens freshly signed for
the invitation's id (`share_for`; a token carries the second it was signed, so its text
differs from the POST's while opening the same invitation), the words from what its
consent kept: the words previewed themselves (`consented_words`, schema 0017 on), else
the member's note and the reminders they ticked with the member's name now, in the
invitation's language. Either must hash to the consent's `preview_hash`, which pinned the
text the member previewed and consented to: when it no longer does (for a consent that
kept no words, the member renamed themselves or the platform's name changed; for any, the
note was emptied when the recipient asked to be forgotten, which empties the words too),
the text would not be the one consented to, and none is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from courtois.delivery.consented_words import read
from courtois.delivery.render import Inviter, RenderContext, preview
from courtois.domain.errors import InvalidInput
from courtois.domain.invitations import InvitationState, state_as_of
from courtois.domain.preview import check_note
from courtois.policy.verdict import Outcome
from courtois.services.context import Context
from courtois.services.decisions import member_shares, stored_refusals
from courtois.services.invitations import share_for
from courtois.store.tables import CONSENT_FACTS, consents, decisions, members

_DENY = Outcome.DENY.value


def open_shares(
    ctx: Context, connection: Connection, rows: Sequence[Any], now: datetime
) -> dict[str, dict[str, str]]:
    """`share_link`, `share_subject` and `share_text` by invitation id, for each of these
    invitation rows that its member shares themselves (its decision refused by strict-eu's
    rule alone: `member_shares`) and that is still open at `now` (sent, not past its
    expiry), under a consent not revoked, by a member not erased, whose text still renders
    to the consent's `preview_hash`. Read by the rows' keys: their decisions, their
    consents and their members."""
    sent = [
        row
        for row in rows
        if state_as_of(InvitationState(row.state), row.expires_at, now) is InvitationState.SENT
    ]
    if not sent:
        return {}
    shared = {
        found.invitation_id
        for found in connection.execute(
            select(decisions.c.invitation_id, decisions.c.verdicts).where(
                decisions.c.invitation_id.in_([row.id for row in sent]),
                decisions.c.outcome == _DENY,
            )
        )
        if member_shares(stored_refusals(found.verdicts))
    }
    sharing = [row for row in sent if row.id in shared]
    if not sharing:
        return {}
    member_ids = sorted({row.member_id for row in sharing})
    consent_of = {
        (found.member_id, found.id): found
        for found in connection.execute(
            select(*CONSENT_FACTS, consents.c.words).where(
                consents.c.member_id.in_(member_ids),
                consents.c.id.in_(sorted({row.consent_id for row in sharing})),
            )
        )
    }
    name_of = {
        found.id: str(found.name)
        for found in connection.execute(
            select(members.c.id, members.c.name).where(
                members.c.id.in_(member_ids), members.c.erased_at.is_(None)
            )
        )
    }
    given: dict[str, dict[str, str]] = {}
    for row in sharing:
        consent = consent_of.get((row.member_id, row.consent_id))
        name = name_of.get(row.member_id)
        if consent is None or consent.revoked_at is not None or name is None:
            continue
        kept = read(consent.words)
        if kept is not None:
            if kept.preview_hash == consent.preview_hash:
                shown = Inviter(kept.name)
                given[row.id] = share_for(ctx, row.id, shown, row.locale, kept.invitation)
            continue
        try:
            note = check_note(consent.note)
        except InvalidInput:
            # A note kept before its checks grew stricter: not the text it now renders.
            continue
        shown = Inviter(name, note, consent.reminders)
        context = RenderContext.from_settings(ctx.settings, (shown,), by_member=True)
        if preview(row.locale, context).preview_hash != consent.preview_hash:
            continue
        # As `invite` answered it: the text sent by hand carries no reminder.
        given[row.id] = share_for(ctx, row.id, Inviter(name, note, 0), row.locale)
    return given
