"""Read whom a member wrote to, from the To and Cc headers of their Sent folder.

A mailbox holds far more than an address book, so this reader takes as little as the
protocol allows: it opens only the Sent folder, read-only (EXAMINE), and asks for nothing
but the To and Cc header fields (`BODY.PEEK[HEADER.FIELDS (TO CC)]`), never a body, a
subject or another folder, and it refuses to run without the member's explicit consent.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from courtois.domain.contacts import ContactInput, ReadLimit, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.deadline import DEFAULT_DEADLINE, Deadline
from courtois.importers.hosts import HostCheck
from courtois.importers.imap_connection import BoundedIMAP4
from courtois.importers.imap_folders import Mailbox, choose_sent, parse_list, quote
from courtois.importers.imap_headers import HEADER_BYTES, addresses_of

DEFAULT_LIMIT = 5_000
BATCH_SIZE = 100
# Only these header fields, and at most HEADER_BYTES of them per message (an IMAP partial
# fetch), so a batch stays small whatever the server holds.
FETCH_ITEMS = f"(BODY.PEEK[HEADER.FIELDS (TO CC)]<0.{HEADER_BYTES}>)"

_FETCHED = re.compile(rb"^(\d+) \(")


def read_sent_recipients(
    host: str,
    port: int,
    username: str,
    password: str,
    *,
    consent: bool,
    use_ssl: bool = False,
    starttls: bool = False,
    folder: str | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: float = 30.0,
    deadline: float = DEFAULT_DEADLINE,
    ssl_context: ssl.SSLContext | None = None,
    host_check: HostCheck | None = None,
) -> Iterator[ContactInput | RecordProblem | ReadLimit]:
    """Yield each To and Cc address of the newest `limit` sent messages, newest first,
    after a `ReadLimit` when the folder holds more.

    Arguments and consent are checked at once; the server is contacted, and its failures
    raised as `InvalidInput`, only while the result is iterated. `timeout` bounds each
    network wait, `deadline` the whole read (in seconds). `ssl_context` defaults to the
    system's trusted authorities with host name checking.
    """
    if consent is not True:
        raise InvalidInput(
            "Reading the Sent folder needs the member's explicit consent, given for this import."
        )
    if not host or not 0 < port < 65_536:
        raise InvalidInput("The IMAP server needs a host name and a port between 1 and 65535.")
    if use_ssl and starttls:
        raise InvalidInput("Choose either TLS from the start (use_ssl) or STARTTLS, not both.")
    if limit <= 0 or timeout <= 0 or deadline <= 0:
        raise InvalidInput("The IMAP message limit, timeout and deadline must be positive.")
    if host_check is not None:
        host_check(host)
    context = ssl_context or ssl.create_default_context()
    tls = context if (use_ssl or starttls) else None
    server = _Server(host, port, timeout, deadline, tls, starttls)
    return _read(server, username, password, folder, limit)


class _Server:
    """Where and how to connect, and how to say what went wrong without any secret."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        seconds: float,
        context: ssl.SSLContext | None,
        starttls: bool,
    ) -> None:
        self.host, self.port, self.timeout, self.seconds = host, port, timeout, seconds
        self.context, self.starttls = context, starttls
        self.label = f"the IMAP server {host}:{port}"
        # At the start of a sentence: str.capitalize would write "Imap".
        self.title = f"The IMAP server {host}:{port}"

    def connect(self, deadline: Deadline) -> imaplib.IMAP4:
        implicit = self.context if not self.starttls else None
        imap = BoundedIMAP4(
            self.host, self.port, timeout=self.timeout, deadline=deadline, tls=implicit
        )
        if not self.starttls:
            return imap
        try:
            imap.starttls(self.context)
        except imaplib.IMAP4.error as exc:
            imap.shutdown()
            raise InvalidInput(f"{self.title} does not offer STARTTLS.") from exc
        except BaseException:
            with suppress(OSError):  # a failed handshake has closed the socket already
                imap.shutdown()
            raise
        return imap


def _read(
    server: _Server, username: str, password: str, folder: str | None, limit: int
) -> Iterator[ContactInput | RecordProblem | ReadLimit]:
    deadline = Deadline(server.seconds)
    with _failures(server, deadline):
        imap = server.connect(deadline)
        try:
            _log_in(imap, server, username, password)
            mailbox = _sent_folder(imap, folder)
            typ, data = imap.select(quote(mailbox.wire), readonly=True)
            if typ != "OK":
                raise InvalidInput(f"The folder {mailbox.name!r} could not be opened.")
            count = int(data[0] or 0) if data and isinstance(data[0], bytes) else 0
            if count > limit:
                yield ReadLimit(where=mailbox.name, read=limit, total=count)
            oldest = max(1, count - limit + 1)
            for high in range(count, oldest - 1, -BATCH_SIZE):
                low = max(oldest, high - BATCH_SIZE + 1)
                yield from _recipients(imap, low, high)
        finally:
            _leave(imap)


