"""strict-eu's recipient pages tell what happened there: the member sent the invitation
themselves, from their own mailbox, and the platform sent nothing. /why explains that and
dates what the platform knows (when it made the text's personal link); the confirmations
after a stop, a former member's buttons and the "link not valid" page speak of members
inviting through the platform, never of emails it would no longer send. In English and in
French, over real HTTP, on both engines; the balanced profile's wording is unchanged.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from html import unescape

from pages_site import SENT_AT, Delivered, deliver, invite_and_deliver, serve
from support import T0, add_members, by_email, send_invites

from courtois.services.context import Context
from courtois.services.member_erasure import erase_member
from courtois.services.members import register_member
from courtois.web.pages.render import when

BO = "bo@example.com"
CY = "cy@example.com"
DEE = "dee@example.com"
EVE = "eve@example.com"
# When the members shared their texts: the platform made the personal links then.
MADE = SENT_AT + timedelta(hours=1)
LATER = SENT_AT + timedelta(hours=3)


def _strict(ctx: Context) -> Context:
    policy = replace(ctx.settings.policy, profile="strict-eu")
    return Context(ctx.engine, replace(ctx.settings, policy=policy))


def _hand_sent(ctx: Context, member_id: str, email: str) -> tuple[str, str]:
    """The member invites `email` by hand: the why and stop tokens of their text."""
    answer = send_invites(_strict(ctx), member_id, [email], MADE)
    text = by_email(answer)[email]["share_text"]
    (why,) = set(re.findall(r"/why/([A-Za-z0-9_.-]+)", text))
    (stop,) = set(re.findall(r"/u/([A-Za-z0-9_.-]+)", text))
    return why, stop


def _words(html: str) -> str:
    """A page's text as read: entities decoded, every run of spaces (no-break ones too)
    one space."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _said(response: object, status: int = 200) -> str:
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    return _words(str(getattr(response, "text", "")))


def _made(locale: str) -> str:
    return " ".join(when(MADE, locale).split())


def _marie(ctx: Context) -> None:
    register_member(ctx, "marie", "marie@example.com", "Marie", "fr", T0)


def test_why_says_the_member_sent_it_themselves_and_the_platform_nothing(ctx: Context) -> None:
    add_members(ctx)
    _marie(ctx)
    bruno_why, _ = _hand_sent(ctx, "bruno", BO)
    marie_why, _ = _hand_sent(ctx, "marie", CY)
    with serve(_strict(ctx)) as site:
        site.clock.now = LATER
        english_html = site.get(f"/why/{bruno_why}").text
        french_html = site.get(f"/why/{marie_why}").text
    english, french = _words(english_html), _words(french_html)
    assert "<title>Why you got this invitation – Agora</title>" in english_html
    assert (
        "Bruno, a member of Agora, chose your address from their own contacts and sent you "
        "this invitation themselves, from their own mailbox. Agora did not pick you, and "
        "sent you nothing." in english
    )
    assert (
        f"Agora only made the personal link in that message, on {_made('en')}, after the "
        "member had read the exact text it came with and consented to it." in english
    )
    assert "<th>Link made</th>" in english_html
    assert "<th>Sent</th>" not in english_html
    for untrue in ("this email", "asked us to invite you", "exact email"):
        assert untrue not in english
    assert "Pourquoi vous avez reçu cette invitation" in french
    assert (
        "Marie, membre de la plateforme Agora, a choisi votre adresse dans ses propres "
        "contacts, et cette invitation vous vient directement de sa propre messagerie. Ce "
        "n'est pas Agora qui a choisi votre adresse, et Agora ne vous a rien envoyé." in french
    )
    assert (
        f"La plateforme Agora n'a fait que créer le lien personnel de ce message, le "
        f"{_made('fr')}, une fois que le membre avait lu le texte exact qui l'accompagne et y "
        "avait consenti." in french
    )
    assert "<th>Lien créé</th>" in french_html
    assert "<th>Envoi</th>" not in french_html
    for untrue in ("cet e-mail", "nous a demandé de vous inviter", "l'e-mail exact"):
        assert untrue not in french


