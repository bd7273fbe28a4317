"""The "unsubscribe TOKEN" mail that the `mailto:` of List-Unsubscribe (RFC 2369) has a
recipient's mail client send to the bounce address: a pure reading of its subject.

Both ways mail comes in (the SMTP listener, `courtois bounces ingest`) classify with
`bounces.classify`, which asks this first, so a request is honoured whichever way the
platform routes the bounce address. The token is only what the subject says: whether it
names an invitation is for the service that checks its signature to say.
"""

from __future__ import annotations

import re
from email import policy

# The subject our List-Unsubscribe gives (`?subject=unsubscribe%20TOKEN`), whatever the
# case and the spacing a client keeps; a token is URL-safe base64 with its dots.
_UNSUBSCRIBE = re.compile(r"^\s*unsubscribe\s+([A-Za-z0-9_.\-]+)\s*$", re.IGNORECASE)


def unsubscribe_token(subject: object) -> str | None:
    """The token of an "unsubscribe TOKEN" subject, or None for anything else. `subject`
    is the header as a message holds it (folded, RFC 2047 encoded words and all): it is
    unfolded and decoded as the default email policy reads a header, since some clients
    encode even a plain ASCII subject. Never raises: any subject may come in."""
    if subject is None:
        return None
    try:
        unfolded = "".join(str(subject).splitlines())
        text = str(policy.default.header_factory("Subject", unfolded))
    except Exception:  # hostile input the header parser gave up on: no request
        return None
    match = _UNSUBSCRIBE.match(text)
    return match.group(1) if match else None
