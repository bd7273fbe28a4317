"""import_file, import_carddav, import_sent_folder: address books into `import_contacts`.

The size limit is enforced twice: before reading, when the size is known (a file on disk,
an upload with a length), and while reading, for streams of unknown length, where passing
the limit stops the import before anything is written: `import_contacts` reads the whole
source before it opens its transaction. CardDAV and IMAP reads stop, likewise, at
`import_deadline_seconds`.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, Literal

from courtois.domain.errors import InvalidInput
from courtois.importers import read_contacts
from courtois.importers.carddav import read_carddav
from courtois.importers.hosts import HostCheck, any_host, public_only
from courtois.importers.imap import DEFAULT_LIMIT, read_sent_recipients
from courtois.services.contacts import ImportReport, import_contacts
from courtois.services.context import Context

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ImapServer:
    """Where the member's mail is: TLS from the start by default, STARTTLS, or (only when
    the member says so) none."""

    host: str
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    folder: str | None = None


def _too_big(limit: int) -> InvalidInput:
    return InvalidInput(
        f"The file is bigger than the {limit:,} bytes an import may hold.",
        {"file": "too big"},
    )


class LimitedRaw(io.RawIOBase):
    """A raw stream that counts what is read, reports it, and refuses to pass `limit`.

    The readers see it through an `io.BufferedReader`, so they may read lines or blocks as
    suits their format; the count is of bytes taken from the source, which is what a
    progress bar over a file of known size wants.
    """

    def __init__(self, source: BinaryIO, limit: int, progress: Progress | None = None) -> None:
        super().__init__()
        self._source = source
        self._limit = limit
        self._progress = progress
        self.consumed = 0

    def readable(self) -> bool:
        """Always: it wraps a readable stream."""
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        """Fill `buffer` from the source, at most one byte past the limit, then refuse."""
        view = memoryview(buffer).cast("B")
        room = self._limit + 1 - self.consumed
        data = self._source.read(max(0, min(len(view), room)))
        self.consumed += len(data)
        if self.consumed > self._limit:
            raise _too_big(self._limit)
        view[: len(data)] = data
        if self._progress is not None and data:
            self._progress(self.consumed)
        return len(data)


def limited(stream: BinaryIO, limit: int, progress: Progress | None = None) -> BinaryIO:
    """`stream` as the importers read it: buffered, counted and bounded."""
    return io.BufferedReader(LimitedRaw(stream, limit, progress), buffer_size=1 << 16)


def import_file(
    ctx: Context,
    member_id: str,
    stream: BinaryIO,
    now: datetime,
    *,
    size: int | None = None,
    file_format: str | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Read an address-book export (format named or detected) and import it unselected."""
    limit = ctx.settings.import_max_bytes
    if size is not None and size > limit:
        raise _too_big(limit)
    records = read_contacts(limited(stream, limit, progress), file_format)
    return import_contacts(ctx, member_id, records, file_format or "file", now)


def _host_check(ctx: Context) -> HostCheck:
    return any_host if ctx.settings.import_private_hosts else public_only


def import_carddav(
    ctx: Context, member_id: str, url: str, username: str, password: str, now: datetime
) -> ImportReport:
    """Every address book of the member's CardDAV account, read once, imported unselected."""
    records = read_carddav(
        url,
        username,
        password,
        deadline=ctx.settings.import_deadline_seconds,
        max_bytes=ctx.settings.import_max_bytes,
        host_check=_host_check(ctx),
    )
    return import_contacts(ctx, member_id, records, "carddav", now)


def import_sent_folder(
    ctx: Context,
    member_id: str,
    server: ImapServer,
    username: str,
    password: str,
    now: datetime,
    *,
    consent: bool,
    limit: int = DEFAULT_LIMIT,
) -> ImportReport:
    """The To and Cc addresses of the member's sent mail, with their explicit consent for
    this import: headers of the Sent folder only, never a body, never another folder; the
    newest `limit` messages, the report saying so when the folder holds more."""
    records = read_sent_recipients(
        server.host,
        server.port,
        username,
        password,
        consent=consent,
        limit=limit,
        use_ssl=server.security == "tls",
        starttls=server.security == "starttls",
        folder=server.folder,
        deadline=ctx.settings.import_deadline_seconds,
        host_check=_host_check(ctx),
    )
    return import_contacts(ctx, member_id, records, "imap-sent", now)