def _balanced_mail(ctx: Context) -> Delivered:
    """Ana's email to EVE, sent by the platform under the balanced profile."""
    (mail,) = invite_and_deliver(ctx, "ana", [EVE])
    return mail


def test_after_a_stop_strict_eu_says_who_can_no_longer_invite(ctx: Context) -> None:
    """Every confirmation a hand-sent text's links lead to, then the balanced ones from the
    same process: the one-click page, rendered once and kept, is kept apart for each
    profile."""
    add_members(ctx)
    _marie(ctx)
    register_member(ctx, "zoe", "zoe@example.com", "Zoé", "fr", T0)
    mail = _balanced_mail(ctx)
    bruno_why, bruno_stop = _hand_sent(ctx, "bruno", BO)
    ana_why, _ = _hand_sent(ctx, "ana", DEE)
    marie_why, marie_stop = _hand_sent(ctx, "marie", CY)
    _, zoe_stop = _hand_sent(ctx, "zoe", "fred@example.com")
    with serve(_strict(ctx)) as site:
        site.clock.now = LATER
        member = _said(site.post(f"/why/{bruno_why}", data={"action": "stop-member"}))
        everyone = _said(site.post(f"/why/{ana_why}", data={"action": "stop-everyone"}))
        one_click = _said(site.post(f"/u/{bruno_stop}", data={"List-Unsubscribe": "One-Click"}))
        french_member = _said(site.post(f"/u/{marie_stop}", data={"action": "stop-member"}))
        french_everyone = _said(site.post(f"/why/{marie_why}", data={"action": "stop-everyone"}))
        french_click = _said(site.post(f"/u/{zoe_stop}", data={"List-Unsubscribe": "One-Click"}))
    assert "Bruno can no longer invite you through Agora." in member
    assert "They only see that you are unavailable, never why." in member
    for page in (everyone, one_click):
        assert "Invitations stopped" in page
        assert "No member can invite you through Agora any more." in page
        assert "No later invitation can undo this." in page
    for page in (member, everyone, one_click):
        assert "emails" not in page
        assert "unsubscribed" not in page.lower()
    assert "Marie ne pourra plus vous inviter par Agora." in french_member
    for page in (french_everyone, french_click):
        assert "Invitations arrêtées" in page
        assert "Plus aucun membre ne pourra vous inviter par Agora." in page
    for page in (french_member, french_everyone, french_click):
        assert "e-mail" not in page
        assert "désinscription" not in page.lower()

    # The balanced profile, in the same process: its words, as ever.
    with serve(ctx) as site:
        site.clock.now = LATER
        why = site.get(f"/why/{mail.tokens.why}").text
        stopped = _said(site.post(f"/why/{mail.tokens.why}", data={"action": "stop-member"}))
        clicked = _said(
            site.post(f"/u/{mail.tokens.unsubscribe}", data={"List-Unsubscribe": "One-Click"})
        )
    assert "<title>Why you got this email – Agora</title>" in why
    assert "<th>Sent</th>" in why
    assert (
        "Ana, a member of Agora, chose your address from their own contacts and asked us to "
        "invite you. Agora did not pick you." in _words(why)
    )
    assert "They consented to this invitation, after seeing the exact email, on" in _words(why)
    assert "You will get no more emails from Ana through Agora." in stopped
    assert "You are unsubscribed" in clicked
    assert "Agora will send you no more emails, from any member." in clicked
    assert "No member can invite you" not in clicked


