"""The ASGI application: one app for the API, the recipient pages and the operator pages.

Built from a Context by `create_app`, so the CLI (`courtois serve`, `courtois demo`) and the
tests wire the same thing; routers come from `courtois.web.api` and `courtois.web.pages`.
"""

from __future__ import annotations

from fastapi import FastAPI

from courtois.services.context import Context
from courtois.web import problems
from courtois.web.api_gate import ApiKeyGate
from courtois.web.body_limit import JsonBodyLimit, checks_body
from courtois.web.deps import Clock, system_clock
from courtois.web.head import HeadAsGet
from courtois.web.pages import browser_pages


def create_app(ctx: Context, clock: Clock = system_clock) -> FastAPI:
    """The whole web layer over one context."""
    from courtois.web.api import routers as api_routers
    from courtois.web.pages import routers as page_routers

    app = FastAPI(
        title="courtois",
        version="1",
        summary="Invitations that only go where someone agreed they should.",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.clock = clock
    problems.install(app)
    browser_pages.install_not_found(app)
    app.add_middleware(JsonBodyLimit)
    app.add_middleware(ApiKeyGate)  # no body is read before the key is shown
    app.add_middleware(HeadAsGet)  # outermost: every layer sees a HEAD as its GET
    for router in (*api_routers, *page_routers):
        app.include_router(router)
    problems.complete_openapi(app, checks_body)
    return app
