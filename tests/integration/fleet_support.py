"""Support for the worker-fleet test: an SMTP peer that keeps up with several workers by
keeping only what the test counts (each arrival's Message-ID) and can stop one worker in
the middle of a transaction, the ports that tell which process a connection comes from,
and a PostgreSQL URL that puts a separate process in the test's own schema."""

from __future__ import annotations

import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiosmtpd.controller import Controller
from smtp_server import free_port
from sqlalchemy import make_url

# The composer writes the Message-ID on one unfolded line: <message id@domain>.
_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^@>\s]+)@[^>]*>", re.IGNORECASE | re.MULTILINE)


@dataclass
class CountingHandler:
    """Accepts every message and counts it by the local part of its Message-ID (the
    message's id in the store); an arrival without one is counted under "". Offers
    PIPELINING, as a production server does.

    A trap, once set, fires on the next message that arrives over one of its client ports,
    after the body arrived and before the reply leaves: the client has sent it and can never
    learn that it was accepted."""

    arrivals: Counter[str] = field(default_factory=Counter)
    # Read from the test's thread while the server's thread counts.
    total: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _trap: tuple[frozenset[int], Callable[[], None]] | None = None

    def set_trap(self, ports: set[int], spring: Callable[[], None]) -> None:
        """Call `spring` (once) on the next arrival from one of these client ports."""
        with self._lock:
            self._trap = (frozenset(ports), spring)

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        content = bytes(envelope.original_content)
        head = content.split(b"\r\n\r\n", 1)[0]
        found = _MESSAGE_ID.search(head)
        key = found.group(1).decode("ascii") if found else ""
        with self._lock:
            self.arrivals[key] += 1
            self.total += 1
            trap = self._trap
            if trap is not None and session.peer[1] in trap[0]:
                self._trap = None
            else:
                trap = None
        if trap is not None:
            trap[1]()
        return "250 Message accepted"

    def snapshot(self) -> Counter[str]:
        """A copy of the counts, safe to read while the server still runs."""
        with self._lock:
            return Counter(self.arrivals)


def in_schema(url: str, schema: str) -> str:
    """The URL with libpq's `options` setting the search_path, so that a process started
    with it (a CLI subprocess) reads and writes the same schema as the test."""
    parsed = make_url(url)
    options = quote(f"-csearch_path={schema}", safe="")
    rendered = parsed.render_as_string(hide_password=False)
    separator = "&" if parsed.query else "?"
    return f"{rendered}{separator}options={options}"


@contextmanager
def counting_server(handler: CountingHandler) -> Iterator[tuple[str, int]]:
    """aiosmtpd on a free port in this process; yields its URL and port."""
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{port}", port
    finally:
        controller.stop()


def client_ports(pid: int, server_port: int) -> set[int]:
    """The local ports of the process's TCP connections to the server, read from /proc: a
    connection arriving at the server from one of them comes from that process."""
    inodes: set[str] = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:  # the process is gone
        return set()
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    ports: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            columns = line.split()
            local, remote, inode = columns[1], columns[2], columns[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == server_port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports
