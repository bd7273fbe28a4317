"""The invitation text a member previews, and the hash their consent pins (invariant 2).

The rendered text keeps `{token}` placeholders where per-recipient links go; the hash is
taken over that form, so the previewed message and every delivered copy share one hash.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from courtois.domain.errors import InvalidInput

MAX_NOTE_LENGTH = 1000
TOKEN_PLACEHOLDER = "{token}"  # noqa: S105 - a template slot, not a secret
# C0 and C1 controls, DEL and Unicode line separators; newlines and tabs are the note's own.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_FIELD = re.compile(r"\{(member|platform|base|token|days)\}")

_TEXTS = {
    "en": {
        "subject": "{member} invites you to join {platform}",
        "greeting": "Hello,",
        "body": "{member} uses {platform} and chose to invite you to join.",
        "note": "Their note to you:",
        "join": "Accept the invitation: {base}/join/{token}",
        "followups_none": "This is the only email you will get about this invitation.",
        "followups_one": (
            "If you do not answer, {member} asked us to send one reminder, at the earliest "
            "{days} days later. Nothing after that."
        ),
        "why": "Why you got this, and what we hold about you: {base}/why/{token}",
        "stop": "Stop these emails: {base}/u/{token}",
    },
    "fr": {
        "subject": "{member} vous invite à rejoindre {platform}",
        "greeting": "Bonjour,",
        "body": "{member} utilise {platform} et a choisi de vous inviter à le rejoindre.",
        "note": "Son message pour vous :",
        "join": "Accepter l'invitation : {base}/join/{token}",
        "followups_none": "C'est le seul e-mail que vous recevrez pour cette invitation.",
        "followups_one": (
            "Sans réponse de votre part, {member} nous a demandé d'envoyer un seul rappel, "
            "au plus tôt {days} jours plus tard. Rien ensuite."
        ),
        "why": "Pourquoi vous recevez ceci, et ce que nous savons de vous : {base}/why/{token}",
        "stop": "Ne plus recevoir ces e-mails : {base}/u/{token}",
    },
}


@dataclass(frozen=True, slots=True)
class RenderedPreview:
    """Subject and plain text exactly as previewed, with the hash that pins them."""

    subject: str
    text: str
    preview_hash: str


def check_note(note: str) -> str:
    """A member's note is free text but bounded, and kept out of headers entirely."""
    text = note.replace("\r\n", "\n").strip()
    if len(text) > MAX_NOTE_LENGTH:
        raise InvalidInput(
            f"The note is longer than {MAX_NOTE_LENGTH} characters.", {"note": "too long"}
        )
    if _CONTROL.search(text):
        raise InvalidInput("The note contains control characters.", {"note": "control characters"})
    return text


def render_invitation(
    *,
    member_name: str,
    platform: str,
    base_url: str,
    locale: str,
    note: str,
    reminders: int,
    reminder_days: int,
) -> RenderedPreview:
    """Render the invitation as the member will see it and as it will be sent."""
    texts = _TEXTS.get(locale, _TEXTS["en"])
    values = {
        "member": member_name,
        "platform": platform,
        "base": base_url.rstrip("/"),
        "token": TOKEN_PLACEHOLDER,
        "days": str(reminder_days),
    }

    def fill(key: str) -> str:
        # One pass over the template only: a member named "{token}" stays a name.
        return _FIELD.sub(lambda match: values[match.group(1)], texts[key])

    lines = [fill("greeting"), "", fill("body"), ""]
    if note:
        lines += [fill("note"), "", *[f"  {line}" for line in note.split("\n")], ""]
    lines += [fill("join"), ""]
    lines.append(fill("followups_one") if reminders else fill("followups_none"))
    lines += ["", "--", fill("why"), fill("stop")]
    subject = fill("subject")
    text = "\n".join(lines) + "\n"
    return RenderedPreview(subject=subject, text=text, preview_hash=hash_message(subject, text))


def hash_message(subject: str, text: str) -> str:
    """SHA-256 of subject and text, the per-recipient tokens still as placeholders."""
    digest = hashlib.sha256(subject.encode("utf-8"))
    digest.update(b"\n\n")
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()
