"""The member's data download (`/member/export.json`) in the member's language.

The export is the host API's (`GET /v1/members/{id}/export`), whose decisions carry each
rule's reason as the policy writes it, in English. A member downloading their own data
reads it in their language, as every member page speaks to them: each verdict's reason is
worded by the pages' `verdict_reason` macro, from the pages' catalogue. The rule codes,
outcomes and everything else machine-readable stay as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from markupsafe import Markup

from courtois.web.pages.render import environment


def _wording(locale: str) -> Callable[[str], str]:
    """The `verdict_reason` macro of this language, as plain text (JSON is no HTML: what
    the template escaped is put back)."""
    macro = environment(locale).get_template("member_macros.html").module.verdict_reason  # type: ignore[attr-defined]

    def words(text: str) -> str:
        worded: Markup = macro(text)
        return worded.unescape().strip()

    return words


def in_member_words(exported: dict[str, Any], locale: str) -> dict[str, Any]:
    """The export with every decision's verdict reasons in `locale`."""
    words = _wording(locale)
    return {
        **exported,
        "invitations": [
            {
                **invitation,
                "decisions": [
                    {
                        **decision,
                        "verdicts": [
                            {**verdict, "reason": words(verdict["reason"])}
                            for verdict in decision["verdicts"]
                        ],
                    }
                    for decision in invitation["decisions"]
                ],
            }
            for invitation in exported["invitations"]
        ],
    }
