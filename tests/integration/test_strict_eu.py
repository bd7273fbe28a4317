"""strict-eu: the platform emails no non-member; the member gets a personal link and a
ready-to-send text, and the invitation is still tracked (acceptance, expiry, opt-outs)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from support import all_stored_text, counts

from conftest import T0
from courtois.delivery.render import (
    JOIN_SLOT,
    UNSUBSCRIBE_SLOT,
    WHY_SLOT,
    Rendered,
    preview_hash,
)
from courtois.delivery.transport import MemoryTransport
from courtois.domain.contacts import ContactInput
from courtois.domain.errors import NoReminderUnderStrictEu
from courtois.services.contacts import import_contacts
from courtois.services.context import Context
from courtois.services.invitations import ConsentInput, InviteRequest, invite
from courtois.services.members import register_member
from courtois.services.previews import preview_invitations
from courtois.services.recipients import mark_joined
from courtois.services.worker import run_pass
from courtois.store.tables import invitations, messages
from courtois.tokens import Scope, read_token


def strict(ctx: Context) -> Context:
    policy = replace(ctx.settings.policy, profile="strict-eu")
    return Context(ctx.engine, replace(ctx.settings, policy=policy))


def test_no_email_a_personal_link_and_tracking(ctx: Context) -> None:
    eu = strict(ctx)
    register_member(eu, "ana", "ana@members.example", "Ana", "en", T0)
    preview = preview_invitations(eu, "ana", 1, "", None, 0)
    request = InviteRequest(
        "ana",
        ("bo@example.org",),
        "",
        None,
        0,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    (item,) = invite(eu, request, T0)["invitations"]
    assert item["status"] == "sent"
    verdicts = {v["rule"]: v["outcome"] for v in item["decision"]["verdicts"]}
    assert verdicts["strict-eu-no-email"] == "deny"
    token = item["share_link"].rsplit("/join/", 1)[1]
    assert read_token(eu.settings.secret, Scope.JOIN, token) == item["id"]
    assert item["share_link"] in item["share_text"] or token in item["share_text"]

    transport = MemoryTransport()
    run_pass(eu, T0 + timedelta(minutes=11), transport)
    assert transport.sent == []
    with eu.engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(messages)).scalar_one() == 0
        address = connection.execute(select(invitations.c.address)).scalar_one()
    assert address is None  # nothing to send, so nothing kept

    assert mark_joined(eu, eu.digest_email("bo@example.org"), T0 + timedelta(days=2)) == {
        "accepted": 1,
        "blocked": 0,
    }


# What a platform-sent email says, and is untrue of a text the member sends themselves.
PLATFORM_SENT = {
    "en": (
        "asked Agora to send",
        "sends invitations only when a member asks",
        "This is the only email you will get",
        "Stop these emails",
        "what we hold about you",
        "delivering this invitation",
        "our legitimate interest",
    ),
    "fr": (
        "vous écrit à sa demande",
        "il n'envoie d'invitation qu'à la demande",
        "C'est le seul e-mail",
        "Ne plus recevoir ces e-mails",
        "ce que nous savons de vous",
        "remettre cette invitation",
        "notre intérêt légitime",
    ),
}
OWN_MAILBOX = {"en": "from their own mailbox", "fr": "de sa propre messagerie"}
NO_EMAIL = {"en": "it sends you no email", "fr": "ne vous envoie aucun e-mail"}


def as_previewed(text: str) -> str:
    """A hand-sent text with its links' tokens back to the preview's placeholders."""
    text = re.sub(r"/join/[A-Za-z0-9_.-]+", "/join/" + JOIN_SLOT, text)
    text = re.sub(r"/why/[A-Za-z0-9_.-]+", "/why/" + WHY_SLOT, text)
    return re.sub(r"/u/[A-Za-z0-9_.-]+", "/u/" + UNSUBSCRIBE_SLOT, text)


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_the_member_previews_and_consents_to_the_text_they_send(ctx: Context, locale: str) -> None:
    """Invariant 2 under strict-eu: what the member sends is the text they previewed, and it
    is true coming from their mailbox; the sentence they tick says what they agree to."""
    eu = strict(ctx)
    register_member(eu, "ana", "ana@members.example", "Ana", locale, T0)
    agreed = {
        "en": ("personal link", "myself, from my own mailbox", "sends them no email", "retention"),
        "fr": ("lien personnel", "moi-même, depuis ma propre messagerie", "aucun e-mail", "règles"),
    }
    for emails in (("bo@example.org",), ("cy@example.org", "di@example.org")):
        preview = preview_invitations(eu, "ana", len(emails), "Hi!", None, 0)
        consent = preview.consent_text
        assert "send this invitation" not in consent
        assert "d'envoyer cette invitation" not in consent
        assert all(word in consent for word in agreed[locale]), consent
        assert preview.follow_ups == ()
        request = InviteRequest(
            "ana", emails, "Hi!", None, 0, preview.preview_hash, ConsentInput(consent)
        )
        items = invite(eu, request, T0)["invitations"]
        assert [item["status"] for item in items] == ["sent"] * len(emails)
        for item in items:
            assert as_previewed(item["share_text"]) == preview.text
            text = " ".join(item["share_text"].split())  # as read, not as wrapped
            assert OWN_MAILBOX[locale] in text
            assert NO_EMAIL[locale] in text
            assert [said for said in PLATFORM_SENT[locale] if said in text] == []


def test_a_reminder_is_refused_not_promised(ctx: Context) -> None:
    """No email exists under strict-eu, so neither does a reminder: asking for one is
    refused on preview and on invite, with nothing written, rather than shown and dropped."""
    eu = strict(ctx)
    register_member(eu, "ana", "ana@members.example", "Ana", "en", T0)
    with pytest.raises(NoReminderUnderStrictEu) as refused:
        preview_invitations(eu, "ana", 1, "", None, 1)
    assert refused.value.code == "strict-eu-no-reminders"
    assert refused.value.details == {"reminders": "none under strict-eu"}
    shown = preview_invitations(ctx, "ana", 1, "", None, 1)  # as balanced would have it
    consent = ConsentInput(shown.consent_text)
    request = InviteRequest("ana", ("bo@example.org",), "", None, 1, shown.preview_hash, consent)
    before = counts(eu)
    with pytest.raises(NoReminderUnderStrictEu):
        invite(eu, request, T0)
    assert counts(eu) == before


@pytest.mark.parametrize(
    ("locale", "subject"),
    [("en", "Ana invites you to join Agora"), ("fr", "Ana vous invite à rejoindre Agora")],
)
def test_the_subject_to_send_is_the_one_previewed_and_pinned(
    ctx: Context, locale: str, subject: str
) -> None:
    """The member sends an email of their own, so they are given its subject with its text,
    in the recipient's language: the subject they previewed, which the consent's hash covers
    as it covers the text (invariant 2)."""
    eu = strict(ctx)
    register_member(eu, "ana", "ana@members.example", "Ana", "en", T0)
    preview = preview_invitations(eu, "ana", 1, "Hi!", locale, 0)
    assert preview.subject == subject
    request = InviteRequest(
        "ana",
        ("bo@example.org",),
        "Hi!",
        locale,
        0,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    (item,) = invite(eu, request, T0)["invitations"]
    assert item["share_subject"] == subject
    shared = Rendered(item["share_subject"], as_previewed(item["share_text"]), preview.html)
    assert preview_hash(shared) == preview.preview_hash


def test_the_text_says_how_long_the_address_is_kept_and_it_is_so(ctx: Context) -> None:
    """The retention the shared text states is what is kept: the invitation holds only the
    address's digest; the member's imported contact and the stored answer to the request
    (which quote it) go within a day of the invitation, and the digest stays."""
    eu = strict(ctx)
    register_member(eu, "ana", "ana@members.example", "Ana", "en", T0)
    contact = ContactInput(email="bo@example.org", name="Bo Berg", where="#1")
    import_contacts(eu, "ana", [contact], "test", T0)
    preview = preview_invitations(eu, "ana", 1, "", None, 0)
    request = InviteRequest(
        "ana",
        ("bo@example.org",),
        "",
        None,
        0,
        preview.preview_hash,
        ConsentInput(preview.consent_text),
    )
    at = T0 + timedelta(hours=2)
    (item,) = invite(eu, request, at, idempotency_key="page:one")["invitations"]
    said = " ".join(item["share_text"].split())
    days = eu.settings.policy.invitation_expiry_days
    assert (
        "Retention: your address, and your name if they had it, at most a day after this "
        "invitation was made; otherwise only an irreversible fingerprint of your address, "
        f"which tracks this invitation until you join or decline or until the invitation "
        f"expires after {days} days, and stays after that so that a refusal holds."
    ) in said
    assert "Retention: until you join or decline" not in said
    with eu.engine.connect() as connection:
        assert connection.execute(select(invitations.c.address)).scalar_one() is None
    assert "bo@example.org" in all_stored_text(eu)  # the contact, and the stored answer

    run_pass(eu, at + timedelta(days=1), MemoryTransport())
    stored = all_stored_text(eu)
    assert "bo@example.org" not in stored
    assert "bo berg" not in stored
    assert eu.digest_email("bo@example.org") in stored
