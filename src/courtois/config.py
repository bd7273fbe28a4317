"""Settings from `courtois.toml` (path in COURTOIS_CONFIG) and COURTOIS_* variables.

Every key can be overridden by `COURTOIS_<SECTION>_<KEY>` (section omitted for top-level
keys), so containers need no file at all. A bad value stops the start with a clear error.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from courtois.domain.errors import InvalidInput
from courtois.policy.config import PolicyConfig, load_policy

DEFAULT_DATABASE_URL = "sqlite:///./courtois-data/courtois.db"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the service needs to start."""

    database_url: str = DEFAULT_DATABASE_URL
    # Empty: no SMTP server wired; the worker decides and leaves allowed mail waiting.
    smtp_url: str = ""
    smtp_connections: int = 4
    smtp_domain_rate: int = 20
    # PEM certificates to trust besides the system's, for a relay with its own CA.
    smtp_ca_file: str = ""
    base_url: str = "http://127.0.0.1:8000"
    # Where /join sends a recipient who accepts, with `?invitation=<id>` added; empty means
    # courtois's own `base_url + "/welcome"` page (a placeholder until the platform sets it).
    signup_url: str = ""
    secret_key: str = ""
    # Keys that sign the links in emails, oldest first, comma-separated: the newest signs,
    # all verify. Empty: links are signed with secret_key. Lets the link key be replaced
    # while the digest key (secret_key), which names every recipient in the store, stays.
    token_keys: str = ""
    api_key: str = ""
    # When set, GET /metrics answers only `Authorization: Bearer <metrics_token>` (a
    # Prometheus scrape's `authorization` setting); empty, it answers anyone who reaches it.
    metrics_token: str = ""
    platform_name: str = "courtois"
    platform_postal_address: str = ""
    # Where a recipient reaches whoever answers for their data (a data-protection officer's
    # or privacy team's address or page): named in every email's GDPR notice (Article
    # 14(1)(b)) and on /why when set; empty, the notice names the controller alone.
    privacy_contact: str = ""
    mail_from: str = "invitations@localhost"
    dkim_domain: str = ""
    # One selector and its key file, or several of each, comma-separated in the same order:
    # every email is then signed once by each key (RSA beside Ed25519).
    dkim_selector: str = ""
    dkim_private_key_file: str = ""
    database_pool_size: int = 5
    # Address-book uploads bigger than this are refused before a byte is read; exports with
    # photos run to tens of megabytes, an address book without them rarely passes one.
    import_max_bytes: int = 64 * 1024 * 1024
    # CardDAV and IMAP imports connect where a member says; private networks only if allowed.
    import_private_hosts: bool = False
    # How long reading one CardDAV or IMAP account may take in all, in seconds: each network
    # wait has its own 30 s timeout, which a server sending a byte now and then never trips.
    import_deadline_seconds: int = 120
    # Signed webhooks (invitation.sent, accepted, ...): both set, or none sent.
    webhook_url: str = ""
    webhook_secret: str = ""
    policy: PolicyConfig = field(default_factory=PolicyConfig)

    @property
    def secret(self) -> bytes:
        """The key for address digests and signed tokens; refused when missing or short,
        because every digest in the store depends on it."""
        if len(self.secret_key) < 16:
            raise InvalidInput(
                "COURTOIS_SECRET_KEY is missing or shorter than 16 characters.",
                {"secret_key": "missing or too short"},
            )
        return self.secret_key.encode("utf-8")

    @property
    def token_secrets(self) -> list[bytes]:
        """The keys of the links in emails, oldest first; each at least 16 characters."""
        keys = [key.strip() for key in self.token_keys.split(",") if key.strip()]
        if not keys:
            return [self.secret]
        if any(len(key) < 16 for key in keys):
            raise InvalidInput(
                "Every key in COURTOIS_TOKEN_KEYS must be at least 16 characters.",
                {"token_keys": "too short"},
            )
        return [key.encode("utf-8") for key in keys]


# COURTOIS_* variables that are not settings: the file's path, the import password (read
# by `courtois import`), and the test suite's, fuzzers' and benchmarks' own knobs.
NOT_SETTINGS = frozenset({"COURTOIS_CONFIG", "COURTOIS_IMPORT_PASSWORD", "COURTOIS_BOUNCE_CORPUS"})
NOT_SETTINGS_PREFIXES = ("COURTOIS_TEST_", "COURTOIS_FUZZ_", "COURTOIS_CHAOS_")


