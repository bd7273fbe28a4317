"""Member pages, following and stopping: each invitation's state, paged; the undo countdown;
withdrawing within the undo window (the next worker pass sends nothing); revoking a
consent; another member's invitation out of reach; downloading my data as JSON; the pages
in the member's language. Over real HTTP, on both engines."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import timedelta
from html import unescape

import httpx
import pytest
from live_app import live_site
from member_pages_support import (
    MemberBrowser,
    add_member,
    consent_form,
    contact_ids,
    import_some,
    member_session,
    signed_in,
)
from page_reading import DONE, ERROR, title_of
from pages_site import deliver
from support import T0, count, left_in_doubt, mailed_before, rows, send_invites

from courtois.delivery.bounces import BouncedRecipient, BounceReport
from courtois.services.admin_unknown import resolve_unknown
from courtois.services.bounces import apply_bounce
from courtois.services.context import Context
from courtois.services.members import register_member
from courtois.services.recipients import unsubscribe
from courtois.store.tables import consents, invitations, ledger, messages

UNDO = timedelta(minutes=10)


def _withdraw_buttons(page: str) -> list[str]:
    return re.findall(r'action="/member/invitations/([^/"]+)/withdraw"', page)


def _ids_in_order(ctx: Context) -> list[str]:
    ordered = sorted(rows(ctx, invitations), key=lambda r: (r.created_at, r.id), reverse=True)
    return [r.id for r in ordered]


def _state(ctx: Context, invitation_id: str) -> str:
    return next(r.state for r in rows(ctx, invitations) if r.id == invitation_id)


def test_withdrawing_within_the_undo_window_stops_the_email(ctx: Context) -> None:
    add_member(ctx)
    with signed_in(ctx) as ana:
        send_invites(ana.ctx, "ana", ["bo@example.com", "cy@example.com"], T0)
        ana.site.clock.advance(minutes=3)
        page = ana.get("/member/").text
        assert page.count("7 minutes left to undo") == 2
        assert page.count("waiting to leave") == 2
        assert "leaves March 2, 2026, 9:10" in page
        bo = next(r.id for r in rows(ctx, invitations) if r.address == "bo@example.com")
        assert bo in _withdraw_buttons(page)
        response = ana.post(f"/member/invitations/{bo}/withdraw")
        assert response.status_code == 303
        after = ana.get(response.headers["location"]).text
        assert "The invitation is withdrawn: nothing more of it will leave." in after
        assert bo not in _withdraw_buttons(after)
        again = ana.get(ana.post(f"/member/invitations/{bo}/withdraw").headers["location"])
        assert "That invitation was already closed" in again.text
        sent = deliver(ana.ctx, T0 + UNDO + timedelta(minutes=1))
    assert _state(ctx, bo) == "withdrawn"
    assert [mail.outgoing.to for mail in sent] == ["cy@example.com"]


IN_DOUBT = {
    "en": "delivery uncertain: the email may have left; the platform is checking",
    "fr": "remise incertaine\u00a0: l'e-mail est peut-être parti\u202f; la plateforme vérifie",
}
WAITING = {"en": "waiting to leave", "fr": "en attente de départ"}


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_an_email_in_doubt_reads_uncertain_and_cannot_be_withdrawn(
    ctx: Context, locale: str
) -> None:
    """A worker killed mid-send leaves Bo's email `unknown`: it may be in Bo's inbox. The
    dashboard says the delivery is uncertain, not that it waits to leave, and offers no
    withdrawal; one posted from a page shown before is refused in words, nothing changed.
    Once an admin says it arrived, the line reads sent and can be withdrawn."""
    add_member(ctx, "ana", locale=locale)
    later = T0 + timedelta(minutes=30)
    answer = send_invites(ctx, "ana", ["bo@example.com", "cy@example.com"], T0)
    ids = {item["email"]: item["id"] for item in answer["invitations"]}
    bo, cy = ids["bo@example.com"], ids["cy@example.com"]
    with signed_in(ctx, "ana", T0) as ana:
        shown_before = ana.get("/member/").text
        assert sorted(_withdraw_buttons(shown_before)) == sorted([bo, cy])
        email = left_in_doubt(ctx, bo, later)
        ana.site.clock.now = later
        page = unescape(ana.get("/member/").text)
        assert page.count(IN_DOUBT[locale]) == 1
        assert page.count(WAITING[locale]) == 1  # Cy's, past its undo window
        assert _withdraw_buttons(page) == [cy]
        before = rows(ctx, invitations), rows(ctx, messages), count(ctx, ledger)
        refused = ana.post(f"/member/invitations/{bo}/withdraw")
        assert refused.headers["location"].startswith("/member/?done=in-doubt&seal=")
        told = ana.get(refused.headers["location"]).text
        assert ERROR in told
        assert (rows(ctx, invitations), rows(ctx, messages), count(ctx, ledger)) == before
        resolve_unknown(ctx, [email], "sent", later)
        settled = ana.get("/member/").text
    if locale == "en":
        assert "may already have left, and the platform is checking" in unescape(told)
        assert title_of(told) == "Error: My invitations – Agora"
        assert "sent, no answer yet" in settled
    assert IN_DOUBT[locale] not in unescape(settled)
    assert sorted(_withdraw_buttons(settled)) == sorted([bo, cy])
    assert _state(ctx, bo) == "sent"


def test_revoking_a_consent_withdraws_everything_unsent(ctx: Context) -> None:
    add_member(ctx)
    with signed_in(ctx) as ana:
        answer = send_invites(ana.ctx, "ana", ["bo@example.com", "cy@example.com"], T0)
        page = ana.get("/member/").text
        assert f'action="/member/consents/{answer["consent_id"]}/revoke"' in page
        assert "2 invitations open" in page
        response = ana.post(f"/member/consents/{answer['consent_id']}/revoke")
        after = ana.get(response.headers["location"]).text
        assert "Consent revoked" in after
        assert "revoked March 2, 2026" in after
        assert _withdraw_buttons(after) == []
        twice = ana.get(
            ana.post(f"/member/consents/{answer['consent_id']}/revoke").headers["location"]
        )
        assert "That consent was already revoked." in twice.text
        sent = deliver(ana.ctx, T0 + UNDO + timedelta(minutes=1))
    assert sent == []
    assert {r.state for r in rows(ctx, invitations)} == {"withdrawn"}
    assert {r.state for r in rows(ctx, messages)} == {"cancelled"}
    (consent,) = rows(ctx, consents)
    assert consent.revoked_at == T0


def test_another_members_invitation_and_consent_are_out_of_reach(ctx: Context) -> None:
    add_member(ctx)
    add_member(ctx, "bruno")
    with signed_in(ctx) as ana:
        theirs = send_invites(ana.ctx, "bruno", ["bo@example.com"], T0)
        invitation_id = theirs["invitations"][0]["id"]
        for path in (
            f"/member/invitations/{invitation_id}/withdraw",
            f"/member/consents/{theirs['consent_id']}/revoke",
        ):
            response = ana.post(path)
            assert response.headers["location"].startswith("/member/?done=missing&seal=")
            told = ana.get(response.headers["location"]).text
            assert "That is not one of your invitations or consents." in told
        assert invitation_id not in ana.get("/member/").text
    assert _state(ctx, invitation_id) == "scheduled"
    assert rows(ctx, consents)[0].revoked_at is None


# Links anyone could send a signed-in member, each claiming something was stopped.
FORGED = (
    "/member/?done=revoked",
    "/member/?done=withdrawn",
    "/member/?done=deleted&count=72",
    "/member/?done=missing",
    "/member/?done=revoked&seal=" + "0" * 64,
    "/member/?done=deleted&count=72&seal=nonsense",
)


def test_a_link_cannot_confirm_what_nobody_did(ctx: Context) -> None:
    """Nothing was revoked, withdrawn or deleted: a link that says so shows the dashboard
    as it is, with no confirmation (invariant 5: the member must not believe they stopped
    what still runs)."""
    add_member(ctx)
    import_some(ctx, "ana", 3)
    with signed_in(ctx) as ana:
        answer = send_invites(ana.ctx, "ana", ["bo@example.com"], T0)
        for link in FORGED:
            page = ana.get(link)
            assert page.status_code == 200, link
            assert DONE not in page.text, link
            assert ERROR not in page.text, link
            assert title_of(page.text) == "My invitations – Agora", link
            assert "1 invitation open" in page.text, link
    assert _state(ctx, answer["invitations"][0]["id"]) == "scheduled"
    assert rows(ctx, consents)[0].revoked_at is None
    assert len(contact_ids(ctx, "ana")) == 3


def test_a_confirmation_shows_only_in_the_session_that_did_it(ctx: Context) -> None:
    """The revocation's and the deletion's redirects confirm them to the member who
    pressed the button; the same links opened in another session of the same member, or
    with the count changed, confirm nothing."""
    add_member(ctx)
    import_some(ctx, "ana", 7)
    with signed_in(ctx) as ana, member_session(ana.site) as other:
        answer = send_invites(ana.ctx, "ana", ["bo@example.com"], T0)
        revoked = ana.post(f"/member/consents/{answer['consent_id']}/revoke")
        deleted = ana.post("/member/contacts/delete", {"confirm": "yes"})
        revoked_at, deleted_at = revoked.headers["location"], deleted.headers["location"]
        assert "Consent revoked" in ana.get(revoked_at).text
        assert "7 imported contacts deleted." in ana.get(deleted_at).text
        for link in (revoked_at, deleted_at):
            elsewhere = other.get(link)
            assert elsewhere.status_code == 200
            assert DONE not in elsewhere.text, link
        assert "count=7&" in deleted_at
        inflated = ana.get(deleted_at.replace("count=7&", "count=72&")).text
        assert DONE not in inflated
        assert "imported contacts deleted" not in inflated


def test_invitations_are_paged_newest_first(ctx: Context) -> None:
    add_member(ctx)
    with signed_in(ctx) as ana:
        for batch in range(3):
            emails = [f"r{batch}-{i}@example.org" for i in range(10)]
            send_invites(ana.ctx, "ana", emails, T0 + timedelta(minutes=batch))
        ordered = _ids_in_order(ctx)
        first = ana.get("/member/").text
        assert _withdraw_buttons(first) == ordered[:25]
        older = re.search(r'href="(/member/\?before=[^"]+)"', first)
        assert older
        second = ana.get(older.group(1).replace("&amp;", "&")).text
        assert _withdraw_buttons(second) == ordered[25:]
        assert "Older invitations" not in second
        assert ana.get("/member/?before=nonsense").text.count("/withdraw") == 25


def test_download_my_data_as_json(ctx: Context) -> None:
    add_member(ctx)
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        send_invites(ana.ctx, "ana", ["bo@example.com"], T0)
        page = ana.get("/member/").text
        assert 'href="/member/export.json"' in page
        response = ana.get("/member/export.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-disposition"] == 'attachment; filename="my-data.json"'
    assert response.headers["cache-control"] == "no-store"
    exported = json.loads(response.text)
    assert exported["member"]["id"] == "ana"
    assert len(exported["contacts"]) == 2
    assert [c["recipients"] for c in exported["consents"]] == [1]
    assert exported["invitations"][0]["email"] == "bo@example.com"
    assert exported["ledger"]


def test_a_members_data_never_tells_their_email_was_a_digest(ctx: Context) -> None:
    """Ana and Bruno invite Bo at the same moment: one digest carries both invitations, and
    its row is Ana's message. To each of them it is just their invitation email: neither
    the download, the API's export nor the dashboard says "digest", which would tell them
    that someone else invited Bo at about the same time (invariant 11)."""
    add_member(ctx)
    register_member(ctx, "bruno", "bruno@members.example", "Bruno", "en", T0)
    send_invites(ctx, "ana", ["bo@example.com"], T0)
    send_invites(ctx, "bruno", ["bo@example.com"], T0)
    (mail,) = deliver(ctx, T0 + UNDO)
    assert mail.outgoing.kind == "digest"
    assert sorted(m.kind for m in rows(ctx, messages)) == ["digest", "invitation"]
    with signed_in(ctx, now=T0 + UNDO, api_key="key-0123456789abcdef") as ana:
        page = ana.get("/member/").text
        exported = {"ana": json.loads(ana.get("/member/export.json").text)}
        for member_id in ("ana", "bruno"):
            answer = httpx.get(
                f"{ana.site.base_url}/v1/members/{member_id}/export",
                headers={"Authorization": "Bearer key-0123456789abcdef"},
            )
            assert answer.status_code == 200, answer.text
            exported[f"api-{member_id}"] = answer.json()
    assert "digest" not in page.replace("recipient_digest", "")
    assert exported["ana"]["invitations"] == exported["api-ana"]["invitations"]
    for data in exported.values():
        ((invitation,),) = [data["invitations"]]
        assert [(m["kind"], m["status"]) for m in invitation["messages"]] == [
            ("invitation", "sent")
        ]
        assert '"digest"' not in json.dumps(data)


def test_the_pages_speak_the_members_language(ctx: Context) -> None:
    add_member(ctx, "ana", locale="fr")
    import_some(ctx, "ana", 2)
    with signed_in(ctx) as ana:
        send_invites(ana.ctx, "ana", ["bo@example.com"], T0)
        page = ana.http.get("/member/", headers={"Accept-Language": "en"}).text
        contacts = ana.get("/member/contacts").text
        _switch_to_english(ana)
        english = ana.get("/member/").text
    assert '<html lang="fr">' in page
    assert "Mes invitations" in page
    assert "10 minutes pour annuler" in page
    assert "Choisir" in contacts
    assert '<html lang="en">' in english
    assert "10 minutes left to undo" in english


def _switch_to_english(member: MemberBrowser) -> None:
    """The platform updates the member's language; the pages follow at once."""
    add_member(member.ctx, member.member_id, locale="en")


