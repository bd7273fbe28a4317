"""The member's "download my data" speaks the member's language, as their pages do: each
decision's reasons are worded in French for a French member, while the rule codes, the
outcomes and everything else machine-readable stay as the host API's export gives them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from api_support import API_KEY
from member_pages_support import add_member, signed_in
from support import T0, send_invites

from courtois.services.context import Context

BO = "bo@example.com"


def _verdicts(exported: dict[str, Any]) -> list[list[dict[str, str]]]:
    return [
        decision["verdicts"]
        for invitation in exported["invitations"]
        for decision in invitation["decisions"]
    ]


def _without_reasons(verdicts: list[list[dict[str, str]]]) -> list[list[tuple[str, str]]]:
    return [[(v["rule"], v["outcome"]) for v in each] for each in verdicts]


def test_a_french_member_downloads_their_decisions_reasons_in_french(ctx: Context) -> None:
    add_member(ctx, "ana", locale="fr")
    send_invites(ctx, "ana", [BO], T0)
    # Bo again an hour later: refused, Ana invited them already.
    send_invites(ctx, "ana", [BO], T0 + timedelta(hours=1))
    with signed_in(ctx, api_key=API_KEY) as ana:
        downloaded = ana.get("/member/export.json")
        assert downloaded.status_code == 200, downloaded.text
        api = httpx.get(
            ana.site.url("/v1/members/ana/export"),
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=30,
        )
        assert api.status_code == 200, api.text
    mine, platforms = _verdicts(json.loads(downloaded.text)), _verdicts(api.json())

    # The same rules and outcomes, in the same order; only the words differ.
    assert _without_reasons(mine) == _without_reasons(platforms)
    first, again = mine
    worded = {(v["rule"], v["reason"]) for v in first + again}
    assert ("not-already-invited", "déjà invité") in worded
    assert ("consent-covers", "autorisé") in worded
    english = {v["reason"] for each in platforms for v in each}
    assert {"already invited", "ok"} <= english
    assert not english & {v["reason"] for v in first + again}
