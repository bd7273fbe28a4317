"""SMTP one command at a time, through aiosmtplib, for servers without PIPELINING."""

from __future__ import annotations

import aiosmtplib

from courtois.delivery.smtp_envelope import plan
from courtois.delivery.smtp_work import Work, classify, domain_of, refused, session_fault
from courtois.delivery.transport import Delivery, Outgoing, SendResult


async def send_lockstep(client: aiosmtplib.SMTP, work: Work) -> bool:
    """Send from the batch until nothing is left; False once the connection is unfit."""
    while (index := work.take()) is not None:
        outgoing = work.batch[index]
        await work.pacer.wait(domain_of(outgoing))
        delivery = await transaction(client, outgoing)
        work.done(index, delivery)
        if delivery.result is not SendResult.ACCEPTED and not await _reset(client):
            return False
    return client.is_connected


async def transaction(client: aiosmtplib.SMTP, outgoing: Outgoing) -> Delivery:
    """MAIL, RCPT, DATA, each placed: refusals carry the server's code; a failure after
    the body was sent leaves the message unknown. SMTPUTF8 is asked for as
    `smtp_envelope.plan` says."""
    try:
        planned = plan(outgoing, client.supports_extension("smtputf8"))
    except ValueError as error:
        return Delivery(SendResult.PERMANENT, 0, str(error)[:200])
    options, encoding = (["SMTPUTF8"], "utf-8") if planned.smtputf8 else ([], "ascii")
    command = "MAIL"
    try:
        await client.mail(planned.sender, options=options, encoding=encoding)
        command = "RCPT"
        await client.rcpt(planned.recipient, encoding=encoding)
    except aiosmtplib.SMTPResponseException as error:
        return refused(error.code, error.message, command)
    except (aiosmtplib.SMTPException, OSError, ValueError) as error:
        if command == "MAIL" and not isinstance(error, ValueError):
            # The connection failed before the transaction began: the relay's fault.
            return session_fault(f"before data: {error}")
        return Delivery(SendResult.TEMPORARY, 0, f"before data: {error}"[:200])
    try:
        response = await client.data(planned.raw)
    except aiosmtplib.SMTPResponseException as error:
        return Delivery(classify(error.code), error.code, error.message[:200], "DATA")
    except (aiosmtplib.SMTPException, OSError) as error:
        # The body may have reached the server: never resend on a guess.
        return Delivery(SendResult.UNKNOWN, 0, f"during data: {error}"[:200])
    return Delivery(classify(response.code), response.code, response.message[:200])


async def _reset(client: aiosmtplib.SMTP) -> bool:
    """After a refusal, RSET keeps the connection usable; False when it is not."""
    if not client.is_connected:
        return False
    try:
        await client.rset()
    except (aiosmtplib.SMTPException, OSError):
        client.close()
        return False
    return True
