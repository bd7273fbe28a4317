"""The API key, checked before anything of a `/v1` request is read.

Each route also depends on `require_api_key` (which is what declares the bearer scheme in
the OpenAPI document), but FastAPI reads and parses a body, JSON or multipart, before it
runs any dependency: a stranger would have been answered 422 about a malformed body, 413 or
415 about its size or type, and could make the server read and parse an upload, all before
showing a key. Here the key comes first, so a request without it costs a header lookup and
learns only that a key is needed.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from courtois.web.deps import key_refusal
from courtois.web.problems import problem_response


class ApiKeyGate:
    """Answer 401 (a problem, `WWW-Authenticate: Bearer`) to any `/v1` request without
    the platform's key, before its body is read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith("/v1/"):
            expected: str = scope["app"].state.ctx.settings.api_key
            refusal = key_refusal(expected, Headers(scope=scope).get("authorization"))
            if refusal is not None:
                response = problem_response(
                    refusal.status,
                    refusal.code,
                    refusal.detail,
                    headers={"WWW-Authenticate": "Bearer"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
