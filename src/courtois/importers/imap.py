"""Read whom a member wrote to, from the To and Cc headers of their Sent folder.

A mailbox holds far more than an address book, so this reader takes as little as the
protocol allows: it opens only the Sent folder, read-only (EXAMINE), and asks for nothing
but the To and Cc header fields (`BODY.PEEK[HEADER.FIELDS (TO CC)]`), never a body, a
subject or another folder, and it refuses to run without the member's explicit consent.
"""

from __future__ import annotations

import email.parser
import email.policy
import imaplib
import re
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.decoding import fix_text
from courtois.importers.hosts import HostCheck
from courtois.importers.imap_folders import Mailbox, choose_sent, parse_list, quote

DEFAULT_LIMIT = 5_000
BATCH_SIZE = 100
# Only these header fields, and at most this many bytes of them per message (an
# IMAP partial fetch), so a batch stays small whatever the server holds.
HEADER_BYTES = 65_536
FETCH_ITEMS = f"(BODY.PEEK[HEADER.FIELDS (TO CC)]<0.{HEADER_BYTES}>)"

_FETCHED = re.compile(rb"^(\d+) \(")
_HEADERS = email.parser.Parser(policy=email.policy.default)


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
    ssl_context: ssl.SSLContext | None = None,
    host_check: HostCheck | None = None,
) -> Iterator[ContactInput | RecordProblem]:
    """Yield each To and Cc address of the newest `limit` sent messages, newest first.

    Arguments and consent are checked at once; the server is contacted, and its failures
    raised as `InvalidInput`, only while the result is iterated. `ssl_context` defaults to
    the system's trusted authorities with host name checking.
    """
    if consent is not True:
        raise InvalidInput(
            "Reading the Sent folder needs the member's explicit consent, given for this import."
        )
    if not host or not 0 < port < 65_536:
        raise InvalidInput("The IMAP server needs a host name and a port between 1 and 65535.")
    if use_ssl and starttls:
        raise InvalidInput("Choose either TLS from the start (use_ssl) or STARTTLS, not both.")
    if limit <= 0 or timeout <= 0:
        raise InvalidInput("The IMAP message limit and timeout must be positive.")
    if host_check is not None:
        host_check(host)
    context = ssl_context or ssl.create_default_context()
    server = _Server(host, port, timeout, context if (use_ssl or starttls) else None, starttls)
    return _read(server, username, password, folder, limit)


class _Server:
    """Where and how to connect, and how to say what went wrong without any secret."""

    def __init__(
        self,
        host: str,
        port: int,
        timeout: float,
        context: ssl.SSLContext | None,
        starttls: bool,
    ) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.context, self.starttls = context, starttls
        self.label = f"the IMAP server {host}:{port}"

    def connect(self) -> imaplib.IMAP4:
        if self.context is not None and not self.starttls:
            return imaplib.IMAP4_SSL(
                self.host, self.port, ssl_context=self.context, timeout=self.timeout
            )
        imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
        if not self.starttls:
            return imap
        try:
            imap.starttls(self.context)
        except imaplib.IMAP4.error as exc:
            imap.shutdown()
            raise InvalidInput(f"{self.label.capitalize()} does not offer STARTTLS.") from exc
        except BaseException:
            with suppress(OSError):  # a failed handshake has closed the socket already
                imap.shutdown()
            raise
        return imap


def _read(
    server: _Server, username: str, password: str, folder: str | None, limit: int
) -> Iterator[ContactInput | RecordProblem]:
    with _failures(server):
        imap = server.connect()
        try:
            _log_in(imap, server, username, password)
            mailbox = _sent_folder(imap, folder)
            typ, data = imap.select(quote(mailbox.wire), readonly=True)
            if typ != "OK":
                raise InvalidInput(f"The folder {mailbox.name!r} could not be opened.")
            count = int(data[0] or 0) if data and isinstance(data[0], bytes) else 0
            oldest = max(1, count - limit + 1)
            for high in range(count, oldest - 1, -BATCH_SIZE):
                low = max(oldest, high - BATCH_SIZE + 1)
                yield from _recipients(imap, low, high)
        finally:
            _leave(imap)


def _log_in(imap: imaplib.IMAP4, server: _Server, username: str, password: str) -> None:
    if "LOGINDISABLED" in imap.capabilities:
        raise InvalidInput(
            f"{server.label.capitalize()} accepts passwords only over TLS: "
            "connect with TLS or STARTTLS."
        )
    try:
        if (username + password).isascii():
            imap.login(username, password)
        elif "AUTH=PLAIN" in imap.capabilities:
            # LOGIN is ASCII only; SASL PLAIN carries UTF-8 (RFC 4616).
            secret = f"\0{username}\0{password}".encode()
            imap.authenticate("PLAIN", lambda _challenge: secret)
        else:
            raise InvalidInput(f"{server.label.capitalize()} cannot take a non-ASCII password.")
    except imaplib.IMAP4.error as exc:
        raise InvalidInput(
            f"{server.label.capitalize()} refused the user name or password."
        ) from exc


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
        yield from _addresses(headers[number], f"message {number}")


def _addresses(raw: bytes, where: str) -> Iterator[ContactInput | RecordProblem]:
    try:
        message = _HEADERS.parsestr(raw.decode("utf-8", "replace"), headersonly=True)
        found = [
            (_storable(address.addr_spec), _storable(address.display_name))
            for field in ("to", "cc")
            for header in message.get_all(field, [])
            for address in header.addresses
            if address.addr_spec
        ]
    except Exception:
        # The stdlib header parser has raised IndexError and others on malformed input;
        # one broken message must not stop the import of the others.
        yield RecordProblem(where=where, reason="its To and Cc headers could not be read")
        return
    if not found:
        yield RecordProblem(where=where, reason="no address in To or Cc")
    for address, name in found:
        yield ContactInput(email=address, name=name, where=where)


def _storable(text: str) -> str:
    """Header text as it can be stored: the parser keeps the bytes of an encoded word in an
    unknown charset as lone surrogates, read here as Windows-1252 like any other 8-bit text."""
    try:
        return fix_text(text)
    except UnicodeError:  # a surrogate that stands for no byte
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def _leave(imap: imaplib.IMAP4) -> None:
    """Log out politely; imaplib drops a connection that is already broken."""
    try:
        imap.logout()
    except OSError:
        return


@contextmanager
def _failures(server: _Server) -> Iterator[None]:
    """Network failures as sentences naming the server, never the account's secrets."""
    label = server.label
    try:
        yield
    except TimeoutError as exc:
        raise InvalidInput(
            f"{label.capitalize()} did not answer within {server.timeout:g} seconds."
        ) from exc
    except ssl.SSLError as exc:
        reason = getattr(exc, "reason", None) or "handshake failed"
        raise InvalidInput(f"TLS with {label} failed ({reason}).") from exc
    except imaplib.IMAP4.abort as exc:
        raise InvalidInput(f"{label.capitalize()} closed the connection.") from exc
    except imaplib.IMAP4.error as exc:
        raise InvalidInput(f"{label.capitalize()} refused a command.") from exc
    except (socket.gaierror, OSError) as exc:
        reason = exc.strerror or "connection failed"
        raise InvalidInput(f"Could not connect to {label}: {reason}.") from exc
