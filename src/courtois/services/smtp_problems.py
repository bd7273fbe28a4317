"""What a server's answer says, in words safe to keep: whether a refusal proves the address
dead, a short name for what went wrong (for reports and logs), and the server's own words
without the addresses they quote.

Pure: these read a `Delivery` and nothing else, so the worker's outcomes, its reports and
the tests share one reading of every answer."""

from __future__ import annotations

from courtois.delivery.bounce_classify import effective_status, is_hard
from courtois.delivery.smtp_session import AUTH, EHLO, STARTTLS
from courtois.delivery.transport import Delivery
from courtois.domain.addresses import without_addresses

__all__ = ["is_dead_address", "kept_reply", "problem_of"]


def is_dead_address(delivery: Delivery) -> bool:
    """Whether a permanent refusal says the address itself does not exist: judged by the
    same classifier as bounces that come back later, so both agree on what is dead."""
    if delivery.code < 500:
        return False
    diagnostic = f"{delivery.code} {delivery.reply}"
    return is_hard(effective_status("", diagnostic), diagnostic, command=delivery.command)


# What a transport's own failure text says happened, in the words a report uses.
_TRANSPORT_FAILURES = (
    (("in time", "timed out", "timeout"), "no reply in time"),
    (("refused",), "connection refused"),
    (("closed", "lost", "disconnect", "reset", "broken", "eof"), "connection lost"),
    (("malformed", "too long"), "not SMTP"),
)
_STAGES = ("connect", "before data", "after data", "during data")
# The steps of opening a session after the greeting, as `smtp_session` names them.
_SESSION_STEPS = (EHLO, STARTTLS, AUTH)


def problem_of(delivery: Delivery) -> str:
    """A short name for what went wrong with one message, safe for logs and reports: the
    server's code and the command it refused, or what became of the connection and when
    (the server's own words may quote the address, so they are left out)."""
    if delivery.code:
        return f"{delivery.command or 'reply'} {delivery.code}"
    stage, _, rest = delivery.reply.partition(":")
    if stage not in _STAGES:
        return "not attempted" if delivery.reply == "not attempted" else "refused by the client"
    # One command at a time or pipelined, the body was sent and no reply came.
    stage = "after data" if stage == "during data" else stage
    step, said, _ = rest.strip().partition(":")
    if stage == "connect" and said and step in _SESSION_STEPS:
        # The relay answered, then refused the upgrade or our credentials: a fault of its
        # configuration or ours, which "transport error" would send the operator hunting
        # for in the network.
        return f"connect: {step} failed"
    lowered = rest.lower()
    for words, name in _TRANSPORT_FAILURES:
        if any(word in lowered for word in words):
            return f"{stage}: {name}"
    return f"{stage}: transport error"


def kept_reply(delivery: Delivery) -> str:
    """The server's words as kept (the message's last reason, the ledger): servers quote the
    recipient's address in them ("<bo@example.org>: Recipient address rejected"), which
    no stored reason may hold, since "forget me" cannot reach into the ledger."""
    return without_addresses(delivery.reply)
