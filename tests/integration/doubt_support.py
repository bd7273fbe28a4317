"""An email in doubt, made for real: a worker claims the due emails, hands them to a
transport and dies before it hears the server's answer; a later pass finds the lease run
out and records their fate `unknown`. The transport keeps what it was given, as the
recipient's inbox would, so a test can follow the links the email carried."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Sequence
from datetime import timedelta
from email.message import EmailMessage

import pytest
from support import T0

from courtois.delivery.compose import tokens_in
from courtois.delivery.render import Tokens
from courtois.delivery.transport import Delivery, Outgoing
from courtois.services.context import Context
from courtois.services.worker import run_pass

CLAIMED = T0 + timedelta(minutes=12)
LATER = T0 + timedelta(hours=3)
CLICKED = LATER + timedelta(hours=1)


class Killed(Exception):
    """The worker's end, mid-send."""


class DiesMidSend:
    """A transport whose worker dies once the emails are handed over: nothing records what
    the server said. It keeps what it was given, as the recipient's inbox would."""

    def __init__(self) -> None:
        self.given: list[Outgoing] = []

    def send_batch(self, batch: Sequence[Outgoing], until: float | None = None) -> list[Delivery]:
        self.given.extend(batch)
        raise Killed


def emails_in_doubt(ctx: Context, in_doubt: int) -> list[tuple[tuple[str, ...], Tokens]]:
    """A worker claims every due email at CLAIMED and dies while sending them; a pass at
    LATER finds their leases run out and puts them in doubt. Each email that may have
    arrived, as the invitations it carried and the tokens of its links."""
    transport = DiesMidSend()
    with pytest.raises(Killed):
        run_pass(ctx, CLAIMED, transport)
    assert run_pass(ctx, LATER, None).unknown == in_doubt
    found = []
    for outgoing in transport.given:
        parsed = email.message_from_bytes(outgoing.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        found.append((tuple(outgoing.invitation_ids), tokens_in(parsed, ctx.settings)))
    return found
