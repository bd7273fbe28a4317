"""`/why`'s answers cover the email its link came in, whichever invitation the token names (a
digest's first): "not interested" closes every invitation of the email still open and
nothing else, "remind me later" is offered for each of them by a button naming whose it
is, and an invitation past its expiry is closed for every answer, worker pass or not.
Over real HTTP, on both engines.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from page_reading import DONE, box_of, heading_of, title_of
from pages_site import SENT_AT, Delivered, Site, deliver, invite_and_deliver, ledger_size, serve
from support import (
    T0,
    add_members,
    all_stored_text,
    by_email,
    invitation,
    ledger_events,
    messages_of,
    send_invites,
)

from courtois.services.context import Context
from courtois.services.members import register_member

BO = "bo@example.com"
LATER = SENT_AT + timedelta(hours=3)
TODAY = SENT_AT.date()
EXPIRY = timedelta(days=30)


def _digest(ctx: Context, members: tuple[str, ...] = ("ana", "bruno", "carla")) -> Delivered:
    """Each of these members invites Bo at once: one digest leaves, in this order."""
    add_members(ctx)
    register_member(ctx, "carla", "carla@example.com", "Carla", "en", T0)
    for member in members:
        send_invites(ctx, member, [BO], T0)
    (mail,) = deliver(ctx)
    assert mail.outgoing.kind == "digest"
    assert mail.outgoing.member_names == tuple(m.title() for m in members)
    return mail


def _post(site: Site, token: str, **fields: str) -> tuple[int, str]:
    response = site.post(f"/why/{token}", data=fields)
    return response.status_code, response.text


def _asked(ctx: Context, invitation_id: str) -> list[tuple[str, datetime]]:
    """The reminders of an invitation, as (state, when)."""
    return [
        (m.state, m.scheduled_at) for m in messages_of(ctx, invitation_id) if m.kind == "reminder"
    ]


def _buttons(page: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", b).strip() for b in re.findall(r"<button[^>]*>(.*?)</button>", page)
    ]


def test_a_digest_offers_remind_me_later_for_each_invitation_it_brought(ctx: Context) -> None:
    """Ana, Bruno and Carla invited Bo in one digest, whose link names Ana's invitation. Each
    invitation has its own "remind me later", which says whose it is, and the reminder Bo
    asks for Bruno's is about Bruno's, named in the answer."""
    mail = _digest(ctx)
    ana, bruno, carla = mail.ids
    day = TODAY + timedelta(days=20)
    with serve(ctx) as site:
        site.clock.now = LATER
        page = site.get(f"/why/{mail.tokens.why}").text
        for member, invitation_id in (("Ana", ana), ("Bruno", bruno), ("Carla", carla)):
            assert f"Remind me of the invitation from {member}" in _buttons(page)
            assert f'name="invitation" value="{invitation_id}"' in page
        assert "Remind me later" not in _buttons(page)  # no button for "the email" as a whole
        assert (
            "Not interested: we close the invitations from Ana, Bruno and Carla that this email "
            "brought you; nothing more is sent about them. Ana, Bruno and Carla will each see "
            "that you declined." in page
        )
        # Several wait for an answer: a form that names none is asked to choose.
        events, stored = ledger_size(ctx), all_stored_text(ctx)
        status, text = _post(site, mail.tokens.why, action="remind", date=str(day))
        assert status == 400
        assert "Nothing was changed" in text
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
        status, done = _post(
            site, mail.tokens.why, action="remind", date=str(day), invitation=bruno
        )
        assert status == 200
        assert (
            "One reminder of the invitation from Bruno, on March 22, 2026, and nothing after it."
            in done
        )
        again = site.get(f"/why/{mail.tokens.why}").text
        assert (
            "We will remind you of the invitation from Bruno once, on March 22, 2026. You can "
            "pick another day." in again
        )
        # Another recipient's invitation is no choice of this email's.
        stranger = invite_and_deliver(ctx, "ana", ["cy@example.org"], now=T0)[0].ids[0]
        status, _text = _post(
            site, mail.tokens.why, action="remind", date=str(day), invitation=stranger
        )
        assert status == 400
    due = SENT_AT + timedelta(days=20)
    assert _asked(ctx, bruno) == [("scheduled", due)]
    assert _asked(ctx, ana) == _asked(ctx, carla) == []
    assert invitation(ctx, bruno).remind_at == due
    assert invitation(ctx, ana).remind_at is None
    (reminder,) = deliver(ctx, due)
    assert (reminder.outgoing.kind, reminder.ids) == ("reminder", (bruno,))
    assert "You asked us to remind you of Bruno's invitation" in " ".join(
        reminder.outgoing.text.split()
    )


def test_every_invitation_of_a_digest_can_have_the_reminder_asked_for(ctx: Context) -> None:
    """Bo asks each invitation's reminder for the same day: each one comes, as a reminder of
    that member's invitation, spaced by Bo's quota (one email per 14 days, two per 90), and
    none of the three invitations is left to expire unmentioned."""
    mail = _digest(ctx)
    day = TODAY + timedelta(days=20)
    with serve(ctx) as site:
        site.clock.now = LATER
        for invitation_id in mail.ids:
            status, _done = _post(
                site, mail.tokens.why, action="remind", date=str(day), invitation=invitation_id
            )
            assert status == 200
    dues = {i: _asked(ctx, i) for i in mail.ids}
    assert all(len(asked) == 1 for asked in dues.values()), dues
    got: dict[tuple[str, ...], str] = {}
    for at in sorted(when for asked in dues.values() for _state, when in asked):
        for sent in deliver(ctx, at):
            got[sent.ids] = sent.outgoing.subject
    assert got == {
        (invitation_id,): f"The reminder you asked for: {member} invites you to join Agora"
        for invitation_id, member in zip(mail.ids, ("Ana", "Bruno", "Carla"), strict=True)
    }
    for invitation_id in mail.ids:
        assert [state for state, _when in _asked(ctx, invitation_id)] == ["sent"]


def test_after_joining_through_one_member_the_others_are_still_answerable(
    ctx: Context,
) -> None:
    """Bo follows Ana's join link, the digest's first: Bruno's invitation still waits for an
    answer, and the digest's page still offers both choices about it. A form that names no
    invitation is about the one still waiting, and "not interested" closes Bruno's alone,
    saying so."""
    mail = _digest(ctx, ("ana", "bruno"))
    ana, bruno = mail.ids
    with serve(ctx) as site:
        site.clock.now = LATER
        assert site.get(f"/join/{mail.tokens.join[0]}").status_code == 303
        page = site.get(f"/why/{mail.tokens.why}").text
        assert _buttons(page).count("Not interested") == 1
        assert (
            "Not interested: we close the invitation from Bruno that this email brought you; "
            "nothing more is sent about it. Bruno will see that you declined." in page
        )
        assert "Remind me of the invitation from Bruno" in _buttons(page)
        assert "Remind me of the invitation from Ana" not in _buttons(page)
        status, done = _post(
            site, mail.tokens.why, action="remind", date=str(TODAY + timedelta(days=20))
        )
        assert status == 200
        assert "One reminder of the invitation from Bruno, on March 22, 2026" in done
        declined = site.post(f"/why/{mail.tokens.why}", data={"action": "decline"}).text
        assert title_of(declined) == "Invitation declined – Agora"
        assert (
            box_of(
                declined,
                "We closed the invitation from Bruno that this email brought you; nothing more "
                "will be sent to you about it. Bruno will see that you declined.",
            )
            == DONE
        )
        events = ledger_size(ctx)
        assert site.post(f"/why/{mail.tokens.why}", data={"action": "decline"}).text == declined
        assert ledger_size(ctx) == events
    assert (invitation(ctx, ana).state, invitation(ctx, bruno).state) == ("accepted", "declined")
    assert [state for state, _when in _asked(ctx, bruno)] == ["cancelled"]


def test_a_stale_not_interested_touches_no_invitation_the_email_did_not_bring(
    ctx: Context,
) -> None:
    """Bo accepted Ana's invitation; Bruno then invites Bo, in his undo window. A "not
    interested" posted from an old tab answers that Ana's invitation is closed, and leaves
    Bruno's alone: its email never left, so Bruno must not read a decline of it."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (ana,) = mail.ids
    with serve(ctx) as site:
        site.clock.now = LATER
        assert site.get(f"/join/{mail.tokens.join[0]}").status_code == 303
        bruno = by_email(send_invites(ctx, "bruno", [BO], LATER))[BO]["id"]
        page = site.get(f"/why/{mail.tokens.why}").text
        assert 'value="decline"' not in page
        assert "Bruno" not in page
        events, stored = ledger_size(ctx), all_stored_text(ctx)
        status, done = _post(site, mail.tokens.why, action="decline")
        assert status == 200
        assert heading_of(done) == "This invitation is closed"
        assert "It is accepted; nothing more will be sent to you about it." in done
        assert (ledger_size(ctx), all_stored_text(ctx)) == (events, stored)
    row = invitation(ctx, bruno)
    assert (row.state, row.sent_at, row.address) == ("scheduled", None, BO)
    assert invitation(ctx, ana).state == "accepted"
    assert not [
        p for e, p in ledger_events(ctx) if e == "invitation.state" and p["to"] == "declined"
    ]


