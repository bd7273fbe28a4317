"""What every `/v1` route shares: the router, the key check, idempotency keys, pages.

Pages are cut by an opaque cursor (the position after the last item, encoded), so a page
stays right while rows are added; `limit` is bounded so no request reads everything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from courtois.domain.addresses import ROLE_MAILBOX, Address, is_role_mailbox, parse_address
from courtois.domain.errors import InvalidInput, NotFound
from courtois.store.tables import MAX_INTEGER_ID
from courtois.web.deps import require_api_key
from courtois.web.problems import Problem, responses

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MEMBER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
# The ids courtois makes (UUIDs, `domain/ids.py`), as the document gives their form.
UUID_PATTERN = r"^[0-9a-fA-F-]{1,36}$"
_UUID = re.compile(UUID_PATTERN)

T = TypeVar("T")


def v1_router(tag: str) -> APIRouter:
    """A router under `/v1` whose every route needs the platform's bearer key."""
    return APIRouter(
        prefix="/v1",
        tags=[tag],
        dependencies=[Depends(require_api_key)],
        responses=responses(401),
    )


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, so a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description=(
            "Makes the POST safe to repeat: a repeat with the same key and body gets the "
            "first answer and changes nothing; the same key with another body is refused "
            "(409). Keys are kept 24 hours."
        ),
    ),
]
# An address a route checks itself (`check_email`): the schema sets no bound, which would
# answer `invalid-request` past it where the check answers `invalid-address` below it; the
# body limit bounds its size, and the check refuses one past 254 characters first.
EmailText = Annotated[
    str,
    Field(description="An email address (one that is not valid: 422 `invalid-address`)."),
]
MemberId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=MEMBER_ID_PATTERN, description="Member id.")
]
Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page, at most {MAX_LIMIT}.")
]
# Checked by `decode_cursor`, not by the query's schema: any cursor this API did not give
# out, whatever is wrong with it, is the one problem `invalid-cursor`.
Cursor = Annotated[
    str | None,
    Query(description="`next_cursor` of the previous page; absent for the first page."),
]
_CURSOR = re.compile(r"[A-Za-z0-9_-]{1,400}")


class Page(BaseModel):
    """Pagination fields of every list answer."""

    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


def encode_cursor(position: list[Any]) -> str:
    """An opaque token for the position after an item."""
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(token: str | None, *shape: type) -> list[Any] | None:
    """The position a cursor names (None for the first page); any token this API did not
    make is refused with one problem, whatever is wrong with it."""
    if token is None:
        return None
    if not _CURSOR.fullmatch(token):
        raise bad_cursor()
    try:
        padded = token + "=" * (-len(token) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        position = None
    valid = isinstance(position, list) and len(position) == len(shape)
    if not valid or not all(_fits(v, kind) for v, kind in zip(position, shape, strict=True)):
        raise bad_cursor()
    assert isinstance(position, list)
    return position


def _fits(value: object, kind: type) -> bool:
    """A cursor's part as this API writes one: a row id (never a boolean, never past what
    an `Integer` column holds on either engine, which PostgreSQL would refuse to compare)
    or printable text (no NUL, which PostgreSQL refuses)."""
    if kind is int:
        return type(value) is int and 0 <= value <= MAX_INTEGER_ID
    return isinstance(value, kind) and (not isinstance(value, str) or value.isprintable())


def bad_cursor() -> Problem:
    """The one answer to any cursor this API did not give out."""
    return Problem(422, "invalid-cursor", "The cursor is not one this API gave out.")


@contextmanager
def not_found_as(kind: str) -> Iterator[None]:
    """A use case's NotFound as this resource's problem: the same answer whether the id
    never existed or was never this caller's, and no id or address echoed back."""
    try:
        yield
    except NotFound:
        raise Problem(404, f"{kind}-not-found", f"No such {kind}.") from None


def made_id(description: str) -> Any:
    """A path parameter naming a row by an id courtois made. The document gives the ids'
    form (`UUID_PATTERN`), but the route, not the schema, checks it (`require_made_id`): an
    id of another form names nothing, and is answered as an unknown id is, 404, rather
    than with a 422 that would tell it apart, whatever its length (the server bounds a
    request line)."""
    return Path(
        min_length=1,
        description=f"{description}: a UUID (a value of another form names nothing: 404).",
        json_schema_extra={"pattern": UUID_PATTERN},
    )


def require_made_id(value: str) -> None:
    """NotFound, inside `not_found_as`, for an id no row can have."""
    if not _UUID.fullmatch(value):
        raise NotFound("No such id.")


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """A model's JSON schema with its nested models written in place, for request bodies
    described by hand (a route that reads JSON or a multipart upload)."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(definitions[ref.removeprefix("#/$defs/")])
            return {key: resolve(value) for key, value in node.items()}
        if isinstance(node, list):
            return [resolve(item) for item in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def check_emails(emails: list[str], field: str = "emails") -> list[Address]:
    """Every address valid, or one problem naming each bad one by its position (never by
    the address itself, which is not echoed back)."""
    parsed, bad = [], {}
    for index, raw in enumerate(emails):
        try:
            parsed.append(parse_address(raw))
        except InvalidInput as error:
            bad[f"{field}[{index}]"] = error.message
    if bad:
        raise Problem(422, "invalid-address", f"{len(bad)} address(es) are not valid.", bad)
    return parsed


def check_invitees(emails: list[str]) -> list[Address]:
    """Addresses to invite: valid, and each a person's rather than a role or no-reply
    mailbox (`postmaster@`, `noreply@`), named by position like any bad address."""
    parsed = check_emails(emails)
    roles = {
        f"emails[{index}]": ROLE_MAILBOX
        for index, address in enumerate(parsed)
        if is_role_mailbox(address)
    }
    if roles:
        raise Problem(
            422, "invalid-address", f"{len(roles)} address(es) are not a person's.", roles
        )
    return parsed


def check_email(raw: str, field: str = "email", *, any_local_length: bool = False) -> Address:
    """One valid address, or a problem naming the field (not the address);
    `any_local_length` for a recipient's own request, as `parse_address` says."""
    try:
        return parse_address(raw, any_local_length=any_local_length)
    except InvalidInput as error:
        raise Problem(
            422, "invalid-address", "The address is not valid.", {field: error.message}
        ) from None
