"""What one message's SMTP transaction carries, pipelined or not: the envelope's addresses,
whether it asks for SMTPUTF8, and the bytes of the message.

SMTPUTF8 (RFC 6531) is asked for whenever the transaction needs it, and only then: when
an envelope address has a local part outside ASCII, or when the message itself holds 8-bit
header bytes (a member's Reply-To with such a local part, written as the UTF-8 policy
writes it). Asking by the envelope alone would hand a server that never agreed to it a
header of raw UTF-8. An ASCII local part at an international domain is no such case: its
domain travels in A-labels (xn--), as the To header names it.
"""

from __future__ import annotations

from dataclasses import dataclass

from courtois.delivery.transport import Outgoing
from courtois.domain.addresses import ascii_form

NO_SMTPUTF8 = "the server does not accept international addresses (SMTPUTF8)"


@dataclass(frozen=True, slots=True)
class Planned:
    """One transaction: MAIL FROM and RCPT TO as sent, SMTPUTF8 asked for or not, and the
    message that follows DATA."""

    sender: str
    recipient: str
    smtputf8: bool
    raw: bytes


def plan(outgoing: Outgoing, offered: bool) -> Planned:
    """The transaction for this message on a server that offers SMTPUTF8 or not (`offered`).

    A server without SMTPUTF8 cannot take an address whose local part is outside ASCII:
    ValueError, the message refused by the client, as for a recipient's such address. When
    only the member's Reply-To needs SMTPUTF8, the server gets the same email without its
    Reply-To (`Outgoing.raw_ascii`), composed and signed beside it. That is the safest of
    the outcomes: the words, links and sender are those the member consented to (their
    preview hash does not cover the Reply-To), the recipient's replies go to the platform
    as for any member who did not ask for them, and nothing of the member's is disclosed
    that they did not choose to disclose; failing it would close the invitation as
    `bounced` for a fault of the relay, and holding it would keep it from ever leaving
    through that relay."""
    try:
        sender, recipient = ascii_form(outgoing.envelope_from), ascii_form(outgoing.to)
    except ValueError:
        # No ASCII form (the domain was checked when the email was written, so never in
        # practice): as written, which needs SMTPUTF8.
        sender, recipient = outgoing.envelope_from, outgoing.to
    addresses = not (sender.isascii() and recipient.isascii())
    if not addresses and outgoing.raw.isascii():
        return Planned(sender, recipient, False, outgoing.raw)
    if offered:
        return Planned(sender, recipient, True, outgoing.raw)
    if not addresses and outgoing.raw_ascii:
        return Planned(sender, recipient, False, outgoing.raw_ascii)
    raise ValueError(NO_SMTPUTF8)
