"""The one place where settings, engine and use-case context are wired together."""

from __future__ import annotations

from courtois.config import Settings, load_settings
from courtois.delivery.smtp import SmtpTransport, parse_smtp_url
from courtois.delivery.transport import Transport
from courtois.domain.errors import InvalidInput
from courtois.services.context import Context
from courtois.store.engine import make_engine


def bootstrap(settings: Settings | None = None, create_database: bool = False) -> Context:
    """Load settings (file and environment) and build the context; fails fast on bad config.
    A missing SQLite file is made only with `create_database` (migrate, the demo): for any
    other command it is a mistyped path or a database never migrated, refused as such."""
    chosen = settings or load_settings()
    check_mail_settings(chosen)
    engine = make_engine(
        chosen.database_url, pool_size=chosen.database_pool_size, create=create_database
    )
    return Context(engine=engine, settings=chosen)


def check_mail_settings(settings: Settings) -> None:
    """Write and sign one sample email with these settings, so that a mistake in what every
    email needs (secret key, link keys, mail_from, the DKIM domain, selector and key file)
    stops the start with one line naming the key. Found later, it would surface in the
    worker only after a batch was claimed, where it fails every email of the batch."""
    from courtois.delivery.compose import Carried, ComposeInput, compose, to_bytes
    from courtois.delivery.dkim import sign
    from courtois.delivery.wire import MAX_SMTP_LINE
    from courtois.domain.messages import MessageKind

    settings.secret  # noqa: B018 - refuse to start without a usable secret key
    sample = ComposeInput(
        "startup-check",
        "someone@example.org",
        MessageKind.INVITATION,
        "en",
        (Carried("startup-check", "Someone"),),
    )
    try:
        signed = sign(to_bytes(compose(settings, sample)), settings)
    except ValueError as error:  # a value the email cannot carry, named by its type only
        raise InvalidInput(
            f"The settings cannot write an email ({type(error).__name__}); check mail_from, "
            "platform_name, base_url and the dkim_* keys."
        ) from None
    # A line SMTP cannot carry would make every email fail at the server.
    if max(len(line) for line in signed.split(b"\r\n")) > MAX_SMTP_LINE:
        raise InvalidInput(
            f"The settings write an email with a line longer than {MAX_SMTP_LINE} octets, "
            "which SMTP servers refuse; check base_url, mail_from and the dkim_* keys."
        )


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
