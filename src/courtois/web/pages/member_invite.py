"""`/member/invite`: choose the note and language, preview the exact email, consent, send.

The preview shows the email as the recipients will get it (subject, text, HTML, and each
follow-up, the reminder only if ticked: it is unticked by default), then the exact consent
sentence. Consenting posts back the preview's hash and the sentence shown; if anything
changed since (the member's name, the platform's words, whom they chose), the page shows
the new preview instead of sending (invariant 2).

Under strict-eu the preview is the text the member sends from their own mailbox, and no
reminder is offered: nothing follows a text the platform does not send. Nor is one where
the operator allows none (`reminder_cap = 0`); a reminder posted anyway is refused with why.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.domain.errors import Conflict, InvalidInput
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.policy.rules.strict_eu import members_send_themselves
from courtois.services.context import Context
from courtois.services.invitations import MAX_RECIPIENTS, ConsentInput
from courtois.services.member_contacts import ContactRow, choice_fingerprint, chosen_contacts
from courtois.services.member_invites import Consented, earlier_answer, invite_chosen
from courtois.services.member_overview import invitation_lines
from courtois.services.previews import Preview, preview_invitations
from courtois.web.deps import Ctx, Now
from courtois.web.pages.member_forms import Form, posted
from courtois.web.pages.member_preview import preview_headers
from courtois.web.pages.member_render import Signed, member_page, not_signed_in, signed_in

router = APIRouter(include_in_schema=False)

_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def _choices(signed: Signed, form: Form | None) -> dict[str, Any]:
    """The compose form's values: as posted, else the member's language, no note, and no
    reminder."""
    locale = form.one("locale") if form else ""
    return {
        "note": form.one("note") if form else "",
        "language": locale if locale in SUPPORTED_LOCALES else signed.member.locale,
        "reminders": 1 if form and form.ticked("reminders") else 0,
    }


def _policy_numbers(request: Request) -> dict[str, Any]:
    policy = request.app.state.ctx.settings.policy
    return {
        "reminder_days": policy.reminder_min_days,
        "undo_minutes": policy.undo_window_minutes,
        "most": MAX_RECIPIENTS,
        "by_hand": members_send_themselves(policy),
        # No reminder box where the operator allows none (`reminder_cap = 0`).
        "reminder_cap": policy.reminder_cap,
    }


def _compose(
    request: Request, signed: Signed, chosen: list[ContactRow], status: int = 200, **values: Any
) -> Response:
    values = {
        "chosen": chosen,
        "locales": SUPPORTED_LOCALES,
        "error": "",
        **values,
    }
    return member_page(
        request,
        signed,
        "member_invite.html",
        status,
        preview=None,
        **_policy_numbers(request),
        **values,
    )


def _show_preview(
    request: Request,
    ctx: Context,
    signed: Signed,
    chosen: list[ContactRow],
    choices: dict[str, Any],
    notice: str = "",
    status: int = 200,
) -> Response:
    """The preview and the consent form, or the compose form with what is wrong."""
    if len(chosen) > MAX_RECIPIENTS:
        return _compose(request, signed, chosen, 422, error="emails", **choices)
    try:
        shown = preview_invitations(
            ctx,
            signed.member.id,
            len(chosen),
            choices["note"],
            choices["language"],
            choices["reminders"],
        )
    except InvalidInput as error:
        field = next(iter(error.details), "note")
        return _compose(request, signed, chosen, 422, error=field, **choices)
    return _preview_page(request, signed, chosen, choices, shown, notice, status)


def _preview_page(
    request: Request,
    signed: Signed,
    chosen: list[ContactRow],
    choices: dict[str, Any],
    shown: Preview,
    notice: str,
    status: int,
) -> Response:
    emails = [shown.html, *(f.html for f in shown.follow_ups)]
    return member_page(
        request,
        signed,
        "member_invite.html",
        status,
        headers=preview_headers(emails),
        chosen=chosen,
        locales=SUPPORTED_LOCALES,
        error="",
        preview=shown,
        choice=choice_fingerprint(chosen),
        key=secrets.token_urlsafe(24),
        notice=notice,
        **_policy_numbers(request),
        **choices,
    )


@router.get("/member/invite")
def compose(request: Request, ctx: Ctx) -> Response:
    """Whom the invitation goes to (the contacts chosen), the note, the language, and the
    reminder check box, unticked."""
    signed = signed_in(request, ctx)
    if signed is None:
        return not_signed_in(request)
    chosen = chosen_contacts(ctx, signed.member.id)
    return _compose(request, signed, chosen, **_choices(signed, None))


@router.post("/member/invite/preview")
async def preview(request: Request, ctx: Ctx) -> Response:
    """The exact email and consent sentence (nothing is written)."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, form = checked

    def show() -> Response:
        chosen = chosen_contacts(ctx, signed.member.id)
        if not chosen:
            return _compose(request, signed, chosen, 409, **_choices(signed, form))
        return _show_preview(request, ctx, signed, chosen, _choices(signed, form))

    return await run_in_threadpool(show)


