"""The recipient's pages once the member who invited them was erased (GDPR Art. 17).

The member's name is gone (empty in the store), so where a page named them it now says "a
former member", in the recipient's language, with each sentence worded for it; and every
choice still works: stopping that member is kept by their id. Over real HTTP, on both
engines.
"""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from datetime import timedelta
from email.message import EmailMessage

from pages_site import SENT_AT, deliver, invite_and_deliver, serve
from smtp_server import FaultyHandler, smtp_server
from sqlalchemy import select
from support import T0, add_members, by_email, invitation, rows, send_invites

from courtois.delivery.compose import tokens_in
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.services.context import Context
from courtois.services.lifecycle import withdraw
from courtois.services.member_erasure import erase_member
from courtois.services.members import register_member
from courtois.services.worker import run_pass
from courtois.store.tables import messages, recipient_blocks, recipients

BO = "bo@example.com"
ERASED_AT = SENT_AT + timedelta(hours=1)
LATER = SENT_AT + timedelta(hours=3)
# Where an empty name would leave its mark: "Stop emails from </button>", ", a member of",
# "from  through", "de  :".
BLANK = re.compile(r"\b(from|of|de)\s*(<|:|through\b|par\b)|<p>\s*,|\(\s*\)")


def _shown(response: object, *, status: int = 200) -> str:
    """A page's text, after checking its status and that no blank stands for a name."""
    assert getattr(response, "status_code", None) == status, getattr(response, "text", "")
    text = str(getattr(response, "text", ""))
    assert BLANK.search(text) is None, BLANK.search(text)
    return text


def _blocked(ctx: Context) -> set[str]:
    """The members the recipient stopped, by id."""
    return {b.member_id for b in rows(ctx, recipient_blocks)}


def test_the_pages_of_an_erased_members_email_say_a_former_member(ctx: Context) -> None:
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (ana,) = mail.ids
    erase_member(ctx, "ana", ERASED_AT)
    assert invitation(ctx, ana).state == "withdrawn"
    with serve(ctx) as site:
        site.clock.now = LATER
        why = _shown(site.get(f"/why/{mail.tokens.why}"))
        assert (
            "A former member of Agora chose your address from their own contacts and asked "
            "us to invite you. Agora did not pick you." in why
        )
        assert '<td data-label="Member"><em>a former member</em></td>' in why
        assert (
            "Stop emails from this former member: they can never invite you again through "
            "Agora." in why
        )
        assert '<button type="submit">Stop emails from this former member</button>' in why
        unsubscribe = _shown(site.get(f"/u/{mail.tokens.unsubscribe}"))
        assert (
            "Or only stop the invitations of this former member: other members may still "
            "invite you." in unsubscribe
        )
        assert "Stop emails from this former member</button>" in unsubscribe

        # Stopping the former member still records the recipient's word, by their id.
        done = _shown(site.post(f"/why/{mail.tokens.why}", data={"action": "stop-member"}))
        assert "You will get no more emails from this former member through Agora." in done
        assert _blocked(ctx) == {"ana"}
        again = _shown(site.post(f"/u/{mail.tokens.unsubscribe}", data={"action": "stop-member"}))
        assert "You will get no more emails from this former member through Agora." in again
        assert "stopped" in _shown(site.get(f"/why/{mail.tokens.why}"))

        # The join link changes nothing of a withdrawn invitation, and shows no name.
        joined = site.get(f"/join/{mail.tokens.join[0]}")
        assert joined.status_code == 303
        assert invitation(ctx, ana).state == "withdrawn"
        # The one click stops everything, as for anyone.
        _shown(site.post(f"/u/{mail.tokens.unsubscribe}", data={"List-Unsubscribe": "One-Click"}))
    with ctx.engine.connect() as connection:
        stopped = connection.execute(
            select(recipients.c.unsubscribed_at).where(recipients.c.digest == ctx.digest_email(BO))
        ).scalar_one()
    assert stopped == LATER


def test_in_french_each_sentence_is_worded_for_a_former_member(ctx: Context) -> None:
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (mail,) = invite_and_deliver(ctx, "lea", [BO])
    erase_member(ctx, "lea", ERASED_AT)
    with serve(ctx) as site:
        site.clock.now = LATER
        why = _shown(site.get(f"/why/{mail.tokens.why}"))
        assert '<html lang="fr">' in why
        assert (
            "Un ancien membre de la plateforme Agora a choisi votre adresse dans ses propres "
            "contacts" in why
        )
        assert '<td data-label="Membre"><em>un ancien membre</em></td>' in why
        assert "Bloquer cet ancien membre\u00a0: cette personne ne pourra plus jamais" in why
        assert "Léa" not in why
        unsubscribe = _shown(site.get(f"/u/{mail.tokens.unsubscribe}"))
        assert "Ou n'arrêtez que les invitations de cet ancien membre\u00a0:" in unsubscribe
        done = _shown(site.post(f"/why/{mail.tokens.why}", data={"action": "stop-member"}))
        assert "Cet ancien membre ne pourra plus vous envoyer d'e-mails par Agora." in done
    assert _blocked(ctx) == {"lea"}


