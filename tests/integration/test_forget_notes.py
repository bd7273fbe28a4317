"""The member's note after "forget me" and after an opt-out (invariants 2, 10 and 11).

"Forget me" empties the note of each consent that named that recipient alone (it often
names them, and the /why page says only a fingerprint is held); a note written to several
people stays, and the /why page says so. An opt-out keeps the note. Either way the
consent's preview hash stays, and nothing leaves with other words than consented to.
Over real HTTP, on both engines.
"""

from __future__ import annotations

from datetime import timedelta

from pages_site import SENT_AT, deliver, serve
from support import T0, add_members, messages_of, rows, send_invites

from courtois.delivery.transport import MemoryTransport
from courtois.services.context import Context
from courtois.services.listings import consent_detail
from courtois.services.member_export import export_member
from courtois.services.worker import run_pass
from courtois.store.tables import consents

FRED, CY, OLGA = "frederika@example.org", "cy@example.org", "olga@example.org"
ALONE = "Hi Frederika Forgetmenot!"
TOGETHER = "Frederika and Cy, come along!"
LATER = SENT_AT + timedelta(hours=3)
REMINDERS_DUE = SENT_AT + timedelta(days=20)
SHARED_NOTE = "1 note that a member wrote to you and to other people at once"


def consent_of(ctx: Context, member_id: str) -> tuple[str, str, str]:
    """(id, note, preview hash) of the member's one consent."""
    (row,) = rows(ctx, consents, consents.c.member_id == member_id)
    return row.id, row.note, row.preview_hash


def test_forget_me_empties_the_note_written_to_them_alone(ctx: Context) -> None:
    add_members(ctx)
    ana = send_invites(ctx, "ana", [FRED], T0, reminders=1, note=ALONE)
    send_invites(ctx, "bruno", [FRED, CY], T0, reminders=1, note=TOGETHER)
    mails = {mail.outgoing.to: mail for mail in deliver(ctx)}
    assert mails[FRED].outgoing.kind == "digest"
    ana_consent, _, ana_hash = consent_of(ctx, "ana")
    bruno_consent, _, bruno_hash = consent_of(ctx, "bruno")
    with serve(ctx) as site:
        site.clock.now = LATER
        before = site.get(f"/why/{mails[FRED].tokens.why}").text
        forgotten = site.post(f"/why/{mails[FRED].tokens.why}", data={"action": "forget"})
        assert forgotten.status_code == 200
        after = site.get(f"/why/{mails[FRED].tokens.why}").text
        cy_page = site.get(f"/why/{mails[CY].tokens.why}").text

    # Ana's words to Frederika alone are gone, wherever Ana reads them; the hash she
    # consented to stays.
    assert consent_of(ctx, "ana") == (ana_consent, "", ana_hash)
    # The words kept to send (which hold the note) go with it; Bruno's stay.
    assert [c.words for c in rows(ctx, consents, consents.c.id == ana_consent)] == [None]
    (bruno_row,) = rows(ctx, consents, consents.c.id == bruno_consent)
    assert TOGETHER in (bruno_row.words or "")
    assert consent_detail(ctx, ana_consent)["note"] == ""
    assert "frederika" not in repr(export_member(ctx, "ana", LATER)).lower()
    # The member's own export gives the words consented to while they are kept, and
    # none once they are gone.
    assert export_member(ctx, "ana", LATER)["consents"][0]["previewed"] is None
    kept = export_member(ctx, "bruno", LATER)["consents"][0]["previewed"]
    assert TOGETHER in kept["invitation"]["text"]
    assert TOGETHER in kept["reminder"]["text"]
    # Bruno wrote to Cy too: his note stays, and Frederika's page says it does.
    assert consent_of(ctx, "bruno") == (bruno_consent, TOGETHER, bruno_hash)
    for page in (before, after, cy_page):
        assert SHARED_NOTE in page
        assert "so it stays even if you ask us to forget your address" in page

    # Nothing is left to send to Frederika; Cy's reminder leaves with Bruno's note, as
    # consented, and nothing is held for words that changed.
    (invitation_id,) = [item["id"] for item in ana["invitations"]]
    assert {m.kind: m.state for m in messages_of(ctx, invitation_id)}["reminder"] == "cancelled"
    transport = MemoryTransport()
    report = run_pass(ctx, REMINDERS_DUE, transport)
    assert [(o.to, o.kind) for o in transport.sent] == [(CY, "reminder")]
    assert "Frederika and Cy, come along!" in transport.sent[0].text
    assert report.failed == 0


def test_a_note_to_several_people_is_not_mentioned_when_it_is_empty(ctx: Context) -> None:
    add_members(ctx)
    send_invites(ctx, "bruno", [FRED, CY], T0)
    mails = {mail.outgoing.to: mail for mail in deliver(ctx)}
    with serve(ctx) as site:
        page = site.get(f"/why/{mails[FRED].tokens.why}").text
    assert "note that" not in page


def test_an_opt_out_keeps_the_note_and_sends_nothing_more(ctx: Context) -> None:
    """An opt-out objects to the mail, not to the member's record of the words they
    consented to; emptied, that note would also tell the member that this recipient opted
    out, which a bounce would not (invariant 11)."""
    add_members(ctx)
    note = "Dear Olga, see you there"
    send_invites(ctx, "ana", [OLGA], T0, reminders=1, note=note)
    (mail,) = deliver(ctx)
    consent_id, _, preview = consent_of(ctx, "ana")
    with serve(ctx) as site:
        site.clock.now = LATER
        done = site.post(f"/why/{mail.tokens.why}", data={"action": "stop-everyone"})
        assert done.status_code == 200
    assert consent_of(ctx, "ana") == (consent_id, note, preview)
    (invitation_id,) = mail.ids
    assert {m.kind: m.state for m in messages_of(ctx, invitation_id)}["reminder"] == "cancelled"
    transport = MemoryTransport()
    assert run_pass(ctx, REMINDERS_DUE, transport).failed == 0
    assert transport.sent == []
