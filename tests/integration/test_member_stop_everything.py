"""The member's one click (invariant 5; DESIGN: "every member can stop all of it with one
click"): every consent still active is revoked at once, whatever else is going on, through
the service, the host API, the member pages and the command line, on both engines.
Invitations not sent yet are withdrawn and nothing more of them leaves; sent ones stay open
(their email is in the inbox) with no reminder; another member is untouched; a repeat
stops nothing more and writes nothing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from api_support import problem, running_api
from member_pages_support import add_member as add_page_member
from member_pages_support import signed_in
from pages_site import deliver
from support import (
    T0,
    add_members,
    by_email,
    count,
    invitation,
    ledger_events,
    messages_of,
    rows,
    send_invites,
)
from test_cli import BO as CLI_BO
from test_cli import CY as CLI_CY
from test_cli import NOW, at, courtois, environment, ok

from courtois.delivery.transport import MemoryTransport
from courtois.domain.errors import NotFound
from courtois.services.context import Context
from courtois.services.lifecycle import stop_everything
from courtois.services.worker import run_pass
from courtois.store.tables import consents, invitations, ledger

UNDO = timedelta(minutes=10)
BO, CY, DEE, EVE = "bo@example.com", "cy@example.com", "dee@example.org", "eve@example.org"


def _three_consents(ctx: Context) -> tuple[dict[str, str], str, str]:
    """Ana: Bo's invitation sent with a ticked reminder, Cy's waiting on the quota (Bruno
    mailed Cy first), Dee's still in its undo window, each under its own consent; and
    Bruno's invitation to Eve, waiting too. Returns Ana's invitation ids by address, the
    consent of Bo's (revoked already, by hand, in one test) and Bruno's invitation."""
    add_members(ctx)
    transport = MemoryTransport()
    send_invites(ctx, "bruno", [CY], T0)
    run_pass(ctx, T0 + UNDO, transport)
    hour = T0 + timedelta(hours=1)
    to_bo = send_invites(ctx, "ana", [BO], hour, reminders=1)
    to_cy = send_invites(ctx, "ana", [CY], hour)
    run_pass(ctx, hour + UNDO, transport)
    later = hour + timedelta(minutes=20)
    to_dee = send_invites(ctx, "ana", [DEE], later)
    brunos = by_email(send_invites(ctx, "bruno", [EVE], later))[EVE]["id"]
    ids = {
        BO: by_email(to_bo)[BO]["id"],
        CY: by_email(to_cy)[CY]["id"],
        DEE: by_email(to_dee)[DEE]["id"],
    }
    assert [invitation(ctx, ids[a]).state for a in (BO, CY, DEE)] == ["sent"] + ["scheduled"] * 2
    assert [m.kind for m in messages_of(ctx, ids[BO])] == ["invitation", "reminder"]
    return ids, to_bo["consent_id"], brunos


def test_one_call_revokes_every_active_consent(ctx: Context) -> None:
    ids, _, brunos = _three_consents(ctx)
    stopped_at = T0 + timedelta(hours=2)
    before = count(ctx, ledger)

    assert stop_everything(ctx, "ana", stopped_at) == {
        "consents_revoked": 3,
        "withdrawn": 2,
        "reminders_cancelled": 1,
        "already_leaving": 0,
    }
    anas = rows(ctx, consents, consents.c.member_id == "ana")
    assert {c.revoked_at for c in anas} == {stopped_at}
    assert invitation(ctx, ids[BO]).state == "sent"  # in Bo's inbox: still good to accept
    assert [m.state for m in messages_of(ctx, ids[BO])] == ["sent", "cancelled"]
    assert [invitation(ctx, ids[a]).state for a in (CY, DEE)] == ["withdrawn", "withdrawn"]
    revoked = [p["consent"] for e, p in ledger_events(ctx) if e == "consent.revoked"]
    assert sorted(revoked) == sorted(c.id for c in anas)
    assert count(ctx, ledger) > before

    # Nothing of Ana's leaves again, whenever the worker passes; Bruno's invitation does.
    transport = MemoryTransport()
    for days in (1, 15, 30, 60):
        run_pass(ctx, T0 + timedelta(days=days), transport)
    assert [(o.member_names, o.to) for o in transport.sent] == [(("Bruno",), EVE)]
    assert transport.sent[0].invitation_ids == (brunos,)

    written = count(ctx, ledger)
    assert stop_everything(ctx, "ana", T0 + timedelta(days=61)) == {
        "consents_revoked": 0,
        "withdrawn": 0,
        "reminders_cancelled": 0,
        "already_leaving": 0,
    }
    assert count(ctx, ledger) == written


def test_a_consent_revoked_before_is_left_as_it_was(ctx: Context) -> None:
    from courtois.services.lifecycle import revoke_consent

    _, bos_consent, _ = _three_consents(ctx)
    first = T0 + timedelta(hours=2)
    revoke_consent(ctx, bos_consent, first, member_id="ana")
    stopped = stop_everything(ctx, "ana", first + timedelta(minutes=1))
    assert (stopped["consents_revoked"], stopped["withdrawn"]) == (2, 2)
    (bos,) = rows(ctx, consents, consents.c.id == bos_consent)
    assert bos.revoked_at == first


def test_an_unknown_member_changes_nothing(ctx: Context) -> None:
    _three_consents(ctx)
    before = (rows(ctx, consents), rows(ctx, invitations), count(ctx, ledger))
    for nobody in ("nobody", "", "x" * 300, "nul\x00"):
        with pytest.raises(NotFound):
            stop_everything(ctx, nobody, T0 + timedelta(hours=2))
    assert (rows(ctx, consents), rows(ctx, invitations), count(ctx, ledger)) == before


def test_the_host_api_stops_everything_once(ctx: Context) -> None:
    ids, _, _ = _three_consents(ctx)
    with running_api(ctx, T0 + timedelta(hours=2)) as api:
        first = api.ok(api.post("/v1/members/ana/stop", key="stop-1"))
        assert first == {
            "member_id": "ana",
            "consents_revoked": 3,
            "withdrawn": 2,
            "reminders_cancelled": 1,
            "already_leaving": 0,
        }
        replayed = api.post("/v1/members/ana/stop", key="stop-1")
        assert replayed.json() == first
        assert replayed.headers["Idempotent-Replayed"] == "true"
        again = api.ok(api.post("/v1/members/ana/stop"))
        assert again["consents_revoked"] == 0
        problem(api.post("/v1/members/nobody/stop"), 404, "member-not-found")
    assert [invitation(ctx, ids[a]).state for a in (BO, CY, DEE)] == ["sent", *["withdrawn"] * 2]


def test_the_member_pages_stop_everything_with_one_button(ctx: Context) -> None:
    add_page_member(ctx)
    with signed_in(ctx) as ana:
        send_invites(ana.ctx, "ana", [BO], T0)
        send_invites(ana.ctx, "ana", [CY, DEE], T0)
        page = ana.get("/member/").text
        assert 'action="/member/stop"' in page
        assert "Stop everything I asked for" in page
        response = ana.post("/member/stop")
        assert response.status_code == 303
        after = ana.get(response.headers["location"]).text
        assert "Everything is stopped: 2 consents revoked." in after
        twice = ana.get(ana.post("/member/stop").headers["location"]).text
        assert "Nothing was left to stop: none of your consents was still active." in twice
        sent = deliver(ana.ctx, T0 + UNDO + timedelta(minutes=1))
    assert sent == []
    assert {r.state for r in rows(ctx, invitations)} == {"withdrawn"}
    assert all(c.revoked_at == T0 for c in rows(ctx, consents))


def test_the_member_pages_refuse_a_stop_posted_from_elsewhere(ctx: Context) -> None:
    add_page_member(ctx)
    with signed_in(ctx) as ana:
        send_invites(ana.ctx, "ana", [BO], T0)
        assert ana.post("/member/stop", token="forged").status_code == 403
    assert [c.revoked_at for c in rows(ctx, consents)] == [None]


def test_the_command_line_stops_everything(tmp_path: Path) -> None:
    env = environment(f"sqlite:///{tmp_path / 'c.db'}")
    ok(env, "migrate")
    ok(env, "member", "add", "zed", "--email", "zed@members.example", "--name", "Zed Quill")
    ok(env, "invite", "--member", "zed", "--email", CLI_BO, "--reminders", "1", "--now", NOW)
    ok(env, "invite", "--member", "zed", "--email", CLI_CY, "--now", NOW)
    stopped = ok(env, "member", "stop", "zed", "--now", at(minutes=5), "--json")
    assert stopped == {
        "member_id": "zed",
        "consents_revoked": 2,
        "withdrawn": 2,
        "reminders_cancelled": 0,
        "already_leaving": 0,
    }
    assert ok(env, "worker", "--once", "--now", at(minutes=11), "--json")["sent"] == 0
    plain = ok(env, "member", "stop", "zed", "--now", at(minutes=20))
    assert plain.splitlines()[:2] == ["member zed: everything stopped", "  consents revoked: 0"]
    refused = courtois(env, "member", "stop", "nobody")
    assert refused.returncode == 1
    assert refused.stderr.startswith("courtois: No member 'nobody'")
