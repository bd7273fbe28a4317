"""The one place where settings, engine and use-case context are wired together."""

from __future__ import annotations

from courtois.config import Settings, load_settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import Transport
from courtois.domain.errors import InvalidInput
from courtois.services.context import Context
from courtois.store.engine import make_engine


def bootstrap(settings: Settings | None = None) -> Context:
    """Load settings (file and environment) and build the context; fails fast on bad config."""
    chosen = settings or load_settings()
    chosen.secret  # noqa: B018 - refuse to start without a usable secret key
    engine = make_engine(chosen.database_url, pool_size=chosen.database_pool_size)
    return Context(engine=engine, settings=chosen)


def make_transport(settings: Settings) -> Transport | None:
    """The SMTP transport when COURTOIS_SMTP_URL is set, else none (mail waits)."""
    if not settings.smtp_url:
        return None
    if not settings.platform_postal_address.strip():
        raise InvalidInput(
            "COURTOIS_PLATFORM_POSTAL_ADDRESS must be set to send email: every email gives "
            "the platform's postal address, and its GDPR notice names the controller with it.",
            {"platform_postal_address": "missing"},
        )
    try:
        smtp = parse_smtp_url(
            settings.smtp_url,
            connections=max(1, settings.smtp_connections),
            per_domain_per_second=float(settings.smtp_domain_rate),
            ca_file=settings.smtp_ca_file,
        )
    except ValueError as error:
        raise InvalidInput(f"COURTOIS_SMTP_URL: {error}") from None
    return SmtpTransport(smtp)
