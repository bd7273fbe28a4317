"""Read a member's contacts from a CardDAV server (RFC 6352), one card at a time.

The member may give the address book's own URL, their principal, or just the server:
discovery follows `current-user-principal` and `addressbook-home-set` (RFC 6352 section 7),
trying `/.well-known/carddav` (RFC 6764) for a bare server. Every address book of the home is
read with one `addressbook-query` REPORT, which every CardDAV server must support, parsed as it
arrives so that only one card is held at a time.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Iterator
from contextlib import contextmanager

import httpx

from courtois.domain.contacts import ContactInput, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.importers.deadline import DEFAULT_DEADLINE, Deadline
from courtois.importers.hosts import HostCheck
from courtois.importers.http_deadline import DeadlineTransport
from courtois.importers.values import item_places
from courtois.importers.vcard import read_vcards
from courtois.importers.webdav import (
    ADDRESSBOOK_QUERY,
    CARDDAV,
    DAV,
    BudgetedStream,
    ByteBudget,
    DavResponse,
    propfind_body,
    read_multistatus,
)

DEFAULT_MAX_BYTES = 50_000_000
_MAX_REDIRECTS = 5
_DISCOVERY = propfind_body("d:resourcetype", "d:current-user-principal", "c:addressbook-home-set")
_HOME_SET = propfind_body("c:addressbook-home-set")
_LISTING = propfind_body("d:resourcetype")


def read_carddav(
    url: str,
    username: str,
    password: str,
    *,
    timeout: float = 30.0,
    deadline: float = DEFAULT_DEADLINE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    host_check: HostCheck | None = None,
) -> Iterator[ContactInput | RecordProblem]:
    """Yield every address of every address book found from `url`, lazily.

    Arguments are checked at once; the network is used, and its failures raised as
    `InvalidInput`, only while the result is iterated. `timeout` bounds each network wait,
    `deadline` the whole read from its first connection (in seconds), and `max_bytes`
    everything read from the server in all; `host_check` is called with the host of every
    request, redirects included, and refuses by raising.
    """
    start = _start_url(url)
    if timeout <= 0 or deadline <= 0 or max_bytes <= 0:
        raise InvalidInput("The CardDAV timeout, deadline and size limit must be positive.")
    auth = httpx.BasicAuth(username, password)
    return _read(start, auth, timeout, deadline, max_bytes, host_check)


def _start_url(url: str) -> httpx.URL:
    """Parse the member's URL, refusing anything but http(s) and dropping any credentials."""
    try:
        parsed = httpx.URL(url.strip())
    except httpx.InvalidURL as exc:
        raise InvalidInput("The CardDAV address is not a valid URL.") from exc
    port_ok = parsed.port is None or 0 < parsed.port < 65_536
    if parsed.scheme not in ("http", "https") or not parsed.host or not port_ok:
        raise InvalidInput("The CardDAV address must start with https:// (or http://).")
    return parsed.copy_with(username=None, password=None, fragment=None)


def _read(
    start: httpx.URL,
    auth: httpx.BasicAuth,
    timeout: float,
    seconds: float,
    max_bytes: int,
    host_check: HostCheck | None,
) -> Iterator[ContactInput | RecordProblem]:
    hooks = {"request": [lambda request: host_check(request.url.host)]} if host_check else {}
    deadline = Deadline(seconds)
    with httpx.Client(
        transport=DeadlineTransport(deadline),
        event_hooks=hooks,
        auth=auth,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=_MAX_REDIRECTS,
        # Compressed answers could inflate past the budget inside one chunk.
        headers={"Accept-Encoding": "identity"},
    ) as client:
        dav = _Dav(client, ByteBudget(max_bytes), start, timeout, deadline)
        for book in _address_books(dav, start):
            for response in dav.multistatus("REPORT", book, ADDRESSBOOK_QUERY, depth="1"):
                try:
                    target = book.join(response.href)
                except httpx.InvalidURL:
                    yield RecordProblem(
                        where=response.href[:200],
                        reason="the server gave this entry an address that is not a URL",
                    )
                    continue
                if target.path.rstrip("/") == book.path.rstrip("/"):
                    continue
                yield from _cards_of(response, target.path)


def _cards_of(response: DavResponse, where: str) -> Iterator[ContactInput | RecordProblem]:
    """The vCard reader's findings for one resource, each pointing at the resource: its
    addresses, when it holds several, as "/books/ana/1.vcf, item 2" (`item_places`, as a
    vCard file names the items of a card), so that a report listing two of them does not
    read as the same place twice."""
    data = response.text_of(f"{CARDDAV}address-data")
    if not data:
        yield RecordProblem(where=where, reason="the server sent no vCard data for this entry")
        return
    # One resource is already whole in memory (`data`): its findings are counted before
    # any is placed.
    found: list[ContactInput | RecordProblem] = []
    refused = None
    try:
        found.extend(read_vcards(io.BytesIO(data.encode("utf-8"))))
    except InvalidInput as refusal:
        # One entry that is not a vCard must not stop the import of the others.
        refused = RecordProblem(where=where, reason=refusal.message)
    addresses = sum(isinstance(item, ContactInput) for item in found)
    places = iter(item_places(where, addresses))
    for item in found:
        if isinstance(item, ContactInput):
            yield ContactInput(email=item.email, name=item.name, where=next(places))
        else:
            yield RecordProblem(where=where, reason=item.reason)
    if refused is not None:
        yield refused


