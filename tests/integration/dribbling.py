"""A server that answers one byte at a time: each wait far inside any per-read timeout,
so only an overall deadline stops a reader (a reader without one fails the test after
8 s instead of hanging it)."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def dribbling_server(head: bytes, drip: bytes, greeting: bytes = b"") -> Iterator[int]:
    """Its port: sends `greeting` on connection, reads the first request, sends `head`,
    then the bytes of `drip` one every 0.1 s, over and over, for 8 s at most."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:  # closed unused: the reader refused before connecting
            return
        with connection:
            if greeting:
                connection.sendall(greeting)
            connection.recv(65_536)
            connection.sendall(head)
            until = time.monotonic() + 8
            for byte in itertools.cycle(drip):
                if time.monotonic() > until:
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:  # the reader gave up and closed
                    return
                time.sleep(0.1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        thread.join(10)
