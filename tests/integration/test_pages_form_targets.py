"""A page's form posts to an address of its own, which the browser's address bar then shows:
opening that address again (history, a bookmark, Enter) is a GET, which leads back to the
page the form belongs to rather than to the API's JSON 405. The API keeps its 405 problem.
Over real HTTP."""

from __future__ import annotations

import pytest
from api_support import running_api
from live_app import sqlite_only
from member_pages_support import add_member, signed_in
from pages_site import EVERY_PAGE, serve

from courtois.services.context import Context

pytestmark = sqlite_only

BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "Accept-Language": "fr-FR,fr;q=0.9",
}
FORM_TARGETS = {
    "/member/invite/preview": "/member/invite",
    "/member/invite/send": "/member/invite",
    "/member/import/paste": "/member/import",
    "/member/import/file": "/member/import",
    "/member/sign-out": "/member/",
    "/member/invitations/7/withdraw": "/member/",
    "/member/consents/7/revoke": "/member/",
    "/member/contacts/delete": "/member/",
    "/admin/sign-out": "/admin",
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_opening_a_forms_target_again_leads_to_its_page(ctx: Context, method: str) -> None:
    with serve(ctx) as site:
        answers = {
            path: site.client.request(method, site.base + path, headers=BROWSER)
            for path in FORM_TARGETS
        }
    for path, home in FORM_TARGETS.items():
        answer = answers[path]
        assert (answer.status_code, answer.headers.get("location")) == (303, home), path
        assert "problem" not in answer.headers.get("content-type", ""), path
        for name, value in EVERY_PAGE.items():
            assert answer.headers[name] == value


def test_a_signed_in_member_lands_on_the_page_in_their_language(ctx: Context) -> None:
    add_member(ctx, locale="fr")
    with signed_in(ctx) as ana:
        again = ana.get("/member/invite/send", headers=BROWSER, follow_redirects=True)
    assert again.status_code == 200
    assert str(again.url).endswith("/member/invite")
    assert '<html lang="fr">' in again.text
    assert "method-not-allowed" not in again.text


def test_the_api_still_answers_a_wrong_method_with_its_problem(ctx: Context) -> None:
    with running_api(ctx) as api:
        answer = api.get("/v1/joined", headers=BROWSER)
    assert answer.status_code == 405
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"] == "/problems/method-not-allowed"
    assert answer.headers["allow"] == "POST"


def test_another_method_on_a_forms_target_stays_a_problem(ctx: Context) -> None:
    """Only GET and HEAD are led back: a PUT to a form's target is no browser's doing."""
    with serve(ctx) as site:
        answer = site.client.put(site.base + "/member/invite/send", headers=BROWSER)
    assert answer.status_code == 405
