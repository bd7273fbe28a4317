"""A TCP proxy that can freeze: it keeps every socket open but passes nothing, as a hung
server or a network partition does (connections open, no byte through, no error)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field


@dataclass
class FrozenProxy:
    """The proxy's port, and the switch between passing bytes and holding them."""

    upstream: tuple[str, int]
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)
    flowing: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    port: int = 0

    def freeze(self) -> None:
        """From now on nothing passes either way, on open and new connections alike."""
        self.loop.call_soon_threadsafe(self.flowing.clear)

    def thaw(self) -> None:
        """Bytes pass again, those held first."""
        self.loop.call_soon_threadsafe(self.flowing.set)

    async def pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            while data := await reader.read(65536):
                await self.flowing.wait()  # held here while frozen
                writer.write(data)
                await writer.drain()
        writer.close()

    async def accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        await self.flowing.wait()  # a connection made while frozen reaches nothing
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
        self.writers.append(upstream_writer)
        await asyncio.gather(self.pump(reader, upstream_writer), self.pump(upstream_reader, writer))

    async def serve(self, ready: threading.Event) -> None:
        server = await asyncio.start_server(self.accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await self.stop.wait()
        for writer in self.writers:
            writer.close()
        tasks = asyncio.all_tasks() - {asyncio.current_task()}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def frozen_proxy(host: str, port: int) -> Iterator[FrozenProxy]:
    """A proxy on a free local port to `host:port`, passing bytes until frozen."""
    proxy = FrozenProxy(upstream=(host, port))
    proxy.flowing.set()
    ready = threading.Event()

    def run() -> None:
        try:
            proxy.loop.run_until_complete(proxy.serve(ready))
        finally:
            proxy.loop.close()

    thread = threading.Thread(target=run, name="frozen-proxy", daemon=True)
    thread.start()
    assert ready.wait(10), "the proxy did not start"
    try:
        yield proxy
    finally:
        proxy.thaw()
        proxy.loop.call_soon_threadsafe(proxy.stop.set)
        thread.join(10)
