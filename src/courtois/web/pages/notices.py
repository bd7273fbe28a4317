"""Confirmations that ride a redirect, sealed to the session whose action they confirm.

After a form, the pages redirect (303) to a page that says what happened ("Consent
revoked", "7 imported contacts deleted"). What happened travels in the redirect's query, so
without a seal anyone could send a signed-in member or admin a link that shows a green
confirmation of something nobody did: a member would believe they had stopped what still
runs (invariant 5). So the redirect also carries a seal, an HMAC over the page and exactly
these values, keyed by the session's own CSRF token, which only that session's pages know;
the page shows the notice only when the seal matches this session. A forged, altered or
other session's seal shows nothing at all, quietly: the page is still the page.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

SEAL = "seal"
# Keeps these seals apart from anything else ever computed with the same key.
PURPOSE = b"courtois.notice:"


def _seal(key: str, page: str, values: Mapping[str, str]) -> str:
    # One encoding per notice whoever builds it: names sorted, and an empty value left out
    # as the page reads a missing one as empty. urlencode escapes "&" and "=", so no two
    # notices share it: a seal for `done=deleted&count=7` opens nothing else.
    present = sorted((name, value) for name, value in values.items() if value)
    message = PURPOSE + page.encode() + b"?" + urlencode(present).encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def sealed(key: str, page: str, **values: str | int) -> str:
    """The query (without "?") that carries `values` to `page`, sealed with `key` (the
    session's CSRF token)."""
    named = {name: str(value) for name, value in values.items()}
    return urlencode({**named, SEAL: _seal(key, page, named)})


def opened(key: str, page: str, query: Mapping[str, str], *names: str) -> dict[str, str]:
    """The notice values `names` from the request's query when its seal is this session's
    (`key`) for `page` over exactly those values; otherwise each is "" (no notice), so a
    forged link shows the page without one. Compared in constant time."""
    values = {name: query.get(name, "") for name in names}
    given = query.get(SEAL, "")
    if given and hmac.compare_digest(given.encode(), _seal(key, page, values).encode()):
        return values
    return dict.fromkeys(names, "")
