"""The preview page's one exception to the pages' style policy: the email's own styles.

The email's HTML is shown in a sandboxed `<iframe srcdoc>`, which inherits the page's
Content-Security-Policy. Rather than allow any inline style, the page names the hash of
each style the previewed email carries ('unsafe-hashes' applies them to style attributes
only when their hash is listed), so the email looks as it will in an inbox and nothing
else on the page may style, let alone script, anything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from html.parser import HTMLParser

from courtois.web.pages.render import HEADERS


class _Styles(HTMLParser):
    """Collects style attribute values and `<style>` element contents, as a browser reads
    them (character references decoded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: set[str] = set()
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "style" and value is not None:
                self.found.add(value)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found.add(data)


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def styles_of(html: str) -> set[str]:
    """Every inline style an HTML document carries."""
    parser = _Styles()
    parser.feed(html)
    parser.close()
    return parser.found


def preview_headers(htmls: Iterable[str]) -> dict[str, str]:
    """The page headers, with the previewed emails' styles allowed by hash."""
    found: set[str] = set()
    for html in htmls:
        found |= styles_of(html)
    if not found:
        return {}
    sources = " ".join(f"'sha256-{_hash(style)}'" for style in sorted(found))
    policy = HEADERS["Content-Security-Policy"].replace(
        "style-src ", f"style-src 'unsafe-hashes' {sources} ", 1
    )
    return {"Content-Security-Policy": policy}
