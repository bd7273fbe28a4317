"""The demo's home page (`/demo`, and `/` when the app has no page there): what runs, what
was seeded, and every page and command to try, read from the app's routes at each request
so pages added to the product show up without touching the demo."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from courtois.demo.routes import app_routes
from courtois.demo.seed import MEMBER, DemoMember
from courtois.services.contacts import list_contacts
from courtois.services.context import Context
from courtois.tokens import make_sign_in_token
from courtois.web.outbox import page


@dataclass(frozen=True, slots=True)
class DemoInfo:
    """What the home page tells about the running demo."""

    ctx: Context
    config_file: Path
    smtp_url: str
    dkim_record_name: str
    dkim_record_value: str
    worker_interval: float
    member: DemoMember = MEMBER
    # How the printed commands name courtois (`demo.shell.courtois_command`).
    command: str = "courtois"

    @property
    def config_word(self) -> str:
        """The configuration file's path as one shell word."""
        return shlex.quote(str(self.config_file))


def demo_router(info: DemoInfo, redirect_root: bool) -> APIRouter:
    """`/demo`, plus `/` redirecting to it when the product has no page of its own there."""
    router = APIRouter(include_in_schema=False)

    @router.get("/demo", response_class=HTMLResponse)
    def demo_home(request: Request) -> HTMLResponse:
        routes = app_routes(list(request.app.routes))
        settings = info.ctx.settings
        sign_in = ""
        if any(line.path.startswith("/member/sign-in/") for line in routes):
            token = make_sign_in_token(settings.token_secrets, info.member.id)
            sign_in = f"{settings.base_url.rstrip('/')}/member/sign-in/{token}"
        return page(
            "index.html",
            info=info,
            settings=settings,
            contacts=list_contacts(info.ctx, info.member.id),
            routes=routes,
            has_api=any(line.path.startswith("/v1/") for line in routes),
            base=settings.base_url.rstrip("/"),
            sign_in=sign_in,
        )

    if redirect_root:

        @router.get("/")
        def demo_root() -> RedirectResponse:
            return RedirectResponse("/demo", status_code=307)

    return router