def _from_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split COURTOIS_* variables into top-level and [policy] overrides; a variable that
    names no setting is refused, as the same typo in the file is, rather than silently
    leaving the default in force (COURTOIS_POLICY_PROFILES would keep the balanced policy)."""
    top: dict[str, str] = {}
    policy: dict[str, str] = {}
    top_keys = {f.name for f in fields(Settings)} - {"policy"}
    unknown: list[str] = []
    for name, value in environ.items():
        if not name.startswith("COURTOIS_") or name in NOT_SETTINGS:
            continue
        if name.startswith(NOT_SETTINGS_PREFIXES):
            continue
        key = name.removeprefix("COURTOIS_").lower()
        if key.startswith("policy_"):
            # Unknown policy keys are named by load_policy, with the file's.
            policy[key.removeprefix("policy_")] = value
        elif key in top_keys:
            top[key] = value
        else:
            unknown.append(name)
    if unknown:
        raise InvalidInput(
            f"Unknown configuration variables: {', '.join(sorted(unknown))}.",
            dict.fromkeys(unknown, "unknown"),
        )
    return top, policy


def _shown(raw: Any) -> str:
    """A wrong value as an error quotes it: a scalar as written, anything else by its type
    only (a table or list may hold a secret)."""
    if isinstance(raw, str | int | float | bool):
        return repr(raw)
    return f"a TOML {type(raw).__name__}"


def _boolean(key: str, raw: Any) -> bool:
    """true/false from TOML, or the usual words from an environment variable."""
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower() if isinstance(raw, str) else None
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise InvalidInput(f"{key} must be true or false, not {_shown(raw)}.", {key: "not a boolean"})


def _whole_number(key: str, raw: Any) -> int:
    """A TOML integer, or an environment variable's digits; never a boolean, a fraction or
    a list quietly converted (`true` would have become 1), never negative."""
    number: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str):
        try:
            number = int(raw)
        except ValueError:
            number = None
    if number is None:
        raise InvalidInput(
            f"{key} must be a whole number, not {_shown(raw)}.", {key: "not a number"}
        )
    if number < 0:
        raise InvalidInput(f"{key} must not be negative, not {number}.", {key: "negative"})
    return number


def _read_file(config_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The TOML file's tables; any reason it cannot be read is one sentence naming it."""
    try:
        return tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"Configuration file {config_path} does not exist.") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"Configuration file {config_path} is not UTF-8 text.") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise InvalidInput(f"Configuration file {config_path} cannot be read: {reason}.") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"Configuration file {config_path} is not TOML: {error}") from None


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (if any), apply environment overrides, validate."""
    env = os.environ if environ is None else environ
    config_path = path or env.get("COURTOIS_CONFIG")
    data: dict[str, Any] = _read_file(config_path) if config_path else {}
    policy_table = data.pop("policy", {})
    if not isinstance(policy_table, dict):
        raise InvalidInput(
            f"[policy] must be a table of keys, not {policy_table!r}.", {"policy": "not a table"}
        )
    policy_values = dict(policy_table)
    top_env, policy_env = _from_environment(env)
    policy_values.update(policy_env)
    top_values: dict[str, Any] = {**data, **top_env}
    known = {f.name: f for f in fields(Settings)}
    unknown = sorted(k for k in top_values if k not in known or k == "policy")
    if unknown:
        raise InvalidInput(f"Unknown configuration keys: {', '.join(unknown)}.")
    values: dict[str, Any] = {}
    for key, raw in top_values.items():
        default = known[key].default
        if isinstance(default, bool):
            values[key] = _boolean(key, raw)
        elif isinstance(default, int):
            values[key] = _whole_number(key, raw)
        elif isinstance(raw, str):
            values[key] = raw
        else:
            kind = "a number" if isinstance(raw, int | float) else _shown(raw)
            raise InvalidInput(f"{key} must be a string, not {kind}.", {key: "not a string"})
    settings = Settings(**values, policy=load_policy(policy_values))
    _check_database_url(settings.database_url)
    _check_wire_values(settings)
    webhook_target(settings)
    return settings


# The webhook signing secret's shortest length.
MIN_WEBHOOK_SECRET_LENGTH = 16


def webhooks_on(settings: Settings) -> bool:
    """Whether events are written and posted: both webhook settings are given
    (`load_settings` refuses one without the other, through `webhook_target`)."""
    return bool(settings.webhook_url.strip() and settings.webhook_secret)


def webhook_target(settings: Settings) -> tuple[str, str] | None:
    """The receiver's URL and secret, None when webhooks are off. Half a configuration is
    refused rather than sending unsigned events or signing for nobody; `load_settings`
    asks first, so it stops the start instead of /metrics, the admin page and the worker."""
    url, secret = settings.webhook_url.strip(), settings.webhook_secret
    if not url and not secret:
        return None
    if not url.startswith(("http://", "https://")):
        raise InvalidInput(
            "COURTOIS_WEBHOOK_URL must be an http:// or https:// URL when webhooks are on.",
            {"webhook_url": "missing or not http(s)"},
        )
    _check_webhook_url(url)
    if len(secret) < MIN_WEBHOOK_SECRET_LENGTH:
        raise InvalidInput(
            f"COURTOIS_WEBHOOK_SECRET must be at least {MIN_WEBHOOK_SECRET_LENGTH} characters.",
            {"webhook_secret": "missing or too short"},
        )
    return url, secret


def _check_webhook_url(url: str) -> None:
    """A URL the worker can post to, checked as httpx and the socket layer will read it:
    one they cannot (a port that is not a number or out of range, a host label that is
    empty, over-long or not letters, digits and inner hyphens, an unclosed IPv6 bracket)
    would otherwise fail every delivery, pass after pass."""
    import httpx

    try:
        parsed = httpx.URL(url)
        host = parsed.raw_host.decode("ascii")
        if not host:
            raise ValueError("no host")
        # As a connection encodes it (the IDNA codec): refuses empty and over-long labels.
        host.encode("idna")
        _check_webhook_host(host)
        if parsed.port is not None and not 1 <= parsed.port <= MAX_PORT:
            raise ValueError(f"the port is not between 1 and {MAX_PORT}")
    except (httpx.InvalidURL, ValueError) as error:  # UnicodeError is a ValueError
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise InvalidInput(
            f"COURTOIS_WEBHOOK_URL is not a URL webhooks can be posted to ({reason}).",
            {"webhook_url": "invalid"},
        ) from None


MAX_PORT = 65_535
# A host name's label as DNS and the resolver take it (RFC 1123): letters, digits and
# hyphens, neither first nor last. httpx gives a name already in A-labels (xn--...).
_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _check_webhook_host(host: str) -> None:
    """An IP address, or a name whose every label is a host name's: httpx lets through a
    space (as %20), an underscore or an edge hyphen, which no resolver finds."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return
    # One trailing dot is the root (a fully qualified name), not an empty label.
    labels = host.removesuffix(".").split(".")
    if not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise ValueError("a host label is not letters, digits and inner hyphens")