def _address_books(dav: _Dav, start: httpx.URL) -> list[httpx.URL]:
    """The address books reachable from what the member typed, in the server's order."""
    first = dav.first("PROPFIND", start, _DISCOVERY, well_known=start.path in ("", "/"))
    if first.has_type(f"{CARDDAV}addressbook"):
        return [dav.base]
    home = first.href_in(f"{CARDDAV}addressbook-home-set")
    principal = first.href_in(f"{DAV}current-user-principal")
    if home is None and principal is not None:
        at_principal = dav.first("PROPFIND", dav.join(principal), _HOME_SET)
        home = at_principal.href_in(f"{CARDDAV}addressbook-home-set")
    if home is None:
        raise InvalidInput(
            f"{dav.origin} answers WebDAV but names no address book for this account; "
            "give the address book's own URL."
        )
    home_url = dav.join(home)
    books = [
        dav.join(found.href, home_url)
        for found in dav.multistatus("PROPFIND", home_url, _LISTING, depth="1")
        if found.has_type(f"{CARDDAV}addressbook")
    ]
    if not books:
        raise InvalidInput(f"This account has no address book on {dav.origin}.")
    return books


class _Dav:
    """WebDAV requests against one server, turning every failure into a sentence."""

    def __init__(
        self,
        client: httpx.Client,
        budget: ByteBudget,
        start: httpx.URL,
        timeout: float,
        deadline: Deadline,
    ) -> None:
        self.client = client
        self.budget = budget
        self.base = start
        self.origin = _origin(start)
        self.timeout = timeout
        self.deadline = deadline

    def join(self, href: str, base: httpx.URL | None = None) -> httpx.URL:
        """Where an href of the server's answers points, from `base` (else where it answered)."""
        try:
            return (base or self.base).join(href)
        except httpx.InvalidURL as exc:
            raise InvalidInput(
                f"{self.origin} does not look like a CardDAV server: it names an address "
                "that is not a URL."
            ) from exc

    def first(
        self, method: str, url: httpx.URL, body: bytes, *, well_known: bool = False
    ) -> DavResponse:
        """The first response of a Depth 0 request; the base moves to where it was answered."""
        responses = self.multistatus(method, url, body, depth="0", well_known=well_known)
        try:
            found = next(responses, None)
        finally:
            responses.close()
        if found is not None:
            return found
        raise InvalidInput(f"{self.origin} does not look like a CardDAV server: empty answer.")

    def multistatus(
        self, method: str, url: httpx.URL, body: bytes, *, depth: str, well_known: bool = False
    ) -> Generator[DavResponse, None, None]:
        with self._request(method, url, body, depth, well_known) as response:
            self.base = response.url
            yield from read_multistatus(
                BudgetedStream(response.iter_bytes(), self.budget), self.origin
            )

    @contextmanager
    def _request(
        self, method: str, url: httpx.URL, body: bytes, depth: str, well_known: bool
    ) -> Iterator[httpx.Response]:
        headers = {"Depth": depth, "Content-Type": "application/xml; charset=utf-8"}
        try:
            with self.client.stream(method, url, content=body, headers=headers) as response:
                if response.status_code != 207 and well_known and response.status_code != 401:
                    response.close()
                    fallback = url.join("/.well-known/carddav")
                    with self._request(method, fallback, body, depth, False) as found:
                        yield found
                        return
                self._check(response)
                yield response
        except httpx.TimeoutException as exc:
            if self.deadline.expired():
                raise InvalidInput(
                    f"{self.origin} did not send the address books within the "
                    f"{self.deadline.seconds:g} seconds an import may take; nothing was "
                    "imported."
                ) from exc
            raise InvalidInput(
                f"{self.origin} did not answer within {self.timeout:g} seconds."
            ) from exc
        except httpx.TooManyRedirects as exc:
            raise InvalidInput(f"{self.origin} redirects too many times.") from exc
        except httpx.ConnectError as exc:
            raise InvalidInput(f"Could not connect to {self.origin}: {_reason(exc)}.") from exc
        except httpx.TransportError as exc:
            raise InvalidInput(f"{self.origin} broke off the connection.") from exc

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 207:
            size = response.headers.get("Content-Length", "")
            if size.isdigit() and int(size) > self.budget.remaining:
                self.budget.spend(int(size))  # refuse before reading a byte of it
            return
        # A redirect may have led elsewhere: the server named is the one that answered.
        answered = _origin(response.url)
        if status == 401 and "Authorization" not in response.request.headers:
            # A redirect to another server: httpx sends the password to none but the one
            # the member named.
            raise InvalidInput(
                f"{answered}, where {self.origin} redirected, asks for a user name and "
                f"password, which are sent only to the server named: give {answered}'s "
                "address instead."
            )
        if status == 401:
            raise InvalidInput(f"{answered} refused the user name or password.")
        if status == 403:
            raise InvalidInput(f"{answered} does not let this account read that address.")
        if status == 404:
            raise InvalidInput(f"Nothing was found at that address on {answered}.")
        raise InvalidInput(
            f"{answered} does not look like a CardDAV server "
            f"(it answered HTTP {status} to a WebDAV request)."
        )


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _reason(exc: httpx.ConnectError) -> str:
    """The system's reason (refused, unknown name, untrusted certificate), kept short."""
    text = str(exc).strip() or "connection failed"
    return text if len(text) <= 200 else text[:200] + "..."
