"""A problem's `type` resolves: `/problems/<code>` is a page saying what the error means and
what to do (JSON when asked), for every type the API can answer, with no key; an unknown
code is a 404 like any other path, and the pages stay out of the API's document as the
other pages do. Over real HTTP, both engines."""

from __future__ import annotations

from html import unescape
from urllib.parse import urljoin

import httpx
from api_support import problem, running_api

from courtois.services.context import Context
from courtois.web.problem_types import PROBLEM_TABLE

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"Accept": "application/json"}


def test_every_problem_type_resolves_to_a_page_without_a_key(ctx: Context) -> None:
    with running_api(ctx) as api, httpx.Client(base_url=api.base_url) as stranger:
        refused = problem(stranger.get("/v1/members/ana"), 401, "unauthorized")
        # What a client does with the type: resolve it against the URL it called.
        followed = stranger.get(urljoin(f"{api.base_url}/v1/members/ana", refused["type"]))
        assert followed.status_code == 200
        assert "<h1>Unauthorized</h1>" in followed.text
        for code, kind in PROBLEM_TABLE.items():
            page = stranger.get(f"/problems/{code}", headers=HTML)
            assert page.status_code == 200, code
            assert page.headers["content-type"].startswith("text/html")
            assert "default-src 'none'" in page.headers["content-security-policy"]
            text = unescape(page.text).replace("<code>", "`").replace("</code>", "`")
            assert f"<title>{kind.title} – " in text
            assert kind.meaning in text
            assert kind.advice in text
            data = stranger.get(f"/problems/{code}", headers=JSON)
            assert data.status_code == 200, code
            assert data.headers["content-type"] == "application/json"
            assert data.json() == {
                "type": f"/problems/{code}",
                "title": kind.title,
                "meaning": kind.meaning,
                "advice": kind.advice,
            }
        # No Accept header at all (curl, a log viewer): the page.
        assert stranger.get("/problems/not-found").headers["content-type"].startswith("text/html")


def test_an_unknown_problem_type_is_not_found(ctx: Context) -> None:
    with running_api(ctx) as api, httpx.Client(base_url=api.base_url) as stranger:
        problem(stranger.get("/problems/no-such-problem", headers=JSON), 404, "not-found")
        page = stranger.get("/problems/no-such-problem", headers=HTML)
        assert page.status_code == 404
        assert page.headers["content-type"].startswith("text/html")
        assert stranger.get("/problems/", headers=JSON).status_code == 404


def test_the_problem_pages_are_pages_not_operations_of_the_api(ctx: Context) -> None:
    with running_api(ctx) as api:
        document = api.ok(api.get("/openapi.json"))
    assert not any(path.startswith("/problems") for path in document["paths"])
    assert not any(path.startswith(("/why", "/member", "/admin")) for path in document["paths"])
