"""Reading a served page as its reader does: its title, its heading, and how a message on it
is shown, as an error (a box of its own, announced to screen readers) or as a confirmation.
"""

from __future__ import annotations

import re
from html import unescape

# How the pages open a paragraph that reports a refusal, and one that confirms a change.
ERROR = '<p class="error" role="alert">'
DONE = '<p class="done">'


def title_of(html: str) -> str:
    """The page's `<title>`, as the browser's tab shows it."""
    found = re.search(r"<title>(.*?)</title>", html, re.DOTALL)
    assert found is not None, "no title"
    return unescape(found.group(1)).strip()


def heading_of(html: str) -> str:
    """The text of the page's `<h1>`."""
    found = re.search(r"<h1>(.*?)</h1>", html, re.DOTALL)
    assert found is not None, "no heading"
    return unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def box_of(html: str, words: str) -> str:
    """The opening tag of the paragraph that says `words` (its class and role), without the
    id that the fields an error is about point to (`test_pages_accessibility` reads that)."""
    found = re.search(r"(<p\b[^>]*>)(?:(?!</p>).)*?" + re.escape(words), html, re.DOTALL)
    assert found is not None, f"no paragraph says {words!r}"
    return re.sub(r' id="[^"]*"', "", found.group(1))
