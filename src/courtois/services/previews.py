"""preview_invitations: the exact email and the consent sentence the member will agree to."""

from __future__ import annotations

from dataclasses import dataclass

from courtois.domain.errors import InvalidInput
from courtois.domain.members import Member, check_locale
from courtois.domain.preview import RenderedPreview, check_note, render_invitation
from courtois.services.context import Context
from courtois.services.members import get_member


@dataclass(frozen=True, slots=True)
class Preview:
    """What the member sees before consenting; `preview_hash` is what they consent to."""

    subject: str
    text: str
    preview_hash: str
    consent_text: str
    reminders: int
    locale: str

    def as_dict(self) -> dict[str, object]:
        """Plain form for JSON."""
        return {
            "subject": self.subject,
            "text": self.text,
            "preview_hash": self.preview_hash,
            "consent_text": self.consent_text,
            "reminders": self.reminders,
            "locale": self.locale,
        }


_CONSENT = {
    "en": (
        "I ask {platform} to send this invitation, in my name, to the {count} people I chose."
        "{reminder}"
    ),
    "fr": (
        "Je demande à {platform} d'envoyer cette invitation, en mon nom, aux {count} "
        "personnes que j'ai choisies.{reminder}"
    ),
}
_REMINDER = {
    "en": " If someone does not answer, one reminder, at least {days} days later.",
    "fr": " Sans réponse, un seul rappel, au moins {days} jours plus tard.",
}


def check_reminders(ctx: Context, reminders: int) -> int:
    """0 or 1, and never above the policy's cap."""
    if reminders not in (0, 1) or reminders > ctx.settings.policy.reminder_cap:
        raise InvalidInput(
            f"reminders must be 0 or at most {ctx.settings.policy.reminder_cap}.",
            {"reminders": str(reminders)},
        )
    return reminders


def render_for(
    ctx: Context, member: Member, note: str, locale: str | None, reminders: int
) -> tuple[RenderedPreview, str]:
    """Render the invitation for this member; returns the preview and the locale used."""
    language = check_locale(locale or member.locale)
    rendered = render_invitation(
        member_name=member.name,
        platform=ctx.settings.platform_name,
        base_url=ctx.settings.base_url,
        locale=language,
        note=check_note(note),
        reminders=check_reminders(ctx, reminders),
        reminder_days=ctx.settings.policy.reminder_min_days,
    )
    return rendered, language


def consent_text(ctx: Context, locale: str, count: int, reminders: int) -> str:
    """The sentence the member ticks, naming what they agree to."""
    reminder = (
        _REMINDER[locale].format(days=ctx.settings.policy.reminder_min_days) if reminders else ""
    )
    return _CONSENT[locale].format(
        platform=ctx.settings.platform_name, count=count, reminder=reminder
    )


def preview_invitations(
    ctx: Context, member_id: str, count: int, note: str, locale: str | None, reminders: int
) -> Preview:
    """The exact message and consent sentence for `count` recipients."""
    member = get_member(ctx, member_id)
    rendered, language = render_for(ctx, member, note, locale, reminders)
    return Preview(
        subject=rendered.subject,
        text=rendered.text,
        preview_hash=rendered.preview_hash,
        consent_text=consent_text(ctx, language, count, reminders),
        reminders=reminders,
        locale=language,
    )
