"""Request bodies read with a ceiling, for the API's and the member pages' imports.

The size is refused twice: from `Content-Length` before a byte is read, and while the body
streams in, for clients that announce no length. Refusing while streaming raises a
MultiPartException so that Starlette's form parser deletes the parts it spooled to disk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from fastapi import Request
from starlette.formparsers import MultiPartException

# Room for the multipart boundaries and the form's small fields around the file.
FRAMING = 64 * 1024


class TooBig(MultiPartException):
    """The body passed its allowance while streaming."""

    def __init__(self) -> None:
        super().__init__("too big")


def declared_too_big(request: Request, allowance: int) -> bool:
    """Whether the announced length already passes the allowance."""
    declared = request.headers.get("content-length", "")
    return declared.isdigit() and int(declared) > allowance


async def bounded(request: Request, allowance: int) -> AsyncGenerator[bytes, None]:
    """The request body, refused (TooBig) the moment it passes `allowance` bytes."""
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > allowance:
            raise TooBig
        yield chunk
