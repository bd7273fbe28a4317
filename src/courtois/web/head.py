"""HEAD wherever GET is answered (RFC 9110, section 9.3.2): the GET's status and headers,
and no body.

FastAPI's routes answer only the methods they name, so a HEAD (a link checker, a monitor,
a mailbox provider's scanner fetching every link of an email) met a 405. Here a HEAD is
run as the GET of the same path, and whatever body that GET writes is dropped on the way
out. A GET changes nothing in courtois, so neither does a HEAD; the one route whose GET
does (`/join`, which accepts the invitation) names HEAD itself, with its own handler that
only reads, and any route that names HEAD is left to answer it.
"""

from __future__ import annotations

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def answers_head_itself(scope: Scope) -> bool:
    """Whether a route of the app names HEAD for this path (Starlette's own routes, such as
    `/docs` and `/openapi.json`, add it to every GET; `/join` declares its own)."""
    routes = scope["app"].router.routes
    return any(route.matches(scope)[0] == Match.FULL for route in routes)


class HeadAsGet:
    """Answer a HEAD as the GET of the same path would be answered, without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        if not answers_head_itself(scope):
            # A copy: the server keeps reading its own scope, which must still say HEAD.
            scope = {**scope, "method": "GET"}

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, without_body)
