"""Opening an SMTP session the way the worker needs one: connected (TLS from the first byte
for smtps://), greeted, STARTTLS as the URL says, AUTH when it names a user.

The transport opens every connection with it, and `/healthz` opens one with it: the check
passes exactly when the worker could start a transaction, and says which step failed when
it could not (a relay that greets but refuses STARTTLS or our credentials is of no use).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

import aiosmtplib

if TYPE_CHECKING:
    from courtois.delivery.smtp import SmtpSettings

# The steps of opening a session, in their order.
CONNECT = "connect"  # the socket, TLS for smtps://, the greeting
EHLO = "ehlo"
STARTTLS = "starttls"
AUTH = "auth"


class SessionRefused(Exception):
    """Opening the session failed at `step`; `cause` is what aiosmtplib or the socket said,
    which may name the host and port (never the password)."""

    def __init__(self, step: str, cause: Exception) -> None:
        # The worker prefixes "connect: " to it, the stage its reports know.
        super().__init__(str(cause) if step == CONNECT else f"{step}: {cause}")
        self.step = step
        self.cause = cause


def wants_starttls(settings: SmtpSettings, client: aiosmtplib.SMTP) -> bool:
    """Whether to upgrade with STARTTLS: never on smtps:// or with `starttls=off`, always
    when required (a server that does not offer it then fails the step), else when the
    server offers it."""
    if settings.use_tls or settings.starttls is False:
        return False
    return settings.starttls is True or client.supports_extension("starttls")


async def open_session(settings: SmtpSettings) -> aiosmtplib.SMTP:
    """A client ready for MAIL, its extensions known (EHLO, or HELO for a server without
    it, after TLS); raises SessionRefused naming the step that failed. Each step waits at
    most `settings.timeout`; nothing is left open when it fails or is cancelled."""
    client = aiosmtplib.SMTP(
        hostname=settings.host,
        port=settings.port,
        use_tls=settings.use_tls,
        # STARTTLS and AUTH are taken one step at a time below, so a failure is placed.
        start_tls=False,
        timeout=settings.timeout,
        cert_bundle=settings.ca_file,
    )
    try:
        await _step(CONNECT, client.connect())
        await _step(EHLO, _greet(client))
        if wants_starttls(settings, client):
            await _step(STARTTLS, client.starttls())
            # RFC 3207: what the server said before TLS is forgotten; it is asked again.
            await _step(EHLO, _greet(client))
        if settings.username is not None:
            await _step(AUTH, client.login(settings.username, settings.password or ""))
    except BaseException:  # refused, or cancelled by a caller's deadline
        client.close()
        raise
    return client


async def _step(step: str, action: Awaitable[object]) -> None:
    """Run one step; its failure is the session's, named."""
    try:
        await action
    except (aiosmtplib.SMTPException, OSError) as error:
        raise SessionRefused(step, error) from error


async def _greet(client: aiosmtplib.SMTP) -> None:
    """EHLO, falling back to HELO for a server that does not speak ESMTP."""
    if not client.is_ehlo_or_helo_needed:
        return
    try:
        await client.ehlo()
    except aiosmtplib.SMTPHeloError:
        await client.helo()
