"""Member pages, inviting: the preview is the exact email (subject, text, HTML in a sandboxed
frame, every follow-up, the reminder only if ticked, unticked by default) in the chosen
language, with its hash; consenting sends `invite` with that hash, the sentence shown, the
client's address and user agent; a stale preview, a changed choice or an unticked box is
shown again with nothing sent; a reload sends nothing twice. Over real HTTP, both engines.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from html import unescape

import pytest
from member_pages_support import (
    MemberBrowser,
    add_member,
    consent_form,
    contact_ids,
    import_some,
    signed_in,
)
from page_reading import ERROR, box_of, title_of
from support import T0, count, left_in_doubt, rows

from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.store.tables import consents, invitations

NOTE = 'Come & join <us>, "friends"!\nSee you there.'


def _choose_first(member: MemberBrowser, how_many: int) -> list[int]:
    ids = contact_ids(member.ctx, member.member_id)
    member.post("/member/contacts", {"action": "save", "shown": ids, "chosen": ids[:how_many]})
    return ids[:how_many]


def _preview(member: MemberBrowser, **fields: str) -> str:
    response = member.post("/member/invite/preview", {"note": "", "locale": "en", **fields})
    assert response.status_code == 200, response.text
    return response.text


def _pre(html: str, attributes: str = "") -> list[str]:
    found = re.findall(rf"<pre{attributes}>(.*?)</pre>", html, re.DOTALL)
    return [unescape(text) for text in found]


def _frames(html: str) -> list[str]:
    return [unescape(doc) for doc in re.findall(r'<iframe sandbox="" srcdoc="([^"]*)"', html)]


def test_the_compose_form_has_the_reminder_unticked(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with signed_in(ctx) as ana:
        assert "You have not chosen anyone to invite." in ana.get("/member/invite").text
        _choose_first(ana, 2)
        form = ana.get("/member/invite").text
    assert "To the 2 people you chose" in form
    assert "person-000@example.org" in form
    assert "person-002@example.org" not in form
    reminder = re.search(r'<input type="checkbox" name="reminders" value="1"[^>]*>', form)
    assert reminder
    assert "checked" not in reminder.group(0)
    assert '<option value="en" selected>' in form


def test_the_preview_is_the_exact_email_and_its_hash(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with signed_in(ctx) as ana:
        expected = preview_invitations(ana.ctx, "ana", 2, NOTE, "fr", 0)
        _choose_first(ana, 2)
        response = ana.post("/member/invite/preview", {"note": NOTE, "locale": "fr"})
    page = response.text
    assert response.status_code == 200
    # The email is French on an English page: its words say so.
    assert f'<strong lang="fr">{expected.subject}</strong>' in unescape(page)
    assert _pre(page, ' lang="fr"') == [expected.text]
    assert _frames(page) == [expected.html]
    assert f'<code id="preview-hash">{expected.preview_hash}</code>' in page
    assert "Nothing: someone who does not answer gets no other email" in page
    form = consent_form(page)
    assert form["preview_hash"] == expected.preview_hash
    assert form["consent_text"] == expected.consent_text
    # The consent sentence is the member's own, in the page's language: no mark.
    consent = re.search(r'<span id="consent-text">(.*?)</span>', page)
    assert consent
    assert unescape(consent.group(1)) == expected.consent_text
    assert form["note"] == NOTE
    assert form["locale"] == "fr"
    assert "reminders" not in form
    assert re.search(
        r'<input type="checkbox" id="consent" name="consent" value="yes" required>', page
    )
    # The email keeps its own look in the frame: its inline styles are allowed by hash only.
    policy = response.headers["content-security-policy"]
    assert "'unsafe-hashes'" in policy
    assert "'unsafe-inline'" not in policy
    assert "script-src" not in policy
    assert "default-src 'none'" in policy


def test_a_ticked_reminder_is_listed_and_named_in_the_consent(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        expected = preview_invitations(ana.ctx, "ana", 1, "", "en", 1)
        _choose_first(ana, 1)
        page = _preview(ana, reminders="1")
    assert len(expected.follow_ups) == 1
    assert _pre(page) == [expected.text, expected.follow_ups[0].text]
    assert _frames(page) == [expected.html, expected.follow_ups[0].html]
    assert "one reminder, at least 14 days later" in page
    form = consent_form(page)
    assert form["reminders"] == "1"
    assert form["preview_hash"] == expected.preview_hash
    assert "one reminder, at least 14 days later" in form["consent_text"]


def test_the_consent_sentence_is_in_the_members_language_not_the_emails(ctx: Context) -> None:
    """Ana reads English and writes to French speakers; Marie the other way round: each
    agrees to a sentence in their own language, and the consent keeps that sentence."""
    add_member(ctx, "ana", "en")
    add_member(ctx, "marie", "fr")
    import_some(ctx, "ana", 1)
    import_some(ctx, "marie", 1)
    sentences = {}
    for member_id, page_locale, email_locale, words in (
        ("ana", "en", "fr", "I ask Agora to send this invitation, in my name, to the person"),
        ("marie", "fr", "en", "Je demande à Agora d'envoyer cette invitation, en mon nom, à la"),
    ):
        with signed_in(ctx, member_id) as member:
            _choose_first(member, 1)
            page = _preview(member, locale=email_locale)
            assert f'<html lang="{page_locale}">' in page
            assert f'<pre lang="{email_locale}">' in page
            shown = unescape(re.search(r'<span id="consent-text">(.*?)</span>', page).group(1))
            assert shown.startswith(words)
            form = consent_form(page)
            assert (form["consent_text"], form["locale"]) == (shown, email_locale)
            response = member.post("/member/invite/send", form)
            assert response.status_code == 200, response.text
        sentences[member_id] = shown
    assert {(c.member_id, c.text_shown, c.locale) for c in rows(ctx, consents)} == {
        ("ana", sentences["ana"], "fr"),
        ("marie", sentences["marie"], "en"),
    }


def test_consenting_invites_with_the_hash_the_sentence_and_the_client(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with signed_in(ctx) as ana:
        chosen = _choose_first(ana, 2)
        form = consent_form(_preview(ana, note=NOTE))
        response = ana.post("/member/invite/send", form, headers={"User-Agent": "Member/1.0"})
        assert response.status_code == 200, response.text
        again = ana.post("/member/invite/send", form, headers={"User-Agent": "Member/1.0"})
    assert "Invitations recorded" in response.text
    assert "person-000@example.org" in response.text
    assert '<th><span class="visually-hidden">Action</span></th>' in response.text
    assert "Your invitations leave on March 2, 2026, 9:10" in response.text
    (consent,) = rows(ctx, consents)
    assert consent.preview_hash == form["preview_hash"]
    assert consent.text_shown == form["consent_text"]
    assert consent.ip == "127.0.0.1"
    assert consent.user_agent == "Member/1.0"
    assert consent.reminders == 0
    assert consent.given_at == T0
    assert sorted(r.state for r in rows(ctx, invitations)) == ["scheduled", "scheduled"]
    # The choice starts again from nobody; the reload showed the same answer, sent nothing.
    assert contact_ids(ctx, "ana", selected=True) == []
    assert set(chosen) <= set(contact_ids(ctx, "ana", selected=False))
    assert again.status_code == 200
    assert "Invitations recorded" in again.text
    assert count(ctx, consents) == 1
    assert count(ctx, invitations) == 2


def test_an_unticked_box_sends_nothing(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        form = consent_form(_preview(ana))
        del form["consent"]
        response = ana.post("/member/invite/send", form)
    assert response.status_code == 422
    assert "tick the box to agree" in response.text
    assert consent_form(response.text)["preview_hash"] == form["preview_hash"]
    assert count(ctx, consents) == 0


def test_what_keeps_the_invitation_from_leaving_is_shown_as_an_error(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        too_long = ana.post("/member/invite/preview", {"note": "x" * 1001, "locale": "en"})
        form = consent_form(_preview(ana))
        del form["consent"]
        unticked = ana.post("/member/invite/send", form)
        shown = _preview(ana)
    assert too_long.status_code == 422
    assert box_of(too_long.text, "The note is too long") == ERROR
    assert box_of(unticked.text, "Nothing was sent: tick the box") == ERROR
    assert title_of(too_long.text) == title_of(unticked.text) == "Error: Invite – Agora"
    assert title_of(shown) == "Invite – Agora"
    assert 'role="alert"' not in shown


@pytest.mark.parametrize(
    ("locale", "error"),
    [
        ("en", "The note is too long (1,000 characters at most) or holds characters that"),
        ("fr", "Le mot est trop long (1 000 caractères au plus) ou contient des"),
    ],
)
def test_a_note_with_a_direction_override_is_refused_in_the_pages_language(
    ctx: Context, locale: str, error: str
) -> None:
    """An override would make words or a link of the note read reversed in the email: the
    preview is refused with the note's error in the member's language, and a consent form
    posted with one (a forged note) sends nothing. The browser's user agent is kept as
    evidence without what does not print, never refused: the member could not change it."""
    add_member(ctx, locale=locale)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        form = consent_form(_preview(ana, locale=locale))
        refused = [
            ana.post("/member/invite/preview", {"note": note, "locale": locale})
            for note in ("\u202eevil", "see \u2067gro.live\u2069")
        ]
        forged = ana.post("/member/invite/send", {**form, "note": "\u202eevil"})
        assert count(ctx, consents) == 0
        # A UTF-8 override in the header, which the server reads as Latin-1 (C1 and all).
        header = {"User-Agent": b"Member/1.0 \xe2\x80\xaeevil"}
        sent = ana.post("/member/invite/send", form, headers=header)
    for response in (*refused, forged):
        assert response.status_code == 422
        assert box_of(unescape(response.text), error) == ERROR
    assert sent.status_code == 200, sent.text
    (consent,) = rows(ctx, consents)
    assert consent.user_agent == "Member/1.0 \u00e2\u00aeevil"


def test_a_stale_preview_is_shown_again_instead_of_sending(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        old = consent_form(_preview(ana))
        # The member renames themself on the platform: the email would now say another name.
        register_member(ctx, "ana", "ana@members.example", "Ana Lima-Souza", "en", T0)
        stale = ana.post("/member/invite/send", old)
        assert stale.status_code == 409
        assert count(ctx, consents) == 0
        assert "The email changed since you saw it, so nothing was sent." in stale.text
        fresh = consent_form(stale.text)
        expected = preview_invitations(ana.ctx, "ana", 1, "", "en", 0)
        assert fresh["preview_hash"] == expected.preview_hash != old["preview_hash"]
        assert "Ana Lima-Souza" in _pre(stale.text)[0]
        sent = ana.post("/member/invite/send", fresh)
    assert sent.status_code == 200
    (consent,) = rows(ctx, consents)
    assert consent.preview_hash == expected.preview_hash


@pytest.mark.parametrize("change", ["language", "name"])
def test_a_repeated_send_shows_what_was_recorded_after_the_words_changed(
    ctx: Context, change: str
) -> None:
    """Marie (French) sent; then her language (so the consent sentence's) or her name (so
    the email's) changed, she chose the same person again and the browser posts the same
    form again: it was recorded, so the page shows that, not a new preview saying that
    nothing was sent (invariant 8)."""
    add_member(ctx, "marie", "fr")
    import_some(ctx, "marie", 2)
    with signed_in(ctx, "marie") as marie:
        _choose_first(marie, 1)
        form = consent_form(_preview(marie, locale="fr"))
        first = marie.post("/member/invite/send", form)
        assert first.status_code == 200, first.text
        if change == "language":
            register_member(ctx, "marie", "marie@members.example", "Ana Lima", "en", T0)
        else:
            register_member(ctx, "marie", "marie@members.example", "Marie Curie", "fr", T0)
        _choose_first(marie, 1)
        again = marie.post("/member/invite/send", form)
    assert again.status_code == 200, again.text
    (consent,) = rows(ctx, consents)
    assert f"/member/consents/{consent.id}/revoke" in again.text
    assert count(ctx, invitations) == 1
    # What she chose anew was not what the old form invited: it stays chosen.
    assert len(contact_ids(ctx, "marie", selected=True)) == 1


def test_a_form_posted_again_shows_each_invitation_as_it_is_now(ctx: Context) -> None:
    """Ana sends, withdraws the invitation, chooses the same person again and the browser
    posts the old form again (the back button): the page shows the first answer with the
    invitation withdrawn, not leaving with a button to withdraw it, and her new choice
    stays, for a preview and a consent of its own."""
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        chosen = _choose_first(ana, 1)
        form = consent_form(_preview(ana))
        first = ana.post("/member/invite/send", form)
        assert "Your invitations leave on" in first.text
        (invitation,) = rows(ctx, invitations)
        withdrawn = ana.post(f"/member/invitations/{invitation.id}/withdraw", {})
        assert withdrawn.status_code == 303, withdrawn.text
        reloaded = ana.post("/member/invite/send", form)
        assert _choose_first(ana, 1) == chosen
        again = ana.post("/member/invite/send", form)
    for page in (reloaded, again):
        assert page.status_code == 200, page.text
        assert "Invitations recorded" in page.text
        assert "withdrawn" in page.text
        assert "leave on" not in page.text
        assert f"/member/invitations/{invitation.id}/withdraw" not in page.text
    assert [r.state for r in rows(ctx, invitations)] == ["withdrawn"]
    assert contact_ids(ctx, "ana", selected=True) == chosen


def test_a_form_posted_again_shows_an_email_in_doubt_as_uncertain(ctx: Context) -> None:
    """The browser posts the sent form again after a worker was killed handing the email
    to the mail server: the page shows the delivery as uncertain, not as leaving later,
    and offers no withdrawal (it may be in the recipient's inbox)."""
    add_member(ctx)
    import_some(ctx, "ana", 1)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        form = consent_form(_preview(ana))
        first = ana.post("/member/invite/send", form)
        (invitation,) = rows(ctx, invitations)
        assert f"/member/invitations/{invitation.id}/withdraw" in first.text
        left_in_doubt(ctx, invitation.id, T0 + timedelta(minutes=30))
        again = ana.post("/member/invite/send", form)
    assert again.status_code == 200, again.text
    shown = unescape(again.text)
    assert "delivery uncertain: the email may have left; the platform is checking" in shown
    assert "leaves later" not in shown
    assert f"/member/invitations/{invitation.id}/withdraw" not in again.text
    assert [r.state for r in rows(ctx, invitations)] == ["scheduled"]


def test_a_changed_choice_is_shown_again_instead_of_sending(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        form = consent_form(_preview(ana))
        _choose_first(ana, 2)  # in another tab, say
        response = ana.post("/member/invite/send", form)
    assert response.status_code == 409
    assert "Whom you chose changed since you saw the preview" in response.text
    assert "To the 2 people you chose" in response.text
    assert count(ctx, consents) == 0


def test_under_strict_eu_the_member_gets_the_link_and_text_to_send(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 1)
    policy = replace(ctx.settings.policy, profile="strict-eu")
    with signed_in(ctx, policy=policy) as ana:
        _choose_first(ana, 1)
        response = ana.post("/member/invite/send", consent_form(_preview(ana)))
    assert response.status_code == 200
    link = re.search(r"<code>(http://127\.0\.0\.1:\d+/join/[^<]+)</code>", response.text)
    assert link, response.text
    share = re.search(r"<textarea id=\"share-[^\"]+\"[^>]*>(.*?)</textarea>", response.text, re.S)
    assert share
    assert unescape(link.group(1)) in unescape(share.group(1))
    assert "to send yourself, with your personal link" in response.text
    assert [r.state for r in rows(ctx, invitations)] == ["sent"]


def test_under_strict_eu_the_pages_show_the_text_the_member_sends_and_no_reminder(
    ctx: Context,
) -> None:
    """The member is shown, and consents to, the text they will send from their own
    mailbox; no reminder is offered, since none could be sent, and a posted one is refused
    with nothing written."""
    add_member(ctx)
    import_some(ctx, "ana", 2)
    policy = replace(ctx.settings.policy, profile="strict-eu")
    with signed_in(ctx, policy=policy) as ana:
        _choose_first(ana, 2)
        form = ana.get("/member/invite").text
        assert 'name="reminders"' not in form
        refused = ana.post("/member/invite/preview", {"note": "", "locale": "en", "reminders": "1"})
        assert refused.status_code == 422
        assert "Agora sends no reminder: the people you invite hear only from you." in (
            refused.text
        )
        expected = preview_invitations(ana.ctx, "ana", 2, "", "en", 0)
        page = _preview(ana)
        sent = ana.post("/member/invite/send", consent_form(page)).text
    assert count(ctx, consents) == 1
    assert "The text you will send yourself, exactly" in page
    assert "The email, exactly as it will be sent" not in page
    assert _pre(page) == [expected.text]
    assert _frames(page) == []  # the member sends no HTML
    assert "Agree and get the links" in page
    assert "Agree and send" not in page
    assert "nothing leaves for" not in page
    assert "Nothing from Agora: it sends no email to the people you invite" in page
    assert consent_form(page)["consent_text"] == expected.consent_text
    assert "record my invitation to the 2 people I chose" in expected.consent_text
    shares = [
        unescape(text)
        for text in re.findall(r'<textarea id="share-[^"]+"[^>]*>(.*?)</textarea>', sent, re.S)
    ]
    assert len(shares) == 2
    # With each text, the subject of the email the member sends: the one previewed.
    subjects = re.findall(r'<input type="text" id="subject-[^"]+" value="([^"]*)"', sent)
    assert [unescape(subject) for subject in subjects] == [expected.subject] * 2
    assert f"<strong>{expected.subject}</strong>" in page
    assert "Subject of the email you send" in sent
    for text in shares:
        assert re.sub(r"/(join|why|u)/[A-Za-z0-9_.-]+", r"/\1/TOKEN", text) == re.sub(
            r"\{token:[a-z]+\}", "TOKEN", expected.text
        )
        assert "Stop these emails" not in text
        assert "from their own mailbox" in " ".join(text.split())


def test_a_policy_allowing_no_reminder_offers_none_and_refuses_one_in_words(
    ctx: Context,
) -> None:
    """`reminder_cap = 0`: the compose form has no reminder box, and a reminder posted
    anyway (preview or send) is answered with why, not a generic error, with nothing
    written."""
    add_member(ctx)
    import_some(ctx, "ana", 2)
    policy = replace(ctx.settings.policy, reminder_cap=0)
    said = "Agora sends no reminder: the people you invite get your invitation once"
    with signed_in(ctx, policy=policy) as ana:
        _choose_first(ana, 1)
        form = ana.get("/member/invite").text
        assert 'name="reminders"' not in form
        assert "Send one reminder" not in form
        refused = ana.post("/member/invite/preview", {"note": "", "locale": "en", "reminders": "1"})
        assert refused.status_code == 422
        assert said in refused.text
        assert "This could not be previewed" not in refused.text
        assert 'name="reminders"' not in refused.text
        page = _preview(ana)
        assert "Nothing: someone who does not answer gets no other email" in page
        sent = ana.post("/member/invite/send", {**consent_form(page), "reminders": "1"})
        assert sent.status_code == 422
        assert said in sent.text
        assert count(ctx, consents) == 0
        done = ana.post("/member/invite/send", consent_form(page))
    assert done.status_code == 200, done.text
    (consent,) = rows(ctx, consents)
    assert consent.reminders == 0


def test_words_in_another_language_than_the_pages_say_which(ctx: Context) -> None:
    add_member(ctx)
    register_member(ctx, "lea", "lea@members.example", "Léa", "fr", T0)
    import_some(ctx, "ana", 2)
    import_some(ctx, "lea", 2)
    with signed_in(ctx) as ana:
        _choose_first(ana, 1)
        english_form = ana.get("/member/invite").text
        same = _preview(ana, reminders="1")
        other = _preview(ana, locale="fr", reminders="1")
    with signed_in(ctx, "lea") as lea:
        _choose_first(lea, 1)
        french_form = lea.get("/member/invite").text
    # Each language's own name, in that language, in the language menu.
    assert '<option value="en" selected>English</option>' in english_form
    assert '<option value="fr" lang="fr">Français</option>' in english_form
    assert '<option value="en" lang="en">English</option>' in french_form
    assert '<option value="fr" selected>Français</option>' in french_form
    # An English email on an English page needs no mark; a French one has it on each of its
    # texts, and its frames are documents in French.
    assert ' lang="' not in same.split('id="preview"', 1)[1]
    marked = other.split('id="preview"', 1)[1]
    assert len(re.findall(r'<strong lang="fr">', marked)) == 2  # the email's and reminder's
    assert len(_pre(other, ' lang="fr"')) == 2
    # The consent sentence is the member's, in the page's language: no mark.
    assert '<span id="consent-text">' in marked
    frames = _frames(other)
    assert len(frames) == 2
    assert all('<html lang="fr">' in frame for frame in frames)
