"""`/problems/{code}`: each problem `type` the API answers resolves to a page that says what
it means and what to do, as RFC 9457 suggests a type URI should.

No key is needed: a type is documentation, the same on every deployment, and names nothing
stored. A browser gets HTML; a client that asks for JSON gets the same words as JSON. The
words are the table's, in English like the API's own `detail` sentences. An unknown code is
a 404 like any other path.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException

from courtois.web.pages.render import HEADERS, render_page
from courtois.web.pages.weighted import weighted_items
from courtois.web.problem_types import PROBLEM_TABLE

router = APIRouter(include_in_schema=False)

_JSON_TYPES = ("application/json", "application/problem+json")
_CODE = re.compile(r"`([^`]+)`")


def wants_json(accept: str | None) -> bool:
    """Whether the Accept header prefers JSON to HTML: a JSON type is named, with a weight
    above zero, and HTML is not named with a higher one."""
    weights: dict[str, float] = {}
    for media, weight in weighted_items(accept):
        media = media.lower()
        weights[media] = max(weight, weights.get(media, 0.0))
    json = max((weights.get(media, 0.0) for media in _JSON_TYPES), default=0.0)
    return json > 0 and json > weights.get("text/html", 0.0)


def as_markup(text: str) -> Markup:
    """The table's text, escaped, with its `quoted` names set as code."""
    return Markup(_CODE.sub(r"<code>\1</code>", str(escape(text))))  # noqa: S704 - escaped first


@router.get("/problems/{code}")
def problem_type(code: str, request: Request) -> Response:
    """What one problem type means and what to do about it."""
    kind = PROBLEM_TABLE.get(code)
    if kind is None:
        raise HTTPException(404)
    if wants_json(request.headers.get("accept")):
        body = {
            "type": f"/problems/{code}",
            "title": kind.title,
            "meaning": kind.meaning,
            "advice": kind.advice,
        }
        return JSONResponse(body, headers={"Vary": "Accept"})
    settings = request.app.state.ctx.settings
    html = render_page(
        settings,
        "en",
        "problem_type.html",
        code=code,
        title=kind.title,
        meaning=as_markup(kind.meaning),
        advice=as_markup(kind.advice),
    )
    return Response(
        html,
        media_type="text/html; charset=utf-8",
        headers={**HEADERS, "Vary": "Accept"},
    )