def test_an_invitation_past_its_expiry_is_closed_before_any_worker_pass(ctx: Context) -> None:
    """31 days after Ana's invitation reached Bo, and no worker pass since: it expired. The
    page says so and offers no answer to it; a reminder asked for is refused as closed
    (the expiry and the address stay as they are), "not interested" and the join link
    change nothing; the next pass expires it and drops the address."""
    add_members(ctx)
    (mail,) = invite_and_deliver(ctx, "ana", [BO])
    (ana,) = mail.ids
    expires_at = invitation(ctx, ana).expires_at
    assert expires_at == SENT_AT + EXPIRY
    late = SENT_AT + EXPIRY + timedelta(days=1)
    with serve(ctx) as site:
        site.clock.now = late
        page = site.get(f"/why/{mail.tokens.why}").text
        assert "waiting for your answer" not in page
        assert re.search(r'<td data-label="Status">\s*expired\s*</td>', page), page
        assert 'value="remind"' not in page
        assert 'value="decline"' not in page
        events = ledger_size(ctx)
        day = late.date() + timedelta(days=40)
        status, done = _post(site, mail.tokens.why, action="remind", date=str(day))
        assert status == 200
        assert "It is expired; nothing more will be sent to you about it." in done
        status, done = _post(site, mail.tokens.why, action="decline")
        assert "It is expired; nothing more will be sent to you about it." in done
        assert site.get(f"/join/{mail.tokens.join[0]}").status_code == 303
        assert ledger_size(ctx) == events
    row = invitation(ctx, ana)
    assert (row.state, row.expires_at, row.remind_at, row.address) == (
        "sent",
        expires_at,
        None,
        BO,
    )
    assert _asked(ctx, ana) == []
    assert deliver(ctx, late + timedelta(minutes=1)) == []
    row = invitation(ctx, ana)
    assert (row.state, row.address) == ("expired", None)
    assert deliver(ctx, datetime.combine(day, SENT_AT.timetz()) + timedelta(days=1)) == []


