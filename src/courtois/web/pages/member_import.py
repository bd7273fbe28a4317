"""`/member/import`: an address-book file (vCard, CSV, LDIF) or addresses pasted in a box.

The upload is refused before it is read when the browser announces more than the import
limit, and counted as it streams otherwise; the form's token is checked once the body is
parsed and before anything is imported. The report gives the counts and, for each record
not imported, where it was and why; a file refused as a whole is refused with its reason.
Everything arrives unselected (invariant 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from email.utils import parseaddr
from itertools import chain
from typing import Any

from babel.units import format_unit
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from courtois.domain.contacts import ContactInput
from courtois.domain.errors import InvalidInput
from courtois.importers import FORMATS
from courtois.services.contacts import ImportReport, import_contacts
from courtois.services.imports import import_file
from courtois.web.deps import Ctx, Now
from courtois.web.pages.member_forms import posted
from courtois.web.pages.member_render import (
    Signed,
    locale_of,
    member_page,
    not_signed_in,
    refused,
    signed_in,
)
from courtois.web.pages.member_session import CSRF_FIELD, from_this_site, valid_csrf
from courtois.web.uploads import FRAMING, TooBig, bounded, declared_too_big

router = APIRouter(include_in_schema=False)


def _split_outside_quotes(line: str) -> list[str]:
    """The line cut at each comma or semicolon that is not inside a quoted name (with its
    backslash escapes) or inside the angle brackets of an address."""
    items: list[str] = []
    current: list[str] = []
    quoted = angled = escaped = False
    for char in line:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"' and not angled:
            quoted = not quoted
        elif not quoted and char in "<>":
            angled = char == "<"
        elif not quoted and not angled and char in ",;":
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


def size_words(size: int, locale: str) -> str:
    """A size limit as people read it in their language ("64 MB", "64 Mo"), never rounded
    up past the limit."""
    if size >= 1_000_000:
        return format_unit(
            size // 100_000 / 10,
            "digital-megabyte",
            length="short",
            format="#,##0.#",
            locale=locale,
        )
    if size >= 1_000:
        return format_unit(size // 1_000, "digital-kilobyte", length="short", locale=locale)
    return format_unit(size, "digital-byte", length="short", locale=locale)


def _import_page(request: Request, signed: Signed, status: int = 200, **values: Any) -> Response:
    limit = request.app.state.ctx.settings.import_max_bytes
    values = {"problem": "", "reason": "", "report": None, "pasted": "", **values}
    words = size_words(limit, locale_of(request, signed))
    return member_page(request, signed, "member_import.html", status, limit=words, **values)


@router.get("/member/import")
def import_form(request: Request, ctx: Ctx) -> Response:
    """The upload form and the paste box."""
    signed = signed_in(request, ctx)
    if signed is None:
        return not_signed_in(request)
    return _import_page(request, signed)


async def _parse_upload(request: Request, limit: int) -> FormData | str:
    """The parsed form, or the problem's name."""
    if declared_too_big(request, limit + FRAMING):
        return "too-big"
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        return "no-file"
    parser = MultiPartParser(
        request.headers, bounded(request, limit + FRAMING), max_files=1, max_fields=8
    )
    try:
        return await parser.parse()
    except TooBig:
        return "too-big"
    except MultiPartException:
        return "no-file"


@router.post("/member/import/file")
async def import_upload(request: Request, ctx: Ctx, now: Now) -> Response:
    """Import the uploaded address book and show the report."""
    signed = await run_in_threadpool(signed_in, request, ctx)
    if signed is None:
        return not_signed_in(request)
    if not from_this_site(request):
        return refused(request, signed)
    limit = ctx.settings.import_max_bytes
    form = await _parse_upload(request, limit)
    if isinstance(form, str):
        return _import_page(request, signed, 413 if form == "too-big" else 422, problem=form)
    try:
        token = form.get(CSRF_FIELD)
        if not valid_csrf(signed.session, token if isinstance(token, str) else None):
            return refused(request, signed)
        upload = form.get("file")
        chosen = form.get("format")
        file_format = chosen if isinstance(chosen, str) and chosen in FORMATS else None
        if not isinstance(upload, UploadFile) or not upload.filename:
            return _import_page(request, signed, 422, problem="no-file")
        if upload.size is not None and upload.size > limit:
            return _import_page(request, signed, 413, problem="too-big")

        def run() -> ImportReport:
            upload.file.seek(0)
            return import_file(
                ctx, signed.member.id, upload.file, now, size=upload.size, file_format=file_format
            )

        try:
            report = await run_in_threadpool(run)
        except InvalidInput as error:
            problem = "unreadable"
            if error.details.get("file") == "too big":
                problem = "too-big"
            elif error.details.get("records") == "too many":
                problem = "too-many"
            if problem != "unreadable":
                return _import_page(request, signed, 413, problem=problem)
            # Why, as the API says it ("The file is empty."), in the page's language.
            return _import_page(request, signed, 422, problem=problem, reason=error.message)
    finally:
        await form.close()
    return _import_page(request, signed, report=report)


def pasted_contacts(text: str) -> Iterator[ContactInput]:
    """Addresses one per line or separated by commas or semicolons, each possibly written
    `Name <address>` (a quoted name may hold commas: `"Doe, John" <john@example.org>`, as
    mail clients copy it); each named by its line (and place in the line) for the report."""
    for number, line in enumerate(text.splitlines(), start=1):
        items = [item.strip() for item in _split_outside_quotes(line)]
        items = [item for item in items if item]
        for place, item in enumerate(items, start=1):
            name, address = parseaddr(item)
            if not address or "@" not in address:
                name, address = "", item
            where = f"line {number}" if len(items) == 1 else f"line {number}, item {place}"
            yield ContactInput(email=address, name=name, where=where)


@router.post("/member/import/paste")
async def import_pasted(request: Request, ctx: Ctx, now: Now) -> Response:
    """Import the pasted addresses and show the report."""
    checked = await posted(request, ctx)
    if isinstance(checked, Response):
        return checked
    signed, form = checked
    text = form.one("addresses")
    # Separators alone (",;") hold no more than an empty box: said so, not "0 imported".
    pasted = pasted_contacts(text)
    first = next(pasted, None)
    if first is None:
        return _import_page(request, signed, 422, problem="nothing-pasted")
    try:
        report = await run_in_threadpool(
            import_contacts, ctx, signed.member.id, chain([first], pasted), "paste", now
        )
    except InvalidInput:
        return _import_page(request, signed, 413, problem="too-many", pasted=text)
    return _import_page(request, signed, report=report)