DATABASE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


def _check_database_url(url: str) -> None:
    """A URL of a database courtois can use (SQLite, or PostgreSQL through psycopg 3);
    anything else would fail later with the driver's traceback."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        drivername = make_url(url).drivername
    except (ArgumentError, ValueError):
        raise InvalidInput(
            "database_url is not a database URL (sqlite:///path or postgresql://...).",
            {"database_url": "invalid"},
        ) from None
    if drivername not in DATABASE_DRIVERS:
        raise InvalidInput(
            f"database_url names the driver {drivername!r}; courtois runs on "
            "sqlite:///path or postgresql://...",
            {"database_url": "unsupported"},
        )


def plain_http_warning(settings: Settings) -> str | None:
    """What to tell the operator of `serve` and `worker` when base_url is http:// on a host
    other than this machine's: every email offers one-click unsubscribe (List-Unsubscribe-
    Post), which RFC 8058 section 3.1 requires to be an https URI, so mailbox providers
    ignore it and show no unsubscribe button. Not refused: tests and local setups run on
    http://. A loopback host (127.0.0.0/8, ::1, localhost) is left silent, as no mailbox
    provider ever reaches it (the default, the demo's and the tests' setups); None then,
    and for https://."""
    parts = urlsplit(settings.base_url)
    if parts.scheme != "http" or _loopback(parts.hostname or ""):
        return None
    return (
        "base_url is http://, not https://: mailbox providers will not honour the one-click "
        "unsubscribe every email offers (RFC 8058 requires https); set base_url to the "
        "public https:// URL (docs/operations.md)."
    )


def no_postal_address_warning(settings: Settings) -> str | None:
    """What to tell the operator of `serve` and `invite` when no postal address is set: the
    preview a member consents to is the email exactly as it will be sent, and a worker that
    sends must have one (`make_transport` refuses to start without it), so it writes a
    footer the preview did not show and holds every such invitation as differing from its
    preview. Not refused: without SMTP nothing is sent, and tests and trials run so."""
    if settings.platform_postal_address.strip():
        return None
    return (
        "platform_postal_address is not set: previews and consents taken now show no postal "
        "address, and the worker that sends (which needs one) will hold these invitations "
        "as differing from their preview; set COURTOIS_PLATFORM_POSTAL_ADDRESS first."
    )


def _loopback(host: str) -> bool:
    """Whether the host is this machine: a loopback address, or localhost (RFC 6761)."""
    import ipaddress

    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _check_wire_values(settings: Settings) -> None:
    """The values every email carries in its headers (List-Unsubscribe, From) must be
    printable there: refused at start, with how to write them, rather than by the worker
    after it has claimed a batch (which would leave the batch in doubt)."""
    for key in ("base_url", "signup_url"):
        url = getattr(settings, key)
        if not url:
            continue
        parts = urlsplit(url)
        if not url.isascii() or parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidInput(
                f"{key} must be an http(s) URL in ASCII, not {url!r}: write an international "
                "host name in its xn-- form and percent-encode the path.",
                {key: "invalid"},
            )
    local, at, domain = settings.mail_from.rpartition("@")
    if not at or not local or not domain or not local.isascii() or not local.isprintable():
        raise InvalidInput(
            f"mail_from must be an address with an ASCII local part, not {settings.mail_from!r}.",
            {"mail_from": "invalid"},
        )
