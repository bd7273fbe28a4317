"""The demo's outbox viewer: every email the capture SMTP server received, shown as a
recipient's mail client would get it (headers, text, HTML, raw source).

Only `courtois demo` mounts it; the production app never does. Pages are server-rendered
with autoescaping and a strict Content-Security-Policy; the HTML part is served on its own
under a CSP sandbox and shown in a sandboxed iframe, so a message can run nothing here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from courtois import demo as demo_package
from courtois.demo.capture import Captured, CaptureStore
from courtois.demo.mail_view import MailView, read_mail
from courtois.demo.routes import serves

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(demo_package.__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)
# Links in these pages carry recipients' signed tokens, but the pages' own URLs do not:
# "same-origin" sends no Referer to another site. Not "no-referrer": with it a browser
# posts `Origin: null`, which the send-now button's origin check refuses.
_COMMON = {
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; frame-src 'self'; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
# The HTML part runs in an opaque origin: no script, no form, no request but data: images;
# links may open (as a mail client would let them) when clicked.
HTML_PART_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'; sandbox allow-popups "
    "allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation"
)


def page(template: str, **values: Any) -> HTMLResponse:
    """A page of the demo, rendered and sent with the demo's security headers."""
    html = TEMPLATES.get_template(template).render(**values)
    headers = {**_COMMON, "Content-Security-Policy": PAGE_CSP, "X-Frame-Options": "DENY"}
    return HTMLResponse(html, headers=headers)


@dataclass
class OutboxControls:
    """What the outbox page offers besides reading: a worker pass on demand, and a sentence
    saying how the background worker runs."""

    send_now: Callable[[], str] | None = None
    send_now_label: str = "Run a worker pass now"
    worker_note: str = ""
    last_pass: list[tuple[datetime, str]] = field(default_factory=list)


def outbox_router(store: CaptureStore, controls: OutboxControls | None = None) -> APIRouter:
    """`/outbox` and `/outbox/{n}` over a capture store; not part of the API's schema."""
    options = controls or OutboxControls()
    router = APIRouter(include_in_schema=False)

    @router.get("/outbox", response_class=HTMLResponse)
    def outbox_list() -> HTMLResponse:
        rows = [(m, read_mail(m.raw, headers_only=True)) for m in store.newest_first()]
        return page("outbox.html", rows=rows, controls=options, kept=store.max_messages)

    @router.get("/outbox/{number}", response_class=HTMLResponse)
    def outbox_message(number: int, request: Request) -> HTMLResponse:
        message = _find(store, number)
        view = read_mail(message.raw)
        return page(
            "message.html",
            message=message,
            view=view,
            raw=message.raw.decode("utf-8", "replace"),
            one_click=_one_click_here(view, request),
        )

    @router.get("/outbox/{number}/html")
    def outbox_html_part(number: int) -> Response:
        view = read_mail(_find(store, number).raw)
        if view.html is None:
            raise HTTPException(404, "This email has no HTML part.")
        headers = {
            **_COMMON,
            "Content-Security-Policy": HTML_PART_CSP,
            "X-Frame-Options": "SAMEORIGIN",
        }
        return HTMLResponse(view.html, headers=headers)

    @router.get("/outbox/{number}/raw")
    def outbox_raw(number: int) -> Response:
        message = _find(store, number)
        disposition = f'inline; filename="outbox-{message.number}.eml"'
        headers = {**_COMMON, "Content-Disposition": disposition}
        # The bytes exactly as received, so a signature can be checked against them.
        return Response(message.raw, media_type="text/plain; charset=utf-8", headers=headers)

    if options.send_now is not None:
        send_now = options.send_now

        @router.post("/outbox/send-now")
        def outbox_send_now(request: Request) -> Response:
            _check_same_origin(request)
            options.last_pass[:] = [(datetime.now(UTC), send_now())]
            return RedirectResponse("/outbox", status_code=303)

    return router


def _find(store: CaptureStore, number: int) -> Captured:
    message = store.get(number)
    if message is None:
        raise HTTPException(404, f"No captured email number {number} is kept.")
    return message


def _check_same_origin(request: Request) -> None:
    """A form of this page may press the button; another site may not (no CSRF token is
    needed while browsers send Origin with every cross-site POST)."""
    origin = request.headers.get("origin")
    here = f"{request.url.scheme}://{request.url.netloc}"
    if origin is not None and origin != here:
        raise HTTPException(403, "This action is only taken from the demo's own pages.")


def _one_click_here(view: MailView, request: Request) -> str | None:
    """The List-Unsubscribe URL when a button on this page may POST to it as a mail client
    would (RFC 8058): the email asks for one-click and the URL is served by this demo."""
    if view.one_click_url is None:
        return None
    target = urlsplit(view.one_click_url)
    if (target.scheme, target.netloc) != (request.url.scheme, request.url.netloc):
        return None
    return view.one_click_url if serves(request.app.routes, "POST", "/u/") else None