def _log_in(imap: imaplib.IMAP4, server: _Server, username: str, password: str) -> None:
    if "LOGINDISABLED" in imap.capabilities:
        raise InvalidInput(
            f"{server.title} accepts passwords only over TLS: connect with TLS or STARTTLS."
        )
    try:
        if (username + password).isascii():
            imap.login(username, password)
        elif "AUTH=PLAIN" in imap.capabilities:
            # LOGIN is ASCII only; SASL PLAIN carries UTF-8 (RFC 4616).
            secret = f"\0{username}\0{password}".encode()
            imap.authenticate("PLAIN", lambda _challenge: secret)
        else:
            raise InvalidInput(f"{server.title} cannot take a non-ASCII password.")
    except imaplib.IMAP4.error as exc:
        raise InvalidInput(f"{server.title} refused the user name or password.") from exc


def _sent_folder(imap: imaplib.IMAP4, folder: str | None) -> Mailbox:
    typ, data = imap.capability()
    capabilities = set((data[0] or b"").upper().split()) if typ == "OK" and data else set()
    typ = "NO"
    listed: Sequence[bytes | tuple[bytes, bytes] | None] = []
    if {b"SPECIAL-USE", b"LIST-EXTENDED"} <= capabilities:
        # RFC 6154 only promises the \Sent attribute when asked for with this option.
        with suppress(imaplib.IMAP4.error):
            typ, listed = imap.list('""', '"*" RETURN (SPECIAL-USE)')
    if typ != "OK":
        typ, listed = imap.list('""', '"*"')
    if typ != "OK":
        raise InvalidInput("The IMAP server would not list its folders.")
    chosen = choose_sent(parse_list(listed), folder)
    if chosen is not None and not chosen.wire.isascii():
        raise InvalidInput(f"The folder {chosen.name!r} has a name this reader cannot open.")
    if chosen is not None:
        return chosen
    if folder is not None:
        raise InvalidInput(f"This mailbox has no folder named {folder!r}.")
    raise InvalidInput(
        "No Sent folder was found in this mailbox; name the folder that holds sent mail."
    )


def _recipients(imap: imaplib.IMAP4, low: int, high: int) -> Iterator[ContactInput | RecordProblem]:
    """One FETCH of header fields for messages low..high, yielded newest first."""
    typ, data = imap.fetch(f"{low}:{high}", FETCH_ITEMS)
    if typ != "OK":
        raise InvalidInput("The IMAP server refused to read the Sent folder's headers.")
    headers: dict[int, bytes] = {}
    for item in data:
        # A header block comes as (prefix, literal); an empty one may come as a plain line.
        head, literal = item if isinstance(item, tuple) else (item or b"", b"")
        found = _FETCHED.match(head)
        if found is not None and b"BODY[HEADER.FIELDS" in head.upper():
            headers[int(found.group(1))] = literal
    for number in sorted(headers, reverse=True):
        raw = headers[number]
        yield from addresses_of(raw, f"message {number}", cut=len(raw) >= HEADER_BYTES)


def _leave(imap: imaplib.IMAP4) -> None:
    """Log out politely; imaplib drops a connection that is already broken."""
    try:
        imap.logout()
    except OSError:
        return


@contextmanager
def _failures(server: _Server, deadline: Deadline) -> Iterator[None]:
    """Network failures as sentences naming the server, never the account's secrets."""
    try:
        yield
    except (OSError, imaplib.IMAP4.error, InvalidInput) as exc:
        # A timeout may reach here as itself, as imaplib's IMAP4.abort, or already worded
        # by a step ("refused the user name or password"): once the deadline has passed,
        # that is what happened.
        network = exc.__cause__ if isinstance(exc, InvalidInput) else exc
        if isinstance(network, OSError | imaplib.IMAP4.error) and deadline.expired():
            raise InvalidInput(
                f"{server.title} did not send the Sent folder's headers within the "
                f"{deadline.seconds:g} seconds an import may take; nothing was imported."
            ) from network
        if isinstance(exc, InvalidInput):
            raise
        raise _failure(server, exc) from exc


def _failure(server: _Server, exc: OSError | imaplib.IMAP4.error) -> InvalidInput:
    """What went wrong, in one sentence that names the server."""
    label, title = server.label, server.title
    if isinstance(exc, TimeoutError):
        return InvalidInput(f"{title} did not answer within {server.timeout:g} seconds.")
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or "handshake failed"
        return InvalidInput(f"TLS with {label} failed ({reason}).")
    if isinstance(exc, imaplib.IMAP4.abort):
        return InvalidInput(f"{title} closed the connection.")
    if isinstance(exc, imaplib.IMAP4.error):
        return InvalidInput(f"{title} refused a command.")
    reason = exc.strerror or "connection failed"
    return InvalidInput(f"Could not connect to {label}: {reason}.")