def test_the_french_digest_names_each_invitation_as_french_does(ctx: Context) -> None:
    """ "L'invitation d'Élodie", "l'invitation de Bruno": the buttons and answers elide."""
    register_member(ctx, "elodie", "elodie@example.com", "Élodie", "fr", T0)
    register_member(ctx, "bruno", "bruno@example.com", "Bruno", "fr", T0)
    for member in ("elodie", "bruno"):
        send_invites(ctx, member, [BO], T0)
    (mail,) = deliver(ctx)
    bruno, elodie = mail.ids  # in the digest's order: by member id
    with serve(ctx) as site:
        site.clock.now = LATER
        page = site.get(f"/why/{mail.tokens.why}").text
        assert '<html lang="fr">' in page
        buttons = _buttons(page)
        assert "Me rappeler l'invitation d'Élodie" in buttons
        assert "Me rappeler l'invitation de Bruno" in buttons
        status, done = _post(
            site,
            mail.tokens.why,
            action="remind",
            date=str(TODAY + timedelta(days=20)),
            invitation=elodie,
        )
        assert status == 200
        assert "Un seul rappel de l'invitation d'Élodie, le 22 mars 2026, et rien après." in (
            done.replace("&#39;", "'")
        )
        declined = site.post(f"/why/{mail.tokens.why}", data={"action": "decline"}).text
    assert (
        "Nous avons clôturé les invitations de Bruno et Élodie que cet e-mail vous a "
        "apportées\u202f; vous ne recevrez plus rien à leur sujet. Bruno et Élodie verront "
        "chacun que vous avez décliné." in declined.replace("&#39;", "'")
    )
    assert (invitation(ctx, elodie).state, invitation(ctx, bruno).state) == (
        "declined",
        "declined",
    )
