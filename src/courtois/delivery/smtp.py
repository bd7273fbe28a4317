"""The SMTP transport: pooled aiosmtplib connections, bounded concurrency, a per-domain
rate limit, and an exact account of what the server said.

The steps of each transaction are taken one by one so that a failure can be placed: before
DATA nothing left (temporary, safe to retry); after the body was sent and before the reply
the message may have been accepted (unknown, never retried blindly).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiosmtplib

from courtois.delivery.transport import Delivery, Outgoing, SendResult


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to connect."""

    host: str
    port: int
    use_tls: bool = False
    username: str | None = None
    password: str | None = None
    connections: int = 4
    per_domain_per_second: float = 20.0
    timeout: float = 30.0


def parse_smtp_url(
    url: str, connections: int = 4, per_domain_per_second: float = 20.0
) -> SmtpSettings:
    """`smtp://[user:password@]host:port` or `smtps://...` for TLS from the first byte."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"not an smtp:// or smtps:// URL: {url!r}")
    use_tls = parts.scheme == "smtps"
    return SmtpSettings(
        host=parts.hostname,
        port=parts.port or (465 if use_tls else 25),
        use_tls=use_tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        connections=connections,
        per_domain_per_second=per_domain_per_second,
    )


class DomainPacer:
    """At most `rate` messages a second to any one recipient domain, across connections."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next_slot: dict[str, float] = defaultdict(float)

    async def wait(self, domain: str) -> None:
        """Sleep until this domain's next slot, and book the one after it."""
        now = time.monotonic()
        slot = max(now, self.next_slot[domain])
        self.next_slot[domain] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


def _classify(code: int) -> SendResult:
    if 200 <= code < 300:
        return SendResult.ACCEPTED
    if 400 <= code < 500:
        return SendResult.TEMPORARY
    return SendResult.PERMANENT


class SmtpTransport:
    """Sends batches over up to `connections` SMTP connections at once."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def send_batch(self, batch: Sequence[Outgoing]) -> list[Delivery]:
        """Run the batch on a private event loop; the worker stays synchronous."""
        if not batch:
            return []
        return asyncio.run(self._send_all(batch))

    async def _send_all(self, batch: Sequence[Outgoing]) -> list[Delivery]:
        results: list[Delivery | None] = [None] * len(batch)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for index in range(len(batch)):
            queue.put_nowait(index)
        pacer = DomainPacer(self.settings.per_domain_per_second)
        workers = min(self.settings.connections, len(batch))
        await asyncio.gather(
            *(self._connection(batch, queue, results, pacer) for _ in range(workers))
        )
        return [r or Delivery(SendResult.TEMPORARY, 0, "not attempted") for r in results]

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            use_tls=s.use_tls,
            start_tls=False if not s.use_tls else None,
            username=s.username,
            password=s.password,
            timeout=s.timeout,
        )

    async def _connection(
        self,
        batch: Sequence[Outgoing],
        queue: asyncio.Queue[int],
        results: list[Delivery | None],
        pacer: DomainPacer,
    ) -> None:
        client: aiosmtplib.SMTP | None = None
        try:
            while not queue.empty():
                index = queue.get_nowait()
                outgoing = batch[index]
                await pacer.wait(outgoing.to.rpartition("@")[2].lower())
                if client is None or not client.is_connected:
                    client = self._client()
                    try:
                        await client.connect()
                    except (aiosmtplib.SMTPException, OSError) as error:
                        results[index] = Delivery(
                            SendResult.TEMPORARY, 0, f"connect: {error}"[:200]
                        )
                        client = None
                        continue
                delivery = await self._transaction(client, outgoing)
                results[index] = delivery
                if delivery.result is not SendResult.ACCEPTED:
                    client = await _reset(client)
        finally:
            if client is not None and client.is_connected:
                try:
                    await client.quit()
                except (aiosmtplib.SMTPException, OSError):
                    client.close()

    async def _transaction(self, client: aiosmtplib.SMTP, outgoing: Outgoing) -> Delivery:
        """MAIL, RCPT, DATA, each placed: refusals carry the server's code."""
        try:
            await client.mail(outgoing.envelope_from)
            await client.rcpt(outgoing.to)
        except aiosmtplib.SMTPResponseException as error:
            return Delivery(_classify(error.code), error.code, error.message[:200])
        except (aiosmtplib.SMTPException, OSError) as error:
            return Delivery(SendResult.TEMPORARY, 0, f"before data: {error}"[:200])
        try:
            response = await client.data(outgoing.raw)
        except aiosmtplib.SMTPResponseException as error:
            return Delivery(_classify(error.code), error.code, error.message[:200])
        except (aiosmtplib.SMTPException, OSError) as error:
            # The body may have reached the server: never resend on a guess.
            return Delivery(SendResult.UNKNOWN, 0, f"during data: {error}"[:200])
        return Delivery(_classify(response.code), response.code, response.message[:200])


async def _reset(client: aiosmtplib.SMTP) -> aiosmtplib.SMTP | None:
    """After a refusal, RSET keeps the connection usable; a dead one is dropped."""
    if not client.is_connected:
        return None
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
        return None
    return client
