"""The links in every email: `/u` (one-click unsubscribe, RFC 8058) and `/join` (accept).

No login, no cookie, no JavaScript: the signed, scoped token in the URL is the only
authority. Recipient pages carry no session, so a forged cross-site POST has nothing to
ride on and no CSRF token is needed: whoever can post to the URL already holds the token.
A GET of `/u` changes nothing, because link scanners follow every link in a message.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.config import Settings
from courtois.domain.errors import InvalidInput, NotFound
from courtois.policy.rules.strict_eu import members_send_themselves
from courtois.services.context import Context
from courtois.services.recipient_actions import (
    Link,
    accept,
    resolve_link,
    stop_member,
    unsubscribe_link,
)
from courtois.services.recipient_email import email_inviters, stop_email_members
from courtois.tokens import Scope
from courtois.web.deps import Ctx, Now
from courtois.web.pages.forms import BadForm, asks_one_click, read_form
from courtois.web.pages.render import fixed_page, not_found, page, redirect

router = APIRouter(include_in_schema=False)

WELCOME = "/welcome"


def signup_url(settings: Settings, invitation_id: str, locale: str | None = None) -> str:
    """Where an accepting recipient goes: the platform's sign-up URL with `invitation=<id>`
    added to its query; or courtois's own placeholder page, told the invitation's language
    too (`lang=fr`), since it reads nothing stored about the invitation."""
    base = settings.signup_url or settings.base_url.rstrip("/") + WELCOME
    parts = urlsplit(base)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not settings.signup_url and locale:
        query.append(("lang", locale))
    query.append(("invitation", invitation_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


@router.api_route("/u/{token:path}", methods=["GET", "HEAD"])
def unsubscribe_page(request: Request, token: str, ctx: Ctx) -> Response:
    """One button, which posts exactly what a mailbox provider's one click posts.

    Under strict-eu the platform sends no email, so the page says what the click does
    there: no member can invite the recipient through it any more."""
    try:
        link = resolve_link(ctx, Scope.UNSUBSCRIBE, token, shared_too=True)
    except NotFound:
        return not_found(request)
    return page(
        request,
        link.locale,
        "unsubscribe.html",
        inviters=email_inviters(ctx, link),
        by_hand=members_send_themselves(ctx.settings.policy),
        shared=link.shared,
    )


def _stop_members(
    ctx: Context, link: Link, fields: dict[str, str], now: datetime
) -> dict[str, Any]:
    """The page's other buttons: every member the email carried, or one of them (the
    email's own member when none is named), as its footer offers; what the confirmation
    page shows."""
    if fields.get("action") == "stop-members":
        return {"what": "stopped-members", "members": stop_email_members(ctx, link, now)}
    chosen = fields.get("invitation")
    if chosen is not None and chosen not in {i.invitation_id for i in email_inviters(ctx, link)}:
        raise InvalidInput("Choose one of the members listed on the page.", {"invitation": "?"})
    return {"what": "stopped-member", "member": stop_member(ctx, link, now, chosen)}


@router.post("/u/{token:path}")
async def unsubscribe_now(request: Request, token: str, ctx: Ctx, now: Now) -> Response:
    """RFC 8058 one-click: stop everything at once and answer 200, no redirect; again and
    again if asked (nothing more changes). The one click reads and writes in a single
    transaction (one trip to the thread pool); a body that does not ask for it is only
    read, to answer in the invitation's language. A bad link is the same 404 either way.
    Under strict-eu the confirmations say what stopped there: members inviting through
    the platform, which sends no email."""
    by_hand = members_send_themselves(ctx.settings.policy)
    try:
        fields = await read_form(request)
    except BadForm:
        fields = {}
    try:
        if not asks_one_click(fields):
            link = await run_in_threadpool(
                resolve_link, ctx, Scope.UNSUBSCRIBE, token, shared_too=True
            )
            if fields.get("action") in ("stop-member", "stop-members"):
                shown = await run_in_threadpool(_stop_members, ctx, link, fields, now)
                return page(request, link.locale, "done.html", by_hand=by_hand, **shown)
            return page(request, link.locale, "bad_request.html", 400, problem="unsubscribe")
        link = await run_in_threadpool(unsubscribe_link, ctx, token, now)
    except NotFound:
        return not_found(request)
    except InvalidInput:
        return page(request, link.locale, "bad_request.html", 400, problem="member")
    return fixed_page(request, link.locale, "unsubscribed.html", by_hand=by_hand)


@router.get("/join/{token:path}")
def join(request: Request, token: str, ctx: Ctx, now: Now) -> Response:
    """Accept (a sent invitation becomes accepted, once) and send the recipient on to sign
    up, with the invitation's id, which the platform reports back with `POST /v1/joined`.
    Under strict-eu this is also the member's personal share link."""
    try:
        link = resolve_link(ctx, Scope.JOIN, token)
    except NotFound:
        return not_found(request)
    accept(ctx, link, now)
    return redirect(signup_url(ctx.settings, link.invitation_id, link.locale))


@router.head("/join/{token:path}")
def join_head(request: Request, token: str, ctx: Ctx) -> Response:
    """What the GET answers, without accepting: a HEAD comes from link scanners and
    monitors, never from the recipient choosing to join, and must change nothing."""
    try:
        link = resolve_link(ctx, Scope.JOIN, token)
    except NotFound:
        return not_found(request)
    return redirect(signup_url(ctx.settings, link.invitation_id, link.locale))


@router.api_route("/", methods=["GET", "HEAD"])
def about(request: Request, ctx: Ctx) -> Response:
    """The address every email's footer gives as "the service they use" (`base_url`): a
    recipient who follows it learns what courtois does for the platform and where the
    links that act are, instead of a 404. The same page for everyone."""
    by_hand = members_send_themselves(ctx.settings.policy)
    return fixed_page(request, None, "about.html", by_hand=by_hand)


@router.api_route(WELCOME, methods=["GET", "HEAD"])
def welcome(request: Request) -> Response:
    """Where `/join` leads until the platform configures its sign-up URL, in the language
    `/join` names (the invitation's). It reads nothing stored: an invitation id, real or
    guessed, changes nothing on the page, so the page tells nothing about one."""
    return page(request, request.query_params.get("lang"), "welcome.html")
