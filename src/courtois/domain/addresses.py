"""Email addresses: one normal form, one matching key, one keyed digest.

The digest is the recipient's identity everywhere in the store, so that opt-outs and
"forget me" can keep a recipient blocked without keeping the address (invariant 10).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import lru_cache
from typing import NamedTuple

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from courtois.domain.errors import InvalidAddress

MAX_ADDRESS_LENGTH = 254
# RFC 5321, section 4.5.3.1.1: the local part is at most 64 octets, of its UTF-8 form for
# an internationalised one (RFC 6531). email-validator checks it in strict mode only, and
# counts characters there.
MAX_LOCAL_PART_OCTETS = 64
LOCAL_PART_TOO_LONG = (
    f"Not a valid email address: the part before the @-sign is longer than "
    f"{MAX_LOCAL_PART_OCTETS} bytes."
)


class Address(NamedTuple):
    """A syntactically valid address: `normalized` to write to, `key` to compare.

    A named tuple rather than a frozen dataclass: as immutable, and built several times
    faster, which counts when an import normalises a million addresses.
    """

    normalized: str
    key: str

    def __str__(self) -> str:
        return self.normalized


# The plain case, ASCII dot-atom@host.tld, recognised by two patterns and the special-use
# list of email-validator itself; anything else (quoted local parts, IDNA, odd labels)
# goes through email-validator. A property test holds the two to the same answers.
# Labels are letters, digits and inner hyphens, never "--" in third and fourth place
# (reserved for IDNA's "xn--", decoded by email-validator); the top-level one ends in a
# letter.
_ATEXT = r"[A-Za-z0-9_!#$%&'*+\-/=?^`{|}~]"
_LABEL = r"(?!..--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TOP_LABEL = r"(?!..--)(?:[A-Za-z0-9][A-Za-z0-9-]{0,61})?[A-Za-z]"
# Possessive: an atom never gives back a character (none of them is a dot), so the engine
# keeps no backtracking points, a fifth cheaper on a usual local part.
_LOCAL = re.compile(rf"{_ATEXT}++(?:\.{_ATEXT}++)*+")
_DOMAIN = re.compile(rf"(?:{_LABEL}\.)+{_TOP_LABEL}")
# email-validator's special-use names are single labels today; any with a dot is checked
# the slow way, so a future list stays right.
_SPECIAL_TOP = frozenset(name for name in SPECIAL_USE_DOMAIN_NAMES if "." not in name)
_SPECIAL_LONGER = tuple(name for name in SPECIAL_USE_DOMAIN_NAMES if "." in name)
# An address book names a few hundred domains a million times: each is judged once.
_KNOWN_DOMAINS = 4096


def _special_use(domain: str) -> bool:
    """Whether a lower-case domain is, or is under, a special-use name."""
    if domain[domain.rfind(".") + 1 :] in _SPECIAL_TOP:
        return True
    return any(domain == name or domain.endswith("." + name) for name in _SPECIAL_LONGER)


@lru_cache(maxsize=_KNOWN_DOMAINS)
def _plain_domain(domain: str) -> str:
    """The lower-case form of a plain ASCII host name, or "" to let email-validator decide."""
    if len(domain) > 253 or _DOMAIN.fullmatch(domain) is None:
        return ""
    lower = domain.lower()
    if "xn--" in lower or _special_use(lower):
        return ""
    return lower


def _plain_ascii(text: str) -> Address | None:
    """A plain ASCII address, normalised, or None to let email-validator decide."""
    # The local part's pattern refuses "@", so the last one is the only one.
    local, _, domain = text.rpartition("@")
    canonical = _plain_domain(domain)
    if not canonical or len(local) > 64 or _LOCAL.fullmatch(local) is None:
        return None
    # A domain written in lower case (the usual) leaves the address as it was.
    normalized = text if canonical == domain else f"{local}@{canonical}"
    # ASCII only: lower() is casefold() here, and the domain is lower-case already. The
    # tuple is built directly: Address's own constructor, a Python function around this
    # call, would double the cost of building it.
    return tuple.__new__(Address, (normalized, normalized.lower()))


def parse_address(raw: str, *, any_local_length: bool = False) -> Address:
    """Validate syntax (no DNS) and normalise; raise InvalidAddress with the reason.

    `any_local_length` lets a local part past 64 octets through, for a recipient's own
    request only (an opt-out, a join, "forget me", a bounce, an admin's look-up): such an
    address may have been taken in before the limit was enforced, and its owner must still
    be able to stop and be forgotten. Nothing that writes to an address passes it.
    """
    text = raw.strip()
    if not text:
        raise InvalidAddress("The address is empty.")
    if len(text) > MAX_ADDRESS_LENGTH:
        raise InvalidAddress("The address is longer than 254 characters.")
    if "=?" in text.rpartition("@")[0]:
        # Valid characters, but an encoded word may not appear in an address (RFC 2047,
        # section 5), and a header parser decodes it as one: the email could not be written.
        raise InvalidAddress("Not a valid email address: it holds an encoded word (=?).")
    # The fast path takes no local part past 64 characters (octets: it is ASCII), so an
    # address past the limit always comes down to the check below, whatever path it took.
    plain = _plain_ascii(text)
    if plain is not None:
        return plain
    try:
        valid = validate_email(text, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidAddress(f"Not a valid email address: {error}") from None
    # Counted on the normal form, the one an email is written to.
    local = valid.normalized.rpartition("@")[0]
    if len(local.encode()) > MAX_LOCAL_PART_OCTETS and not any_local_length:
        raise InvalidAddress(LOCAL_PART_TOO_LONG)
    return Address(valid.normalized, matching_key(valid.normalized))


# Mailboxes of a function rather than of a person: RFC 2142's, the mail system's own and
# the senders of notifications. An address book pulled from a Sent folder is full of
# them, an invitation there reaches no one who could answer it, and mail to them is what
# abuse desks and spam traps watch. Only invitations and imports refuse them: an opt-out,
# a join or a bounce for such an address is taken as for any other.
ROLE_LOCAL_PARTS = frozenset(
    {
        "abuse",
        "bounce",
        "bounces",
        "hostmaster",
        "mailer-daemon",
        "nobody",
        "postmaster",
    }
)
ROLE_MAILBOX = "a role or no-reply mailbox, not a person"
_NO_REPLY_STARTS = frozenset({"no", "do"})  # an import checks every address: regex only then
_NO_REPLY = re.compile(r"(?:no|do[-_.]?not)[-_.]?reply(?:[-_.+].*)?", re.IGNORECASE)


def is_role_mailbox(address: Address) -> bool:
    """Whether the address is a role or no-reply mailbox (`postmaster@`, `noreply-42@`,
    `bounces+tag@`), which no person reads as theirs."""
    key = address.key
    local = key[: key.rindex("@")]
    if local[:2] in _NO_REPLY_STARTS and _NO_REPLY.fullmatch(local) is not None:
        return True
    return local.partition("+")[0] in ROLE_LOCAL_PARTS


def ascii_domain(domain: str) -> str:
    """The domain as DNS, and an SMTP server without SMTPUTF8, know it: its A-labels (xn--,
    IDNA 2008) as email-validator writes them, so that the envelope and the headers name
    the one domain `parse_address` accepted (the stdlib's codec is IDNA 2003, which maps
    "faß.de" to another domain, "fass.de"). An ASCII domain is returned as it is. Raises
    ValueError for a domain that has no such form."""
    return domain if domain.isascii() else _a_labels(domain)


@lru_cache(maxsize=_KNOWN_DOMAINS)
def _a_labels(domain: str) -> str:
    # email-validator converts a domain only as part of an address: the shortest one.
    valid = validate_email(
        f"a@{domain}", check_deliverability=False, test_environment=True, globally_deliverable=False
    )
    return valid.ascii_domain


def ascii_form(address: str) -> str:
    """The address with its domain in A-labels (`ascii_domain`): what travels in the SMTP
    envelope, as in the To header. An ASCII local part at an international domain then
    needs nothing of the server (RFC 5890); only a local part outside ASCII still needs
    SMTPUTF8 (RFC 6531), having no other form. Raises ValueError as `ascii_domain` does."""
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    return f"{local}@{ascii_domain(domain)}"


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


# Anything shaped like an address, replaced wherever text from outside (a mail server's
# reply, a problem quoting input) is kept or shown.
_ADDRESS_SHAPED = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+")
HIDDEN_ADDRESS = "(address)"


def without_addresses(text: str) -> str:
    """`text` with every address-shaped word replaced: problems, logs, stored reasons and
    the ledger never hold one (invariant 10)."""
    return _ADDRESS_SHAPED.sub(HIDDEN_ADDRESS, text) if "@" in text else text
