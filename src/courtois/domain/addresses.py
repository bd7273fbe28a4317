"""Email addresses: one normal form, one matching key, one keyed digest.

The digest is the recipient's identity everywhere in the store, so that opt-outs and
"forget me" can keep a recipient blocked without keeping the address (invariant 10).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

from courtois.domain.errors import InvalidAddress

MAX_ADDRESS_LENGTH = 254


@dataclass(frozen=True, slots=True)
class Address:
    """A syntactically valid address: `normalized` to write to, `key` to compare."""

    normalized: str
    key: str

    def __str__(self) -> str:
        return self.normalized


def parse_address(raw: str) -> Address:
    """Validate syntax (no DNS) and normalise; raise InvalidAddress with the reason."""
    text = raw.strip()
    if not text:
        raise InvalidAddress("The address is empty.")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("The address is longer than 254 characters.")
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidAddress(f"Not a valid email address: {error}") from None
    return Address(normalized=valid.normalized, key=matching_key(valid.normalized))


def matching_key(normalized: str) -> str:
    """Fold case on both sides: mail systems treat local parts case-insensitively in practice,
    and one person must not escape an opt-out by writing Ana@ instead of ana@."""
    local, _, domain = normalized.rpartition("@")
    return f"{local.casefold()}@{domain.casefold()}"


def recipient_digest(key: str, secret: bytes) -> str:
    """HMAC-SHA256 of the matching key: stable per deployment, useless without the secret."""
    return hmac.new(secret, key.encode("utf-8"), hashlib.sha256).hexdigest()


def digest_of(raw: str, secret: bytes) -> str:
    """Digest of a raw address, parsing it first."""
    return recipient_digest(parse_address(raw).key, secret)
