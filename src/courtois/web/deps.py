"""What routes take from the app: the use-case context, the clock, the API caller.

The clock is the app's, not `datetime.now` at each call site, so tests and the demo can
run the whole web layer at a chosen instant.

Each dependency is `async def` although none awaits: FastAPI runs a plain `def`
dependency in the thread pool, and a hop there and back (a thread wake-up, a future, the
loop's self-pipe) costs more CPU than these few lines. None of them blocks.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from courtois.services.context import Context
from courtois.web.problems import Problem

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def context_of(request: Request) -> Context:
    """The context the app was built with."""
    ctx: Context = request.app.state.ctx
    return ctx


async def get_context(request: Request) -> Context:
    """The context the app was built with, as a dependency."""
    return context_of(request)


async def get_now(request: Request) -> datetime:
    """The app's notion of now."""
    clock: Clock = request.app.state.clock
    return clock()


_bearer = HTTPBearer(auto_error=False, description="COURTOIS_API_KEY")


def key_refusal(expected: str, authorization: str | None) -> Problem | None:
    """Why a request with this Authorization header may not use the API, or None: the
    platform's key, compared in constant time; no key configured means no API."""
    if not expected:
        return Problem(401, "api-disabled", "No API key is configured on this server.")
    scheme, given = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer":
        given = ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return Problem(401, "unauthorized", "A valid bearer API key is required.")
    return None


async def require_api_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The platform's key (see `key_refusal`); `credentials` is taken only so that the
    OpenAPI document declares the bearer scheme on every route that depends on this."""
    del credentials
    refusal = key_refusal(
        context_of(request).settings.api_key, request.headers.get("authorization")
    )
    if refusal is not None:
        raise refusal


Ctx = Annotated[Context, Depends(get_context)]
Now = Annotated[datetime, Depends(get_now)]
