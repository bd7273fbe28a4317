"""What a browser gets for a path that names nothing: the pages' own "not valid" page, in
its language, rather than the API's JSON problem. Clients of the API (anything under
`/v1/`, or that does not ask for HTML) keep the problem details they switch on."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from courtois.web.pages.render import not_found

# Served as JSON or text whoever asks.
_MACHINE_PATHS = ("/v1/", "/openapi.json", "/metrics", "/healthz", "/docs")


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML) to a path outside the API."""
    path = request.url.path
    accept = request.headers.get("accept", "")
    return "text/html" in accept and not path.startswith(_MACHINE_PATHS)


def install_not_found(app: FastAPI) -> None:
    """Wrap the problem-details handler of HTTP errors: a 404 a browser asked for is the
    page; everything else goes on to problem details as before."""
    as_problem = app.exception_handlers[StarletteHTTPException]

    async def on_http(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code == 404 and wants_page(request):
            return not_found(request)
        answer: Response = await as_problem(request, error)  # type: ignore[misc]
        return answer

    app.add_exception_handler(StarletteHTTPException, on_http)