def test_signed_out_pages_follow_the_browser(ctx: Context) -> None:
    with live_site(ctx) as site, httpx.Client(base_url=site.base_url) as http:
        english = http.get("/member/", headers={"Accept-Language": "en-GB"}).text
        french = http.get("/member/", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    assert "Please sign in" in english
    assert "Veuillez vous connecter" in french


def test_an_opt_out_and_a_bounce_both_read_unavailable(ctx: Context) -> None:
    """The member learns that they cannot reach someone, never why (invariant 11)."""
    add_member(ctx)
    unsubscribe(ctx, ctx.digest_email("bo@example.com"), T0)
    mailed_before(ctx, "cy@example.com", T0)
    bounced = BounceReport(
        "test", "hard_bounce", (BouncedRecipient("cy@example.com", "5.1.1", True),)
    )
    apply_bounce(ctx, bounced, T0)
    with signed_in(ctx) as ana:
        answer = send_invites(ana.ctx, "ana", ["bo@example.com", "cy@example.com"], T0)
        page = ana.get("/member/").text
    assert [item["status"] for item in answer["invitations"]] == ["blocked", "blocked"]
    assert page.count("not sent: unavailable") == 2
    assert "not-unsubscribed" not in page
    assert "not-suppressed" not in page


def test_an_invitation_held_back_by_the_recipients_quota_shows_no_day(ctx: Context) -> None:
    """Bruno invites Bo a day after Ana's invitation reached Bo: his waits for Bo's quota.
    The day it would leave would tell Bruno when someone else's invitation reached Bo, so
    the page says only that it leaves later."""
    add_member(ctx, "ana")
    add_member(ctx, "bruno")
    send_invites(ctx, "ana", ["bo@example.com"], T0)
    assert len(deliver(ctx, T0 + timedelta(minutes=11))) == 1
    later = T0 + timedelta(days=1)
    answer = send_invites(ctx, "bruno", ["bo@example.com", "cy@example.com"], later)
    assert [i["status"] for i in answer["invitations"]] == ["scheduled", "scheduled"]
    with signed_in(ctx, "bruno", later) as bruno:
        page = bruno.get("/member/").text
    assert page.count("leaves later, when the limits on emails allow") == 1
    # Cy's leaves at the end of the undo window, which Bruno knows anyway; Bo's day is
    # nowhere: 14 days after Ana's email reached Bo.
    assert "March 16" not in page


def test_the_members_export_leaves_out_the_day_a_held_back_invitation_leaves(
    ctx: Context,
) -> None:
    add_member(ctx, "ana")
    add_member(ctx, "bruno")
    send_invites(ctx, "ana", ["bo@example.com"], T0)
    assert len(deliver(ctx, T0 + timedelta(minutes=11))) == 1
    later = T0 + timedelta(days=1)
    send_invites(ctx, "bruno", ["bo@example.com", "cy@example.com"], later)
    with signed_in(ctx, "bruno", later) as bruno:
        exported = bruno.get("/member/export.json").json()
    leaving = {
        item["email"]: [m["scheduled_at"] for m in item["messages"]]
        for item in exported["invitations"]
    }
    assert leaving["bo@example.com"] == [None]  # held back until Bo's quota frees
    assert leaving["cy@example.com"] == ["2026-03-03T09:10:00Z"]  # the undo window's end
    assert "2026-03-16" not in json.dumps(exported)


def test_each_take_back_button_names_what_it_takes_back(ctx: Context) -> None:
    """Every row's button reads "Withdraw" on screen; a screen reader hears which one."""
    add_member(ctx)
    send_invites(ctx, "ana", ["bo@example.com", "cy@example.com"], T0)
    with signed_in(ctx) as ana:
        page = ana.get("/member/").text
    for address in ("bo@example.com", "cy@example.com"):
        assert f'aria-label="Withdraw the invitation to {address}"' in page
    assert 'aria-label="Revoke the consent given March 2, 2026, 9:00\u202fAM UTC"' in page
    # The buttons' column is named too, for whoever reads the table by its headers.
    assert "<th></th>" not in page
    assert page.count('<th><span class="visually-hidden">Action</span></th>') == 2


def _strict_eu_invitations(ana: MemberBrowser, how_many: int) -> None:
    """Ana chooses her first contacts, previews, and presses "Agree and get the links"."""
    ids = contact_ids(ana.ctx, "ana")[:how_many]
    ana.post("/member/contacts", {"action": "save", "shown": ids, "chosen": ids})
    preview = ana.post("/member/invite/preview", {"note": "", "locale": "en"})
    assert "Agree and get the links" in preview.text
    sent = ana.post("/member/invite/send", consent_form(preview.text))
    assert sent.status_code == 200, sent.text


def test_under_strict_eu_each_invitation_says_whom_it_went_to(ctx: Context) -> None:
    """Strict-eu keeps no address in the invitation: while the member's own contacts last,
    the dashboard names each person from them; once they are gone, each Withdraw button
    still tells a screen reader which line it withdraws."""
    add_member(ctx)
    import_some(ctx, "ana", 3)
    policy = replace(ctx.settings.policy, profile="strict-eu")
    with signed_in(ctx, policy=policy) as ana:
        _strict_eu_invitations(ana, 2)
        assert [r.address for r in rows(ctx, invitations)] == [None, None]
        page = ana.get("/member/").text
        assert "(address no longer kept)" not in page
        for number in ("000", "001"):
            assert f"Person {number}<br>person-{number}@example.org</td>" in page
            assert f'aria-label="Withdraw the invitation to person-{number}@example.org"' in page
        assert "person-002" not in page  # imported, not invited

        deleted = ana.post("/member/contacts/delete", {"confirm": "yes"})
        assert deleted.status_code == 303
        page = ana.get("/member/").text
    assert page.count("(address no longer kept)") == 2
    assert "@example.org" not in page
    labels = re.findall(r'aria-label="(Withdraw[^"]*)"', page)
    assert labels == [
        f"Withdraw the invitation of line {line}, asked March 2, 2026, 9:00\u202fAM UTC"
        for line in (1, 2)
    ]


def _rows(page: str) -> list[str]:
    """The invitations table's rows, each without its invitation's id and line number."""
    table = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    found = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [
        re.sub(r"line \d+", "line N", re.sub(r"/member/invitations/[^/]+/", "/ID/", row))
        for row in found
    ]


def test_an_opt_out_reads_on_the_dashboard_as_every_other_stop(ctx: Context) -> None:
    """Ana's invitations reached four people. One stops all emails, one stops Ana, one
    reports her email as spam, and the address of one bounces (reported after another
    member's email): her dashboard shows the four alike (invariant 11)."""
    add_member(ctx)
    register_member(ctx, "zed", "zed@members.example", "Zed", "en", T0)
    people = {cause: f"{cause}@example.org" for cause in ("opt-out", "stop", "spam", "dead")}
    send_invites(ctx, "ana", list(people.values()), T0)
    assert len(deliver(ctx, T0 + timedelta(minutes=11))) == 4
    later = T0 + timedelta(days=15)
    send_invites(ctx, "zed", [people["dead"]], later)
    assert len(deliver(ctx, later + timedelta(minutes=11))) == 1
    at = later + timedelta(hours=1)
    unsubscribe(ctx, ctx.digest_email(people["opt-out"]), at)
    unsubscribe(ctx, ctx.digest_email(people["stop"]), at, from_member="ana")
    spam = BounceReport("test", "complaint", (BouncedRecipient(people["spam"], "", False),))
    dead = BounceReport("test", "hard_bounce", (BouncedRecipient(people["dead"], "5.1.1", True),))
    assert (
        apply_bounce(ctx, spam, at)["suppressed"],
        apply_bounce(ctx, dead, at)["suppressed"],
    ) == (
        1,
        1,
    )
    with signed_in(ctx, "ana", at + timedelta(hours=1)) as ana:
        page = ana.get("/member/").text
    shown = _rows(page)
    assert len(shown) == 4
    assert len(set(shown)) == 1, shown
    assert "(address no longer kept)" in shown[0]
    assert "sent, no answer yet" in shown[0]
