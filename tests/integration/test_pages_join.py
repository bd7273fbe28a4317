"""`/join/{token}`: accept (a sent invitation becomes accepted, once) and a 303 to the
platform's sign-up URL carrying the invitation id; the strict-eu share link is this link."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from pages_site import (
    EVERY_PAGE,
    SENT_AT,
    deliver,
    invite_and_deliver,
    ledger_size,
    serve,
    stable_headers,
)
from support import T0, add_members, invitation, ledger_events, send_invites

from courtois.services.context import Context
from courtois.services.members import register_member

BO = "bo@example.com"
LATER = SENT_AT + timedelta(days=2)


def test_join_accepts_once_and_redirects_to_sign_up(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (invitation_id,) = mail.ids
    with serve(ctx) as site:
        site.clock.now = LATER
        response = site.get(f"/join/{mail.tokens.join[0]}")
        assert response.status_code == 303
        assert response.headers["location"] == (
            f"https://agora.test/welcome?lang=en&invitation={invitation_id}"
        )
        for name, value in EVERY_PAGE.items():
            assert response.headers[name] == value
        assert "set-cookie" not in response.headers
        events = ledger_size(ctx)
        again = site.get(f"/join/{mail.tokens.join[0]}")
        assert (again.status_code, again.headers["location"]) == (303, response.headers["location"])
        assert ledger_size(ctx) == events
        # The default target, courtois's own placeholder, shows nothing of the invitation.
        welcome = site.get(f"/welcome?invitation={invitation_id}")
        assert welcome.status_code == 200
        assert "<h1>Joining Agora</h1>" in welcome.text
        assert "accepted" not in welcome.text  # it cannot know: a declined one leads here too
        assert invitation_id not in welcome.text
    row = invitation(ctx, invitation_id)
    assert (row.state, row.answered_at, row.address) == ("accepted", LATER, None)
    moved = [p for e, p in ledger_events(ctx) if e == "invitation.state" and p["to"] == "accepted"]
    assert moved == [
        {
            "invitation": invitation_id,
            "from": "sent",
            "to": "accepted",
            "reason": "the recipient accepted",
        }
    ]


def test_the_configured_sign_up_url_keeps_its_query(ctx: Context) -> None:
    platform = Context(
        ctx.engine, replace(ctx.settings, signup_url="https://platform.example/signup?via=mail")
    )
    add_members(platform)
    (mail,) = invite_and_deliver(platform, "ana", [BO])
    with serve(platform) as site:
        response = site.get(f"/join/{mail.tokens.join[0]}")
    assert response.headers["location"] == (
        f"https://platform.example/signup?via=mail&invitation={mail.ids[0]}"
    )


def test_each_invitation_of_a_digest_has_its_own_join_link(ctx: Context) -> None:
    add_members(ctx)
    send_invites(ctx, "ana", [BO], T0)
    send_invites(ctx, "bruno", [BO], T0)
    (mail,) = deliver(ctx)
    first, second = mail.ids
    with serve(ctx) as site:
        response = site.get(f"/join/{mail.tokens.join[1]}")
    assert response.headers["location"].endswith(f"invitation={second}")
    assert (invitation(ctx, second).state, invitation(ctx, first).state) == ("accepted", "sent")


def test_a_closed_invitation_stays_closed_and_still_leads_to_sign_up(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    with serve(ctx) as site:
        site.post(f"/why/{mail.tokens.why}", data={"action": "decline"})
        events = ledger_size(ctx)
        response = site.get(f"/join/{mail.tokens.join[0]}")
        assert ledger_size(ctx) == events
    assert response.status_code == 303
    assert invitation(ctx, mail.ids[0]).state == "declined"


def test_the_strict_eu_share_link_is_the_join_link(ctx: Context) -> None:
    eu = Context(
        ctx.engine,
        replace(ctx.settings, policy=replace(ctx.settings.policy, profile="strict-eu")),
    )
    add_members(eu)
    (item,) = send_invites(eu, "ana", [BO], T0)["invitations"]
    path = item["share_link"].removeprefix(eu.settings.base_url)
    assert path.startswith("/join/")
    with serve(eu) as site:
        site.clock.now = T0 + timedelta(days=1)
        response = site.get(path)
    assert response.status_code == 303
    assert response.headers["location"].endswith(f"invitation={item['id']}")
    assert invitation(eu, item["id"]).state == "accepted"


def test_the_welcome_page_speaks_the_invitations_language(ctx: Context) -> None:
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (mail,) = invite_and_deliver(ctx, "lea", [BO])
    (invitation_id,) = mail.ids
    english = {"Accept-Language": "en-GB,en;q=0.9"}
    with serve(ctx) as site:
        site.clock.now = LATER
        response = site.get(f"/join/{mail.tokens.join[0]}", headers=english)
        assert response.status_code == 303
        target = response.headers["location"].removeprefix("https://agora.test")
        welcome = site.get(target, headers=english)
        # Without the language /join names, an id (this invitation's or one made up) says
        # nothing: the page is the browser's, the same for both.
        known = site.get(f"/welcome?invitation={invitation_id}", headers=english)
        guessed = site.get(f"/welcome?invitation={invitation_id[:-4]}beef", headers=english)
    assert welcome.status_code == 200
    assert '<html lang="fr">' in welcome.text
    assert "<h1>Rejoindre Agora</h1>" in welcome.text
    assert '<html lang="en">' in known.text
    assert (known.status_code, known.text) == (guessed.status_code, guessed.text)
    assert stable_headers(known) == stable_headers(guessed)
