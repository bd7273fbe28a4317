"""What a browser gets for a path that names nothing: the pages' own "not valid" page, in
its language, rather than the API's JSON problem. Clients of the API (anything under
`/v1/`, or that does not ask for HTML) keep the problem details they switch on.

A page's form posts to an address of its own (`/member/invite/send`), which the address bar
then shows: opening it again (from history, a bookmark, Enter) is a GET, which that route
does not answer. Such a GET goes back to the page the form belongs to instead of a JSON 405.

A wrong method on a recipient link (`POST /join/TOKEN`, `PUT /why/TOKEN`) still gets the
405 problem, but with the headers of every recipient page: its URL carries a token, which
no cache may keep and no Referer carry on, whatever the answer.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from courtois.web.pages.render import HEADERS, not_found, redirect

# Served as JSON or text whoever asks.
_MACHINE_PATHS = ("/v1/", "/openapi.json", "/metrics", "/healthz", "/docs")
# The recipient pages, whose URLs carry the token of an email's link.
_TOKEN_PATHS = ("/u/", "/why/", "/join/")
# The page each family of form targets belongs to, most specific first.
_FORM_HOMES = (
    ("/member/invite/", "/member/invite"),
    ("/member/import/", "/member/import"),
    ("/member/", "/member/"),
    ("/admin/", "/admin"),
)


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML) to a path outside the API."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not path.startswith(_MACHINE_PATHS)


def form_home(request: Request) -> str | None:
    """The page to show for a GET of a page's form target, which only answers POST; None
    for anything else (the API's routes above all, whose clients read the 405)."""
    if request.method not in ("GET", "HEAD"):
        return None
    path = request.url.path
    return next((home for prefix, home in _FORM_HOMES if path.startswith(prefix)), None)


def install_not_found(app: FastAPI) -> None:
    """Wrap the problem-details handler of HTTP errors: a 404 a browser asked for is the
    page, a GET of a form's target leads to its page; everything else goes on to problem
    details as before."""
    as_problem = app.exception_handlers[StarletteHTTPException]

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 404 and wants_page(request):
            return not_found(request)
        if error.status_code == 405 and (home := form_home(request)) is not None:
            return redirect(home)
        answer: Response = await as_problem(request, error)  # type: ignore[misc]
        if request.url.path.startswith(_TOKEN_PATHS):
            answer.headers.update(HEADERS)
        return answer

    app.add_exception_handler(StarletteHTTPException, on_http)