def test_a_digest_lists_the_erased_members_after_the_others(ctx: Context) -> None:
    add_members(ctx)
    register_member(ctx, "cy", "cy@example.com", "Cy", "en", T0)
    for member in ("ana", "bruno", "cy"):
        send_invites(ctx, member, [BO], T0)
    (mail,) = deliver(ctx)
    assert (mail.outgoing.kind, len(mail.ids)) == ("digest", 3)
    erase_member(ctx, "ana", ERASED_AT)
    erase_member(ctx, "cy", ERASED_AT)
    with serve(ctx) as site:
        site.clock.now = LATER
        why = _shown(site.get(f"/why/{mail.tokens.why}"))
        assert "Bruno and 2 former members, members of Agora, each chose your address" in why
        assert why.count('<td data-label="Member"><em>a former member</em></td>') == 2
        # Two in the table, and the linked one (Ana's) below.
        assert why.count("Stop emails from this former member</button>") == 3
        assert "Stop emails from Bruno</button>" in why
        path = f"/u/{mail.tokens.unsubscribe}"
        unsubscribe = _shown(site.get(path))
        assert "Stop emails from Bruno and 2 former members</button>" in unsubscribe
        assert unsubscribe.count("Stop emails from this former member</button>") == 2
        done = _shown(site.post(path, data={"action": "stop-members"}))
        assert "You will get no more emails from Bruno and 2 former members through Agora." in done
        assert _blocked(ctx) == {"ana", "bruno", "cy"}

        # Once every member of the digest is erased, no name is left to open the sentence.
        erase_member(ctx, "bruno", ERASED_AT)
        why = _shown(site.get(f"/why/{mail.tokens.why}"))
        assert "Former members of Agora each chose your address from their own contacts" in why
        done = _shown(site.post(path, data={"action": "stop-members"}))
        assert "You will get no more emails from these 3 former members through Agora." in done
        unsubscribe = _shown(site.get(path))
        assert "Stop emails from 3 former members</button>" in unsubscribe


def test_an_invitation_the_erasure_closed_says_so(ctx: Context) -> None:
    """The erasure withdrew the invitation, not its member: the page says the member's
    account was deleted, in English and in French, and so does the answer to a stale "not
    interested". An invitation its member withdrew before being erased still says so."""
    add_members(ctx)
    register_member(ctx, "lea", "lea@example.com", "Léa", "fr", T0)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (french,) = invite_and_deliver(ctx, "lea", ["cy@example.org"])
    (own,) = invite_and_deliver(ctx, "bruno", ["dee@example.org"])
    withdraw(ctx, own.ids[0], ERASED_AT - timedelta(minutes=30), "bruno")
    for member in ("ana", "lea", "bruno"):
        erase_member(ctx, member, ERASED_AT)
    assert {invitation(ctx, i).state for i in (*mail.ids, *french.ids, *own.ids)} == {"withdrawn"}
    with serve(ctx) as site:
        site.clock.now = LATER
        why = _shown(site.get(f"/why/{mail.tokens.why}"))
        assert '<td data-label="Status">closed: the member\'s account was deleted</td>' in why
        assert "withdrawn by the member" not in why
        done = _shown(site.post(f"/why/{mail.tokens.why}", data={"action": "decline"}))
        assert (
            "It is closed: the member's account was deleted; nothing more will be sent to you "
            "about it." in done
        )
        why = _shown(site.get(f"/why/{french.tokens.why}"))
        assert '<td data-label="État">close\u00a0: le compte du membre a été supprimé</td>' in why
        assert "retirée par le membre" not in why
        why = _shown(site.get(f"/why/{own.tokens.why}"))
        assert '<td data-label="Status">withdrawn by the member</td>' in why
        assert "account was deleted" not in why


def test_declining_the_email_that_left_while_its_member_was_erased(ctx: Context) -> None:
    """An email being handed to SMTP when its member is erased still leaves (it cannot be
    stopped): its recipient may decline it, and nobody is said to see the answer."""
    add_members(ctx)
    (ana,) = [item["id"] for item in by_email(send_invites(ctx, "ana", [BO], T0)).values()]
    handler = FaultyHandler(data_delay=1.5)
    with smtp_server(handler) as url:
        passing = threading.Thread(
            target=run_pass, args=(ctx, SENT_AT, SmtpTransport(parse_smtp_url(url)))
        )
        passing.start()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _state(ctx, ana) != "sending":
            time.sleep(0.02)
        assert _state(ctx, ana) == "sending"
        assert erase_member(ctx, "ana", SENT_AT).already_leaving == 1
        passing.join(10)
    ((_rcpts, raw),) = handler.received
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    tokens = tokens_in(parsed, ctx.settings)
    assert invitation(ctx, ana).state == "sent"
    with serve(ctx) as site:
        site.clock.now = LATER
        why = _shown(site.get(f"/why/{tokens.why}"))
        assert "Not interested: we close this invitation.</p>" in why
        assert "will see that you declined" not in why
        done = _shown(site.post(f"/why/{tokens.why}", data={"action": "decline"}))
        # Bo's one invitation: the answer speaks of it alone.
        assert '<p class="done">This invitation is closed.</p>' in done
        assert "invitations you had" not in done
        assert "will see that you declined" not in done
    assert invitation(ctx, ana).state == "declined"


def _state(ctx: Context, invitation_id: str) -> str | None:
    with ctx.engine.connect() as connection:
        found = connection.execute(
            select(messages.c.state).where(messages.c.invitation_id == invitation_id)
        ).scalar_one_or_none()
    return None if found is None else str(found)
