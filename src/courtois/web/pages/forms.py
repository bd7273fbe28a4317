"""Reading the small forms the recipient pages and mailbox providers post.

RFC 8058 has providers post `List-Unsubscribe=One-Click` as `multipart/form-data` or as
`application/x-www-form-urlencoded`; both are read, and a body without a recognised type is
read as URL-encoded. Bodies are small, so anything past a few kilobytes is refused before
it is buffered.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import Request
from starlette.exceptions import HTTPException

MAX_BODY = 8 * 1024
MAX_FIELDS = 16


class BadForm(Exception):
    """A body that is not a small form."""


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadForm("body too large")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadForm("body too large")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request) -> dict[str, str]:
    """The form's text fields (the first value of each name); BadForm for anything else."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=0, max_fields=MAX_FIELDS, max_part_size=MAX_BODY)
        except HTTPException as error:
            raise BadForm(str(error.detail)) from None
        fields: dict[str, str] = {}
        for name, value in form.multi_items():
            if not isinstance(value, str):
                raise BadForm("files are not accepted")
            fields.setdefault(name, value)
        return fields
    text = (await _body(request)).decode("utf-8", errors="replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise BadForm("too many fields") from None
    found: dict[str, str] = {}
    for name, value in pairs:
        found.setdefault(name.strip(), value.strip())
    return found


def asks_one_click(fields: dict[str, str]) -> bool:
    """Whether the body is RFC 8058's one-click request."""
    return fields.get("List-Unsubscribe") == "One-Click"
