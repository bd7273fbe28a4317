"""Email addresses: one normal form, one matching key, one keyed digest.

The digest is the recipient's identity everywhere in the store, so that opt-outs and
"forget me" can keep a recipient blocked without keeping the address (invariant 10).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from courtois.domain.errors import InvalidAddress

MAX_ADDRESS_LENGTH = 254


@dataclass(frozen=True, slots=True)
class Address:
    """A syntactically valid address: `normalized` to write to, `key` to compare."""

    normalized: str
    key: str

    def __str__(self) -> str:
        return self.normalized


# The plain case, ASCII dot-atom@host.tld, checked by these patterns and the special-use
# list of email-validator itself; anything else (quoted local parts, IDNA, odd labels)
# goes through email-validator. A property test holds the two to the same answers.
_ASCII_LOCAL = re.compile(
    r"[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]+(?:\.[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]+)*"
)
_ASCII_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_RESERVED_LABEL = re.compile(r"(?!xn)..--")


def _plain_ascii(text: str) -> str | None:
    """The normal form of a plain ASCII address, or None to let email-validator decide."""
    if not text.isascii() or text.count("@") != 1:
        return None
    local, domain = text.split("@")
    domain = domain.lower()
    if len(local) > 64 or len(domain) > 253 or not _ASCII_LOCAL.fullmatch(local):
        return None
    if "xn--" in domain:  # Punycode: email-validator decodes it to the Unicode form
        return None
    labels = domain.split(".")
    if len(labels) < 2 or not labels[-1][-1:].isalpha():
        return None
    for label in labels:
        if not _ASCII_LABEL.fullmatch(label) or _RESERVED_LABEL.match(label):
            return None
    for special in SPECIAL_USE_DOMAIN_NAMES:
        if domain == special or domain.endswith("." + special):
            return None
    return f"{local}@{domain}"


def parse_address(raw: str) -> Address:
    """Validate syntax (no DNS) and normalise; raise InvalidAddress with the reason."""
    text = raw.strip()
    if not text:
        raise InvalidAddress("The address is empty.")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("The address is longer than 254 characters.")
    plain = _plain_ascii(text)
    if plain is not None:
        return Address(normalized=plain, key=matching_key(plain))
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
