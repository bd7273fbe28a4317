"""`POST /v1/members/{id}/imports`: an address book, as a file upload or as JSON.

The size limit (`import_max_bytes`) holds before a byte is read when the request says its
length, and while reading otherwise: the upload is counted as it streams and refused the
moment it passes the limit, so an endless body costs the server nothing it keeps.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from courtois.domain.contacts import ContactInput
from courtois.domain.errors import InvalidInput
from courtois.importers import FORMATS
from courtois.services.contacts import MAX_CONTACTS_PER_IMPORT, ImportReport, import_contacts
from courtois.services.context import Context
from courtois.services.imports import import_file
from courtois.web.api.common import (
    IdempotencyKey,
    MemberId,
    Strict,
    inline_schema,
    not_found_as,
    v1_router,
)
from courtois.web.deps import Ctx, Now
from courtois.web.idempotency import Answer, once
from courtois.web.problems import Problem, responses
from courtois.web.uploads import FRAMING, TooBig, bounded, declared_too_big

router = v1_router("contacts")

FileFormat = Literal["vcard", "csv", "ldif"]


class ContactIn(Strict):
    """One address and, if known, the name it goes by."""

    email: str = Field(max_length=320)
    name: str = Field("", max_length=500)


class ImportIn(Strict):
    """Contacts the platform already holds (from its own address-book integration)."""

    # At least one, as an uploaded file must hold something: an empty import is a mistake,
    # not an event for the ledger.
    contacts: list[ContactIn] = Field(min_length=1, max_length=MAX_CONTACTS_PER_IMPORT)


class RecordNote(BaseModel):
    """A record that was not imported: where it was and why."""

    where: str = Field(description='"contacts[3]", "card 12", "line 40"...')
    reason: str


class NotRead(BaseModel):
    """Part of the source a reader's bound left unread (a Sent folder's older messages)."""

    where: str = Field(description="The folder read in part.")
    read: int
    total: int
    reason: str = Field(description='"only the newest 5,000 of the 5,108 messages in Sent..."')


class ImportOut(BaseModel):
    """Every record accounted for: records = imported + duplicates + flagged + rejected;
    `not_read` names what the source held beyond the records read, if anything."""

    records: int
    imported: int
    duplicates: int
    flagged: int
    rejected: int
    duplicate_records: list[RecordNote]
    flagged_records: list[RecordNote]
    rejected_records: list[RecordNote]
    not_read: list[NotRead]


UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "vCard (.vcf), CSV export or LDIF file.",
        },
        "format": {
            "type": "string",
            "enum": list(FORMATS),
            "description": "The file's format; detected from its first bytes when absent.",
        },
    },
}
BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": UPLOAD_SCHEMA},
            "application/json": {"schema": inline_schema(ImportIn)},
        },
    }
}


def _too_big(limit: int) -> Problem:
    return Problem(
        413,
        "content-too-large",
        f"The address book is bigger than the {limit:,} bytes an import may hold.",
        {"file": "too big"},
    )


def _check_declared_length(request: Request, allowance: int, limit: int) -> None:
    if declared_too_big(request, allowance):
        raise _too_big(limit)


@router.post(
    "/members/{member_id}/imports",
    response_model=ImportOut,
    responses=responses(404, 409, 413, 415, 422),
    openapi_extra=BODY,
    summary="Import an address book (file upload or JSON)",
)
async def import_address_book(
    member_id: MemberId, request: Request, ctx: Ctx, now: Now, key: IdempotencyKey = None
) -> JSONResponse:
    """Contacts arrive unselected and are purged a day after the import, picked or not.
    A file nobody can read as an address book is refused (422, with the reason); records
    of a readable file that hold no usable address are listed in `rejected_records`."""
    limit = ctx.settings.import_max_bytes
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == "multipart/form-data":
        upload, file_format = await _receive_upload(request, limit)
        try:
            return await _import_upload(
                request, ctx, now, key, member_id, upload, file_format, limit
            )
        finally:
            await upload.close()
    if media_type == "application/json" or media_type.endswith("+json"):
        _check_declared_length(request, limit, limit)
        try:
            body = b"".join([chunk async for chunk in bounded(request, limit)])
        except TooBig:
            raise _too_big(limit) from None
        try:
            parsed = ImportIn.model_validate_json(body)
        except ValidationError as error:
            raise RequestValidationError(error.errors(include_input=False)) from None
        return await run_in_threadpool(_import_json, request, ctx, now, key, member_id, parsed)
    raise Problem(
        415,
        "unsupported-media-type",
        'Send the address book as multipart/form-data (field "file") or as JSON '
        '{"contacts": [{"email": ..., "name": ...}]}.',
    )


async def _receive_upload(request: Request, limit: int) -> tuple[UploadFile, str | None]:
    """The uploaded file (spooled to disk past 1 MiB) and the format named, if any."""
    _check_declared_length(request, limit + FRAMING, limit)
    parser = MultiPartParser(request.headers, bounded(request, limit + FRAMING), max_files=1)
    try:
        form = await parser.parse()
    except TooBig:
        raise _too_big(limit) from None
    except MultiPartException as error:
        raise Problem(422, "invalid-upload", f"The upload is not valid: {error.message}") from None
    upload = form.get("file")
    file_format = form.get("format")
    if not isinstance(upload, UploadFile):
        await form.close()
        raise Problem(422, "invalid-upload", 'The upload has no file in the "file" field.')
    if file_format is not None and file_format not in FORMATS:
        await form.close()
        raise Problem(422, "invalid-upload", 'The "format" field is one of vcard, csv or ldif.')
    if upload.size is not None and upload.size > limit:
        await form.close()
        raise _too_big(limit)
    return upload, file_format if isinstance(file_format, str) else None


async def _import_upload(
    request: Request,
    ctx: Context,
    now: datetime,
    key: str | None,
    member_id: str,
    upload: UploadFile,
    file_format: str | None,
    limit: int,
) -> JSONResponse:
    def fingerprint() -> dict[str, object]:
        digest = hashlib.sha256()
        upload.file.seek(0)
        while block := upload.file.read(1 << 16):
            digest.update(block)
        return {"format": file_format, "file": digest.hexdigest()}

    def action() -> Answer:
        upload.file.seek(0)
        with not_found_as("member"):
            try:
                report = import_file(
                    ctx, member_id, upload.file, now, size=upload.size, file_format=file_format
                )
            except InvalidInput as error:
                if error.details.get("file") == "too big":
                    raise _too_big(limit) from None
                if "format" in error.details:
                    raise Problem(422, "unreadable-file", error.message, error.details) from None
                raise
        return _answer(report)

    def run() -> JSONResponse:
        payload = fingerprint() if key is not None else {}
        return once(request, ctx, now, key, payload, action)

    return await run_in_threadpool(run)


def _import_json(
    request: Request, ctx: Context, now: datetime, key: str | None, member_id: str, parsed: ImportIn
) -> JSONResponse:
    def action() -> Answer:
        records = [
            ContactInput(email=c.email, name=c.name, where=f"contacts[{i}]")
            for i, c in enumerate(parsed.contacts)
        ]
        with not_found_as("member"):
            return _answer(import_contacts(ctx, member_id, records, "api", now))

    return once(request, ctx, now, key, parsed.model_dump(mode="json"), action)


def _answer(report: ImportReport) -> Answer:
    return Answer(200, ImportOut.model_validate(report.as_dict()).model_dump(mode="json"))
