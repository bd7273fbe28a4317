"""What the policy is told about a consent, read from a real store (both engines).

A worker's batch asks about a few recipients of consents that may name hundreds each, so
the consent's recipient list is read only as far as the batch's recipients go; the rule
that needs it (the consent names this recipient) must judge those recipients exactly as it
would with the whole list.
"""

from __future__ import annotations

from support import T0, add_members, send_invites

from courtois.domain.messages import MessageKind
from courtois.services.context import Context
from courtois.services.facts import load_consents

EMAILS = [f"friend{i}@example.org" for i in range(12)]


def test_a_consent_read_for_some_recipients_names_those_and_no_others(ctx: Context) -> None:
    add_members(ctx)
    ana = send_invites(ctx, "ana", EMAILS, T0)["consent_id"]
    bruno = send_invites(ctx, "bruno", EMAILS[:2], T0)["consent_id"]
    named = {ctx.digest_email(email) for email in EMAILS}
    asked = {ctx.digest_email(email) for email in (EMAILS[3], EMAILS[1], "stranger@example.org")}
    with ctx.engine.connect() as connection:
        whole = load_consents(connection, [ana, bruno])
        part = load_consents(connection, [ana, bruno], asked)
        nobody = load_consents(connection, [ana], [])
    assert whole[ana].recipients == named
    assert part[ana].recipients == asked & named
    assert part[bruno].recipients == {ctx.digest_email(EMAILS[1])}
    for digest in asked:
        for consent in (ana, bruno):
            kind = MessageKind.INVITATION
            assert part[consent].covers(digest, kind) == whole[consent].covers(digest, kind)
    # Everything but the list is the consent as stored.
    assert nobody[ana].recipients == frozenset()
    assert nobody[ana].preview_hash == whole[ana].preview_hash == part[ana].preview_hash
    assert nobody[ana].given_at == whole[ana].given_at