def test_a_former_members_text_stops_their_invitations_in_both_languages(
    ctx: Context,
) -> None:
    """The member erased after sending their text: the pages say "a former member", and
    what stopping them does under strict-eu."""
    add_members(ctx)
    _marie(ctx)
    bruno_why, bruno_stop = _hand_sent(ctx, "bruno", BO)
    marie_why, marie_stop = _hand_sent(ctx, "marie", CY)
    erase_member(ctx, "bruno", MADE + timedelta(minutes=30))
    erase_member(ctx, "marie", MADE + timedelta(minutes=30))
    with serve(_strict(ctx)) as site:
        site.clock.now = LATER
        why = _said(site.get(f"/why/{bruno_why}"))
        stop = _said(site.get(f"/u/{bruno_stop}"))
        done = _said(site.post(f"/u/{bruno_stop}", data={"action": "stop-member"}))
        french_why = _said(site.get(f"/why/{marie_why}"))
        french_stop = _said(site.get(f"/u/{marie_stop}"))
        french_done = _said(site.post(f"/why/{marie_why}", data={"action": "stop-member"}))
    assert (
        "A former member of Agora chose your address from their own contacts and sent you "
        "this invitation themselves, from their own mailbox. Agora did not pick you, and "
        "sent you nothing." in why
    )
    assert (
        "Stop invitations from this former member: they can never invite you again through "
        "Agora. Stop invitations from this former member" in why
    )
    assert "Stop invitations from this former member" in stop
    assert "This former member can no longer invite you through Agora." in done
    for page in (why, stop, done):
        assert "Stop emails" not in page
        assert "no more emails" not in page
    assert (
        "Un ancien membre de la plateforme Agora a choisi votre adresse dans ses propres "
        "contacts, et cette invitation vous vient directement de sa propre messagerie."
        in french_why
    )
    assert "Bloquer cet ancien membre : cette personne ne pourra plus jamais" in french_why
    assert "Bloquer cet ancien membre" in french_stop
    assert "Cet ancien membre ne pourra plus vous inviter par Agora." in french_done
    assert "e-mails" not in french_done


def test_an_email_sent_before_the_switch_to_strict_eu_says_what_stopping_does_now(
    ctx: Context,
) -> None:
    """Emails the platform sent before the operator chose strict-eu: their pages still say
    an email came (it did), and what a stop does now that no email goes out."""
    add_members(ctx)
    register_member(ctx, "cy", "cy@example.org", "Cy", "en", T0)
    alone = invite_and_deliver(ctx, "cy", [BO, DEE])
    assert len(alone) == 2
    later = T0 + timedelta(days=15)
    for member in ("ana", "bruno"):
        send_invites(ctx, member, [BO, DEE], later)
    digests = {mail.outgoing.to: mail for mail in deliver(ctx, later + timedelta(minutes=10))}
    assert digests[BO].outgoing.member_names == ("Ana", "Bruno")
    with serve(_strict(ctx)) as site:
        site.clock.now = later + timedelta(hours=1)
        path = f"/u/{digests[BO].tokens.unsubscribe}"
        named = _said(site.post(path, data={"action": "stop-members"}))
        declined = _said(site.post(f"/why/{alone[0].tokens.why}", data={"action": "decline"}))
        erase_member(ctx, "ana", later + timedelta(hours=2))
        erase_member(ctx, "bruno", later + timedelta(hours=2))
        path = f"/u/{digests[DEE].tokens.unsubscribe}"
        former = _said(site.post(path, data={"action": "stop-members"}))
        why = _said(site.get(f"/why/{digests[DEE].tokens.why}"))
    assert "Ana and Bruno can no longer invite you through Agora." in named
    assert "These 2 former members can no longer invite you through Agora." in former
    assert (
        "A member could still invite you later. To stop that too, stop all invitations "
        "through Agora." in declined
    )
    for page in (named, former, declined):
        assert "emails" not in page
    assert "Why you got this email" in why


def test_a_link_not_valid_under_strict_eu_points_to_the_invitation_not_an_email(
    ctx: Context,
) -> None:
    with serve(_strict(ctx)) as site:
        english = _said(site.get("/why/not-a-token"), 404)
        french = _said(site.get("/u/not-a-token", headers={"Accept-Language": "fr"}), 404)
        browsed = _said(site.get("/nowhere", headers={"Accept": "text/html"}), 404)
    with serve(ctx) as site:
        balanced = _said(site.get("/join/not-a-token"), 404)
    for page in (english, browsed):
        assert (
            "To stop invitations through Agora, use the link in the most recent invitation a "
            "member sent you." in page
        )
        assert "email you received from us" not in page
    assert (
        "Pour arrêter les invitations par Agora, utilisez le lien de la plus récente "
        "invitation qu'un membre vous a envoyée." in french
    )
    assert "To stop emails, use the link in the most recent email you received from us." in (
        balanced
    )
