"""Webhook signatures: `Courtois-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`.

The HMAC covers `t`, a dot and the exact body bytes, so a receiver can refuse a forged body
and, with a tolerance on `t`, a replayed one. Standard library only, so a receiver written
in Python can import this module alone to check what it gets.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "Courtois-Signature"
EVENT_HEADER = "Courtois-Event"
EVENT_ID_HEADER = "Courtois-Event-Id"
DEFAULT_TOLERANCE_SECONDS = 300


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(
    secret: str,
    header: str,
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `header` signs `body` with `secret` and was made within `tolerance` seconds
    of `now`. courtois sends one v1, made with its one secret: during a secret change,
    call this with the old secret and with the new one. A header carrying several v1
    values is accepted when any of them matches."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates or abs(now - timestamp) > tolerance:
        return False
    expected = _mac(secret, timestamp, body)
    # As bytes: compare_digest refuses a str that is not ASCII, and a hostile header may
    # hold one; it is then simply not the signature.
    want = expected.encode()
    return any(
        hmac.compare_digest(want, candidate.encode("utf-8", "replace")) for candidate in candidates
    )
