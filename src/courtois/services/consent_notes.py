"""clear_notes_to_alone, notes_to_alone and shared_notes: the member's note, and what is
left of it once its recipient is forgotten.

A note is the member's own words, kept with their consent. Written to one person it often
names them ("Hi Frederika!"), so "forget me" empties the note of every consent that named
that recipient alone, while the /why page tells them only a fingerprint is held
(invariant 10); until then the /why page counts those notes among what is held about them,
without their words (the member wrote them for the email, not for a page whose link may be
passed on). A consent that also named other people keeps its note: those are the member's
words to them too, and the /why page says such a note stays.

The words kept with the consent (`consented_words`) hold the note too and go with it.
The consent's preview hash is left as it is (invariant 2): it still proves which words the
member consented to, and an email whose note no longer renders to it is held, never sent
with other words. None is left to send anyway: forgetting cancels every pending email to
the recipient, and a consent that named them alone has no other recipient.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterator

from sqlalchemy import ColumnElement, Connection, and_, func, select, update

from courtois.store.bulk import among, chunked
from courtois.store.tables import consent_recipients, consents, invitations


def clear_notes_to_alone(connection: Connection, digest: str) -> int:
    """Empty the note of each consent behind an invitation to `digest` that named nobody
    else; returns how many notes were emptied. Run under the recipient's lock."""
    consent_of = _consents_of(connection, digest)
    shared = _naming_others(connection, sorted(consent_of), digest)
    return sum(
        connection.execute(update(consents).where(noted).values(note="", words=None)).rowcount
        for noted in _noted(connection, consent_of, set(consent_of) - shared)
    )


def notes_to_alone(connection: Connection, digest: str, shown: Collection[str]) -> int:
    """How many notes are kept with those of the `shown` consents (behind the invitations
    to `digest` the recipient may see) that named nobody else: what "forget me" empties."""
    consent_of = {c: m for c, m in _consents_of(connection, digest).items() if c in shown}
    alone = set(consent_of) - _naming_others(connection, sorted(consent_of), digest)
    return sum(
        connection.execute(select(func.count()).select_from(consents).where(noted)).scalar_one()
        for noted in _noted(connection, consent_of, alone)
    )


def shared_notes(connection: Connection, digest: str) -> int:
    """How many notes are kept with invitations to `digest` whose consent named other
    people too: what "forget me" leaves of the members' words (above)."""
    consent_of = _consents_of(connection, digest)
    shared = _naming_others(connection, sorted(consent_of), digest)
    return sum(
        connection.execute(select(func.count()).select_from(consents).where(noted)).scalar_one()
        for noted in _noted(connection, consent_of, shared)
    )


def _noted(
    connection: Connection, consent_of: dict[str, str], chosen: set[str]
) -> Iterator[ColumnElement[bool]]:
    """Conditions, a chunk of ids at a time, for those of the `chosen` consents that hold
    a note, by each consent's key (member, id): consents live on their member's shard."""
    by_member: dict[str, list[str]] = defaultdict(list)
    for consent_id in chosen:
        by_member[consent_of[consent_id]].append(consent_id)
    for member_id, ids in sorted(by_member.items()):
        for chunk in chunked(connection, sorted(ids)):
            yield and_(
                consents.c.member_id == member_id,
                among(connection, consents.c.id, chunk),
                consents.c.note != "",
            )


def _consents_of(connection: Connection, digest: str) -> dict[str, str]:
    """The member of each consent behind an invitation to `digest`, by consent id."""
    return {
        row.consent_id: row.member_id
        for row in connection.execute(
            select(invitations.c.consent_id, invitations.c.member_id).where(
                invitations.c.recipient_digest == digest
            )
        )
    }


def _naming_others(connection: Connection, consent_ids: list[str], digest: str) -> set[str]:
    """Those of these consents that named someone besides `digest`, found by each
    consent's id, which leads consent_recipients' primary key."""
    found: set[str] = set()
    for chunk in chunked(connection, consent_ids):
        found.update(
            connection.execute(
                select(consent_recipients.c.consent_id)
                .where(
                    among(connection, consent_recipients.c.consent_id, chunk),
                    consent_recipients.c.recipient_digest != digest,
                )
                .distinct()
            ).scalars()
        )
    return found
