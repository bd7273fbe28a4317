"""Settings from `courtois.toml` (path in COURTOIS_CONFIG) and COURTOIS_* variables.

Every key can be overridden by `COURTOIS_<SECTION>_<KEY>` (section omitted for top-level
keys), so containers need no file at all. A bad value stops the start with a clear error.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from courtois.domain.errors import InvalidInput
from courtois.policy.config import PolicyConfig, load_policy, settable_fields

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
    mail_from: str = "invitations@localhost"
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_private_key_file: str = ""
    database_pool_size: int = 5
    # Address-book uploads bigger than this are refused before a byte is read; exports with
    # photos run to tens of megabytes, an address book without them rarely passes one.
    import_max_bytes: int = 64 * 1024 * 1024
    # CardDAV and IMAP imports connect where a member says; private networks only if allowed.
    import_private_hosts: bool = False
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


def _from_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Split COURTOIS_* variables into top-level and [policy] overrides."""
    top: dict[str, str] = {}
    policy: dict[str, str] = {}
    top_keys = {f.name for f in fields(Settings)} - {"policy"}
    policy_keys = set(settable_fields())
    for name, value in environ.items():
        if not name.startswith("COURTOIS_") or name == "COURTOIS_CONFIG":
            continue
        key = name.removeprefix("COURTOIS_").lower()
        if key.startswith("policy_") and key.removeprefix("policy_") in policy_keys:
            policy[key.removeprefix("policy_")] = value
        elif key in top_keys:
            top[key] = value
    return top, policy


def _boolean(key: str, raw: Any) -> bool:
    """true/false from TOML, or the usual words from an environment variable."""
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off", ""):
        return False
    raise InvalidInput(f"{key} must be true or false, not {raw!r}.")


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read the file (if any), apply environment overrides, validate."""
    env = os.environ if environ is None else environ
    config_path = path or env.get("COURTOIS_CONFIG")
    data: dict[str, Any] = {}
    if config_path:
        try:
            data = tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InvalidInput(f"Configuration file {config_path} does not exist.") from None
        except tomllib.TOMLDecodeError as error:
            raise InvalidInput(f"Configuration file {config_path} is not TOML: {error}") from None
    policy_values = dict(data.pop("policy", {}) or {})
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
            try:
                values[key] = int(raw)
            except (TypeError, ValueError):
                raise InvalidInput(f"{key} must be a whole number, not {raw!r}.") from None
        else:
            values[key] = str(raw)
    settings = Settings(**values, policy=load_policy(policy_values))
    _check_wire_values(settings)
    return settings


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
