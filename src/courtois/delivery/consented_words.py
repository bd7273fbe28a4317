"""The words a member consented to, kept with their consent and sent as they were shown.

The consent pins a hash of the rendered email (invariant 2). When only the hash is kept,
the worker must render the email again right before it leaves, and any release or setting
that changes what the templates print (a fixed translation, a new postal address) changes
that hash: every email consented to before the change and not yet sent is held, although
nothing the member saw has changed. Keeping the rendering itself (placeholders in place of
the per-recipient tokens, as it was hashed) lets the worker send exactly those words: it
checks them against the consent's hash, puts each recipient's tokens in, and needs no
template of the release that showed them.

Kept only when the rendering can be filled by plain substitution: no text the member or
the configuration wrote may contain a placeholder (they all open with "{"), else a note
reading "{token:u}" would receive a token. Such a consent keeps no words, and its emails
are rendered again as before; so are words previewed before the platform's postal
address was set, which every email must give. The member's name is kept beside the words,
so the From line names them as the words do, even after a rename.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache

from courtois.delivery.render import (
    Previewed,
    RenderContext,
    Rendered,
    Tokens,
    filled,
    plain_tokens,
    preview_hash,
    substitutable,
)
from courtois.domain.messages import MessageKind

_VERSION = 1


@dataclass(frozen=True, slots=True)
class ConsentedWords:
    """The invitation (as a first contact), the reminder when ticked, and the name the
    member bore when they previewed them."""

    name: str
    invitation: Rendered
    reminder: Rendered | None
    # What the consent must pin for these words to leave.
    preview_hash: str

    def email(self, kind: MessageKind, asked_by_recipient: bool, carried: int) -> Rendered | None:
        """The kept rendering an email of this kind is: the invitation, or the reminder the
        member ticked; None for any other email (a digest carrying several invitations, a
        reminder the recipient asked for, worded as theirs), which is rendered again."""
        if asked_by_recipient or carried != 1:
            return None
        if kind is MessageKind.INVITATION:
            return self.invitation
        return self.reminder if kind is MessageKind.REMINDER else None


def kept(previewed: Previewed, context: RenderContext) -> str | None:
    """The stored form of a preview, or None when its placeholders could be confused with
    what someone wrote, or it gives no postal address (see the module's docstring)."""
    if len(context.inviters) != 1 or not substitutable(context):
        return None
    if not context.postal_address.strip():
        # Every email must give it, and the worker starts only once it is set: words
        # previewed without it are not fit to send, and are rendered again then (and held,
        # since they differ).
        return None
    parts = [previewed.message, *previewed.follow_ups]
    return json.dumps(
        {
            "v": _VERSION,
            "name": context.inviters[0].name,
            "emails": [[p.subject, p.text, p.html] for p in parts],
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )


def read(stored: str | None) -> ConsentedWords | None:
    """The words kept with a consent; None when none were kept, or when what is stored is
    not words of this shape (the email is then rendered again, and held unless that
    rendering is the one consented to)."""
    if not stored:
        return None
    return _parsed(stored)


@lru_cache(maxsize=256)
def _parsed(stored: str) -> ConsentedWords | None:
    """Parsed once for all the emails of a consent: the same words, the same objects, so
    the skeleton made for them is found by a hash each string computes once."""
    try:
        value = json.loads(stored)
        emails = [Rendered(*(str(part) for part in email)) for email in value["emails"]]
        if value["v"] != _VERSION or not 1 <= len(emails) <= 2:
            return None
        return ConsentedWords(
            str(value["name"]),
            emails[0],
            emails[1] if len(emails) == 2 else None,
            preview_hash(*emails),
        )
    except (ValueError, TypeError, KeyError):
        return None


def fill(words: Rendered, tokens: Tokens) -> Rendered | None:
    """The words with one recipient's tokens in their places; None when a token would not
    print as itself in a link (signed tokens always do)."""
    if len(tokens.join) != 1 or not plain_tokens(tokens):
        return None
    return filled(words, tokens)
