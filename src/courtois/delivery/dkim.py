"""DKIM signing (RFC 6376) with dkimpy: rsa-sha256, relaxed/relaxed, key and selector from
the configuration. With no DKIM configured, messages go out unsigned."""

from __future__ import annotations

from pathlib import Path

import dkim

from courtois.config import Settings
from courtois.domain.errors import InvalidInput

# The headers a receiver judges the message by. Each is listed once more than it occurs
# (over-signing, RFC 6376 section 8.15), so nobody on the way can add a second Subject, a
# Reply-To or another unsubscribe link without breaking the signature.
SIGNED_HEADERS: tuple[str, ...] = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Reply-To",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
)


def is_configured(settings: Settings) -> bool:
    """True when domain, selector and key file are all set; refuses a partial setting,
    which would otherwise send unsigned mail without anyone noticing."""
    values = {
        "dkim_domain": settings.dkim_domain,
        "dkim_selector": settings.dkim_selector,
        "dkim_private_key_file": settings.dkim_private_key_file,
    }
    missing = sorted(key for key, value in values.items() if not value.strip())
    if len(missing) == len(values):
        return False
    if missing:
        raise InvalidInput(
            f"DKIM is partly configured; also set {', '.join(missing)}.",
            dict.fromkeys(missing, "missing"),
        )
    return True


def sign(raw: bytes, settings: Settings) -> bytes:
    """The message with a DKIM-Signature header in front, or unchanged without DKIM."""
    if not is_configured(settings):
        return raw
    path = Path(settings.dkim_private_key_file)
    try:
        key = path.read_bytes()
    except OSError as error:
        raise InvalidInput(
            f"The DKIM private key file {path} cannot be read: {error.strerror}.",
            {"dkim_private_key_file": "unreadable"},
        ) from None
    try:
        header: bytes = dkim.sign(
            raw,
            settings.dkim_selector.strip().encode("ascii"),
            settings.dkim_domain.strip().encode("idna"),
            key,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=b"rsa-sha256",
            include_headers=[name.encode("ascii") for name in SIGNED_HEADERS for _ in (1, 2)],
        )
    except dkim.KeyFormatError:
        raise InvalidInput(
            f"The DKIM private key file {path} does not hold an RSA private key (PEM).",
            {"dkim_private_key_file": "not a key"},
        ) from None
    return header + raw