def _consented(request: Request, form: Form, choices: dict[str, Any]) -> Consented:
    client = request.client.host if request.client else ""
    return Consented(
        note=choices["note"],
        locale=choices["language"],
        reminders=choices["reminders"],
        preview_hash=form.one("preview_hash")[:128],
        consent=ConsentInput(
            text_shown=form.one("consent_text")[:2000],
            ip=client[:64],
            user_agent=_printable(request.headers.get("user-agent", ""))[:512],
        ),
    )


def _printable(header: str) -> str:
    """A browser's header kept as evidence an admin reads: never refused, as the member
    could not change what their browser sends, but stripped of what does not print (a
    control character, or the bytes of a direction override read as Latin-1), which the
    API refuses in the user agent a platform passes on."""
    return header if header.isprintable() else "".join(c for c in header if c.isprintable())


def _send(request: Request, ctx: Context, signed: Signed, form: Form, now: datetime) -> Response:
    member_id = signed.member.id
    key = form.one("key")
    chosen = chosen_contacts(ctx, member_id)
    choices = _choices(signed, form)
    if not chosen:
        answer = earlier_answer(ctx, member_id, "page:" + key) if _KEY.fullmatch(key) else None
        if answer is not None:  # a reload of the page that already sent
            return _sent_page(request, ctx, signed, answer, replayed=True)
        return _compose(request, signed, chosen, 409, **choices)
    if not _KEY.fullmatch(key):
        return _show_preview(request, ctx, signed, chosen, choices, "stale", 409)
    if form.one("choice") != choice_fingerprint(chosen):
        return _show_preview(request, ctx, signed, chosen, choices, "recipients", 409)
    if not form.ticked("consent"):
        return _show_preview(request, ctx, signed, chosen, choices, "tick", 422)
    try:
        invited = invite_chosen(
            ctx, member_id, chosen, _consented(request, form, choices), now, "page:" + key
        )
    except Conflict:
        # A stale preview, a consent sentence that no longer matches, or a key reused for
        # other words: nothing was recorded; show what would be sent now.
        return _show_preview(request, ctx, signed, chosen, choices, "stale", 409)
    except InvalidInput as error:
        field = next(iter(error.details), "note")
        return _compose(request, signed, chosen, 422, error=field, **choices)
    return _sent_page(request, ctx, signed, invited.answer, replayed=invited.replayed)


def _sent_page(
    request: Request, ctx: Context, signed: Signed, answer: dict[str, Any], replayed: bool
) -> Response:
    """Each invitation with its decision; those that will leave, with when (the end of the
    undo window, or later when a quota defers them) and a button to take them back. The
    first answer is shown again to a reload or a form posted twice, with each invitation
    as it stands now: one withdrawn since must not read as leaving."""
    found = answer["invitations"]
    lines = (
        invitation_lines(ctx, signed.member.id, [item["id"] for item in found]) if replayed else {}
    )
    items = []
    for item in found:
        line = lines.get(item["id"])
        in_doubt = line is not None and line.in_doubt
        if line is None:
            status, leaves_at, refused_by = _as_answered(item)
        else:
            status, refused_by = line.state, line.refused_by
            leaves_at = line.leaves_at if line.state == "scheduled" else None
        items.append(
            {
                **item,
                "status": status,
                "in_doubt": in_doubt,
                # Held back by the recipient's quota, no day is given
                # (`decisions.member_schedule`): it would tell the member when someone
                # else's invitation reached that person.
                "spaced": status == "scheduled" and leaves_at is None and not in_doubt,
                "leaves_at": leaves_at,
                "refused_by": refused_by,
                "share_link": item.get("share_link"),
                "share_subject": item.get("share_subject"),
                "share_text": item.get("share_text"),
            }
        )
    leaving = [i["leaves_at"] for i in items if i["status"] == "scheduled" and i["leaves_at"]]
    if any(i["spaced"] for i in items):
        leaving = []  # the earliest is no promise for those held back
    return member_page(
        request,
        signed,
        "member_invite_sent.html",
        items=items,
        consent_id=answer["consent_id"],
        leaves_at=min(leaving) if leaving else None,
    )


def _as_answered(item: dict[str, Any]) -> tuple[str, datetime | None, str | None]:
    """An invitation's state, day and refusing rule as `invite` answered them."""
    scheduled = item.get("scheduled_at")
    denying = [v["rule"] for v in item["decision"]["verdicts"] if v["outcome"] == "deny"]
    leaves_at = datetime.fromisoformat(scheduled) if scheduled else None
    return item["status"], leaves_at, denying[0] if denying else None


@router.post("/member/invite/send")
async def send(request: Request, ctx: Ctx, now: Now) -> Response:
    """Record the consent and invite, or show the preview again when it is out of date."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, form = checked
    return await run_in_threadpool(_send, request, ctx, signed, form, now)
