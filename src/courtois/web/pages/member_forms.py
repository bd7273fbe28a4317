"""Reading the member pages' forms, each POST checked before anything is done with it.

A POST must come from this site and carry the session's CSRF token; otherwise it is
refused with 403, before its body is read when the browser already said where it came
from. Forms are URL-encoded, bounded in size and in fields, and may repeat a field (the
contact list's check boxes).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from courtois.services.context import Context
from courtois.store.tables import MAX_INTEGER_ID
from courtois.web.pages.member_render import Signed, not_signed_in, refused, signed_in
from courtois.web.pages.member_session import CSRF_FIELD, from_this_site, valid_csrf

# Room for a long pasted list of addresses (about 10,000 of them).
MAX_BODY = 1024 * 1024
MAX_FIELDS = 1000


def _row_id(value: str) -> bool:
    # "²".isdigit() holds but int("²") fails; PostgreSQL's integer ids stop at 2**31 - 1.
    return value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= MAX_INTEGER_ID


class FormTooBig(Exception):
    """A body past the form's allowance."""


@dataclass(frozen=True, slots=True)
class Form:
    """A posted form's fields, each with every value it was given."""

    fields: dict[str, list[str]]

    def one(self, name: str, default: str = "") -> str:
        """The field's first value."""
        values = self.fields.get(name)
        return values[0] if values else default

    def ints(self, name: str) -> list[int]:
        """The field's values that are row ids: ASCII digits within a database integer
        (others are ignored)."""
        return [int(v) for v in self.fields.get(name, []) if _row_id(v)]

    def ticked(self, name: str) -> bool:
        """Whether a check box of that name was ticked."""
        return bool(self.fields.get(name))


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused once it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FormTooBig
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise FormTooBig
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> Form:
    """URL-encoded fields; FormTooBig past MAX_FIELDS."""
    try:
        pairs = parse_qsl(
            body.decode("utf-8", errors="replace"),
            keep_blank_values=True,
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:
        raise FormTooBig from None
    fields: dict[str, list[str]] = {}
    for name, value in pairs:
        fields.setdefault(name, []).append(value)
    return Form(fields)


async def posted(request: Request, ctx: Context) -> tuple[Signed, Form] | Response:
    """The signed-in member and their form, or the response refusing the request: not
    signed in (401), from another site or without this session's token (403), too big
    (413)."""
    signed = await run_in_threadpool(signed_in, request, ctx)
    if signed is None:
        return not_signed_in(request)
    if not from_this_site(request):
        return refused(request, signed)
    try:
        form = parse_form(await read_body(request, MAX_BODY))
    except FormTooBig:
        return refused(request, signed, too_big=True)
    if not valid_csrf(signed.session, form.one(CSRF_FIELD) or None):
        return refused(request, signed)
    return signed, form
