"""A ceiling on the host API's JSON bodies, held before the body is buffered, and their
media type checked: a body that is not JSON, or says nothing of its media type, is refused.

FastAPI reads a whole request body before validating it, so without a ceiling a client
could make the server hold any number of bytes only to be told a field is too long. The
largest body the API accepts (10,000 addresses of 320 characters) fits well under 4 MiB;
anything announced larger is refused before a byte is read, anything that streams past it
is cut off there. Imports have their own, configured limit (`import_max_bytes`), and the
pages read their forms with their own bounds.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from courtois.web.problems import problem_response

MAX_JSON_BODY = 4 * 1024 * 1024


def checks_body(path: str) -> bool:
    """Whether `JsonBodyLimit` answers for this path's bodies (413, 415), whatever the
    method: every `/v1` route but imports. Given a path template (`/v1/members/{id}`) it
    says the same, so the OpenAPI document lists those answers where they are given."""
    return path.startswith("/v1/") and not path.endswith("/imports")


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


def _media_type(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: str = value.decode("latin-1").split(";", 1)[0].strip().lower()
            return media
    return None


def _is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _has_body(scope: Scope, declared: int | None) -> bool:
    if declared is not None:
        return declared > 0
    return any(name == b"transfer-encoding" for name, _ in scope.get("headers", ()))


async def _refuse_media(media: str | None, scope: Scope, receive: Receive, send: Send) -> None:
    """Every `/v1` body but an import's is JSON: another media type, or none said, is named
    as such (415) rather than met by a validation error about a dictionary."""
    named = "missing" if media is None else media[:80] or "empty"
    response = problem_response(
        415,
        "unsupported-media-type",
        "The request body must be JSON (Content-Type: application/json).",
        {"Content-Type": named},
    )
    await response(scope, receive, send)


class JsonBodyLimit:
    """Answer 413 (a problem) to any `/v1` body past `limit` bytes; the route never runs
    with a partial body, so nothing changes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_JSON_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not checks_body(str(scope.get("path", ""))):
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        media = _media_type(scope)
        if (media is None or not _is_json(media)) and _has_body(scope, declared):
            await _refuse_media(media, scope, receive, send)
            return
        received = 0
        refused = False

        async def counted() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Answer now; the route sees a client gone and its answer is dropped.
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "content-too-large",
            f"The request body is bigger than the {self.limit:,} bytes a request may hold.",
            {"body": "too big"},
        )
        await response(scope, receive, send)
