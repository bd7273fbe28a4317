"""French pages put a no-break space before ":", ";", "!" and "?" (U+00A0 before ":",
U+202F before the others), as the French emails do: with an ordinary one, a browser may
wrap there and leave the mark alone at the start of a line. Read from pages served over
real HTTP, on both engines."""

from __future__ import annotations

import re
from dataclasses import replace
from html import unescape

import pytest
from member_pages_support import add_member, consent_form, contact_ids, import_some, signed_in
from pages_site import invite_and_deliver, serve
from support import T0, count

from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.store.tables import consents

# A breakable space, then the mark it would leave alone if the line wrapped there.
BREAKABLE = re.compile(r"[ \t\r\n][:;!?]")


def _read(html: str) -> str:
    """What the page shows and says: its text and the attributes read aloud or shown as a
    tip, entities decoded (what is in `<style>` is not text)."""
    html = re.sub(r"<style\b.*?</style>", "", html, flags=re.S)
    said = re.findall(r'\b(?:aria-label|title|placeholder)="([^"]*)"', html)
    return unescape("\n".join([re.sub(r"<[^>]+>", "\n", html), *said]))


def _well_spaced(page: str) -> None:
    assert '<html lang="fr">' in page
    shown = _read(page)
    assert not BREAKABLE.search(shown), BREAKABLE.findall(shown)


def test_the_french_recipient_pages_never_break_before_double_punctuation(ctx: Context) -> None:
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (mail,) = invite_and_deliver(ctx, "lea", ["bo@example.org"])
    with serve(ctx) as site:
        why = site.get(f"/why/{mail.tokens.why}")
        stop = site.get(f"/u/{mail.tokens.unsubscribe}")
        declined = site.post(f"/why/{mail.tokens.why}", data={"action": "decline"})
    assert (why.status_code, stop.status_code, declined.status_code) == (200, 200, 200)
    assert "Ça ne m'intéresse pas\u00a0: nous clôturons cette invitation" in why.text
    assert "Ou n'arrêtez que les invitations de Léa\u00a0:" in stop.text
    for page in (why.text, stop.text, declined.text):
        _well_spaced(page)


@pytest.mark.parametrize("how_many", [1, 2])
def test_the_french_invite_pages_never_break_before_double_punctuation(
    ctx: Context, how_many: int
) -> None:
    """Under strict-eu the consent sentence itself has a ";" (the member sends the text):
    the page shows it with its no-break space, and the form gives it back as shown."""
    add_member(ctx, "lea", locale="fr")
    import_some(ctx, "lea", how_many)
    policy = replace(ctx.settings.policy, profile="strict-eu")
    with signed_in(ctx, "lea", policy=policy) as lea:
        ids = contact_ids(ctx, "lea")
        lea.post("/member/contacts", {"action": "save", "shown": ids, "chosen": ids})
        compose = lea.get("/member/invite")
        preview = lea.post("/member/invite/preview", {"note": "", "locale": "fr"})
        sent = lea.post("/member/invite/send", consent_form(preview.text))
    assert (compose.status_code, preview.status_code, sent.status_code) == (200, 200, 200)
    assert "\u202f; je l" in consent_form(preview.text)["consent_text"]
    assert count(ctx, consents) == 1
    for page in (compose.text, preview.text, sent.text):
        _well_spaced(page)
