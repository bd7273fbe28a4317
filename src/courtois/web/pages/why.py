"""`/why`: who invited you, when they consented, what is held about you, and every choice:
not interested, remind me later, stop this member, stop everyone, forget me.

The GET only reads. Each choice is a POST form to the same URL; the token in the URL is the
authority (no session, hence no CSRF token), and every choice is idempotent, answering a
repeat with the same confirmation.

"Not interested" and "remind me later" answer the email the link came in, not only the
invitation its token names (a digest's first): "not interested" closes every invitation of
the email still open, and its confirmation names what stands declined; "remind me later"
is asked for one of them, chosen by the button pressed (`invitation=`), and its
confirmation names whose invitation it is about when the email carried several.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.delivery.text import one_line
from courtois.domain.errors import InvalidInput, NotFound
from courtois.domain.invitations import InvitationState
from courtois.policy.rules.strict_eu import members_send_themselves
from courtois.services.context import Context
from courtois.services.recipient_actions import (
    Link,
    decline,
    forget_me,
    has_opted_out,
    resolve_link,
    stop_everyone,
    stop_member,
)
from courtois.services.recipient_reminders import (
    ReminderOutcome,
    date_bounds,
    request_reminder,
)
from courtois.services.recipient_view import email_as_it_stands, what_is_held
from courtois.tokens import Scope
from courtois.web.deps import Ctx, Now
from courtois.web.pages.forms import BadForm, read_form
from courtois.web.pages.render import not_found, page

router = APIRouter(include_in_schema=False)

# The day offered first in "remind me later": a week on, within the allowed range.
DEFAULT_DELAY = timedelta(days=7)


@router.api_route("/why/{token:path}", methods=["GET", "HEAD"])
def why_page(request: Request, token: str, ctx: Ctx, now: Now) -> Response:
    """Everything the recipient may know and do about the invitation(s) that reached them."""
    try:
        link = resolve_link(ctx, Scope.WHY, token, shared_too=True)
    except NotFound:
        return not_found(request)
    held = what_is_held(ctx, link, now)
    first, last = held.first_day, held.last_day
    default_day = min(max(now.date() + DEFAULT_DELAY, first), last)
    # Under strict-eu the platform sends no email: the stops are worded as what they do
    # there, ending the invitations members make through it.
    by_hand = members_send_themselves(ctx.settings.policy)
    return page(
        request,
        link.locale,
        "why.html",
        held=held,
        default_day=default_day,
        by_hand=by_hand,
        privacy_contact=one_line(ctx.settings.privacy_contact),
    )


def _act(ctx: Context, link: Link, fields: dict[str, str], now: datetime) -> dict[str, Any]:
    """Run the chosen action; returns what the confirmation page shows."""
    action = fields.get("action", "")
    if action == "decline":
        decline(ctx, link, now)
        return _declined(ctx, link, now)
    if action == "stop-member":
        return {
            "what": "stopped-member",
            "member": stop_member(ctx, link, now, fields.get("invitation")),
        }
    if link.shared and action == "remind":
        # A reminder is an email, and the platform sends none about a hand-sent invitation;
        # nor may whoever holds a shared link (the member too) ask one in the recipient's name.
        return {"what": "reminder-refused", "rule": "shared"}
    if action == "stop-everyone":
        stop_everyone(ctx, link, now)
        return {"what": "stopped-everyone"}
    if action == "forget":
        forget_me(ctx, link, now)
        return {"what": "forgotten"}
    if action == "remind":
        asked = _day(fields.get("date", ""))
        chosen = _reminded(ctx, link, fields.get("invitation") or None, now)
        answer = request_reminder(ctx, link, asked, now, chosen)
        email = email_as_it_stands(ctx, link, now)
        wanted = chosen or link.invitation_id
        about = next((i for i in email if i.invitation_id == wanted), None)
        if answer.outcome is ReminderOutcome.CLOSED:
            closed = (about,) if about else email
            return {"what": "closed", "closed": closed, "named": len(email) > 1}
        return {
            "what": f"reminder-{answer.outcome.value}",
            "due_at": answer.due_at,
            "asked": asked,
            "rule": answer.rules[0] if answer.rules else "",
            # Whose invitation, said when the email carried several.
            "about": about if len(email) > 1 else None,
        }
    raise InvalidInput("Unknown action.", {"action": "unknown"})


def _declined(ctx: Context, link: Link, now: datetime) -> dict[str, Any]:
    """What "not interested" did, read from what stands now so that a repeat (a second
    click, a stale tab) says the same: the email's invitations that stand declined; or, when
    none does (all were closed otherwise, say accepted or expired, before the click), that
    they are closed and how."""
    email = email_as_it_stands(ctx, link, now)
    # An email of one invitation (or a hand-sent text's link) speaks of "this invitation".
    one = link.shared or len(email) == 1
    declined = tuple(i for i in email if i.state is InvitationState.DECLINED)
    if not declined:
        return {"what": "closed", "closed": email, "named": not one}
    return {
        "what": "declined",
        "declined": declined,
        "one": one,
        # Who stopped everything needs no advice to; a shared link tells nobody whether
        # they did (its holder may be the member).
        "advise": not link.shared and not has_opted_out(ctx, link),
    }


def _reminded(ctx: Context, link: Link, chosen: str | None, now: datetime) -> str | None:
    """The invitation a reminder is asked for: the one the button pressed names; without
    one (a form from before the page named them), the one invitation of the email still
    waiting for an answer, or the linked one when none is (it answers that it is closed).
    Several waiting and none named: the recipient must choose, as the page lets them."""
    if chosen is not None:
        return chosen
    waiting = [i for i in email_as_it_stands(ctx, link, now) if i.state is InvitationState.SENT]
    if len(waiting) > 1:
        raise InvalidInput("Choose one of the members listed on the page.", {"invitation": "?"})
    return waiting[0].invitation_id if waiting else None


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput("Choose a day.", {"date": "not a date"}) from None


@router.post("/why/{token:path}")
async def why_action(request: Request, token: str, ctx: Ctx, now: Now) -> Response:
    """One of the page's choices, then its confirmation page."""
    try:
        link = await run_in_threadpool(resolve_link, ctx, Scope.WHY, token, shared_too=True)
    except NotFound:
        return not_found(request)
    try:
        fields = await read_form(request)
        shown = await run_in_threadpool(_act, ctx, link, fields, now)
    except BadForm:
        return page(request, link.locale, "bad_request.html", 400, problem="form", back=True)
    except InvalidInput as error:
        first, last = date_bounds(ctx, now)
        problem = next(iter(error.details), "form")
        problem = {"invitation": "member"}.get(problem, problem)
        return page(
            request,
            link.locale,
            "bad_request.html",
            400,
            problem=problem,
            first_day=first,
            last_day=last,
            back=True,
        )
    # The confirmations word a stop as the page's buttons do (strict-eu: no email to stop).
    by_hand = members_send_themselves(ctx.settings.policy)
    return page(request, link.locale, "done.html", back=True, by_hand=by_hand, **shown)
