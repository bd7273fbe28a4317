"""The items of an HTTP header with quality weights (`Accept`, `Accept-Language`).

One reading for both: a page's language and a problem page's format are chosen from the
same grammar (RFC 9110 section 12.4.2), and a malformed weight counts as zero rather than
failing the request. Only the first 32 items are read, so a huge header costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator


def weighted_items(header: str | None) -> Iterator[tuple[str, float]]:
    """Each item's value (stripped, as written) with its weight, in the header's order."""
    for item in (header or "").split(",")[:32]:
        value, _, params = item.partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _, number = param.strip().partition("=")
            if name.lower() == "q":
                try:
                    weight = float(number)
                except ValueError:
                    weight = 0.0
        yield value.strip(), weight
