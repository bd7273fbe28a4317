"""The demo's folder: its database, its keys made on the first run and kept, and a
configuration file that lets the ordinary commands act on the running demo.

`COURTOIS_CONFIG=<folder>/courtois.toml courtois invite ...` then reaches the same
database with the same secret, platform and policy as the demo's own API and worker: the
same digests, the same rendered message, the same preview hash.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from courtois.config import Settings
from courtois.domain.errors import InvalidInput
from courtois.policy.config import PolicyConfig, settable_fields

CONFIG_NAME = "courtois.toml"
DATABASE_NAME = "courtois.db"
DKIM_KEY_NAME = "dkim-demo.pem"


@dataclass(frozen=True, slots=True)
class Keys:
    """The secret behind every digest and token (never shown) and the API key (shown:
    the demo only listens on this machine)."""

    secret_key: str
    api_key: str


class DemoFolder:
    """Where one demo keeps everything between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path.resolve()

    @property
    def config_file(self) -> Path:
        """The configuration the demo runs with, rewritten at each start."""
        return self.path / CONFIG_NAME

    @property
    def database_file(self) -> Path:
        """The SQLite database."""
        return self.path / DATABASE_NAME

    @property
    def dkim_key_file(self) -> Path:
        """The demo's DKIM private key (PEM)."""
        return self.path / DKIM_KEY_NAME

    @property
    def database_url(self) -> str:
        """An absolute SQLite URL, so the commands work from any directory."""
        return f"sqlite:///{self.database_file}"

    def keys(self) -> Keys:
        """The keys of earlier runs, or new ones for a new demo.

        A database without the file holding its secret cannot be read coherently (every
        digest depends on that secret), so that case is refused rather than papered over.
        """
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidInput(
                f"The demo's folder {self.path} is a file, or lies under one; name a folder."
            ) from None
        except OSError as error:
            raise InvalidInput(
                f"The demo's folder {self.path} cannot be made: "
                f"{error.strerror or type(error).__name__}."
            ) from None
        kept = self._kept_keys()
        if kept is not None:
            return kept
        if self.database_file.exists():
            raise InvalidInput(
                f"{self.path} holds a demo database but not the key it was made with; "
                "delete that folder (or run with --fresh) to start a new demo."
            )
        return Keys(secrets.token_hex(32), f"demo-{secrets.token_urlsafe(24)}")

    def _kept_keys(self) -> Keys | None:
        try:
            data = tomllib.loads(self.config_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except tomllib.TOMLDecodeError as error:
            raise InvalidInput(f"{self.config_file} is not TOML: {error}") from None
        secret_key, api_key = data.get("secret_key"), data.get("api_key")
        if not isinstance(secret_key, str) or len(secret_key) < 16 or not api_key:
            raise InvalidInput(f"{self.config_file} lacks the demo's secret_key or api_key.")
        return Keys(secret_key, str(api_key))

    def ensure_dkim_key(self) -> Path:
        """The DKIM key of earlier runs, or a new 2048-bit RSA key, readable by the owner only."""
        if not self.dkim_key_file.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            _write_private(self.dkim_key_file, pem)
        return self.dkim_key_file

    def dkim_public_key(self) -> str:
        """The public half as a DKIM `p=` value (base64 DER), for the DNS record shown."""
        key = serialization.load_pem_private_key(self.dkim_key_file.read_bytes(), password=None)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode("ascii")

    def write_config(self, settings: Settings) -> Path:
        """The running demo's settings as courtois.toml, owner-only (it holds the secret)."""
        lines = ["# Written by `courtois demo` at each start; edits are overwritten."]
        for item in fields(Settings):
            if item.name != "policy":
                lines.append(f"{item.name} = {_toml_value(getattr(settings, item.name))}")
        defaults = PolicyConfig()
        changed = [
            f"{name} = {_toml_value(getattr(settings.policy, name))}"
            for name in settable_fields()
            if getattr(settings.policy, name) != getattr(defaults, name)
        ]
        if changed:
            lines += ["", "[policy]", *changed]
        _write_private(self.config_file, ("\n".join(lines) + "\n").encode("utf-8"))
        return self.config_file


def _toml_value(value: object) -> str:
    """A TOML literal for a setting: JSON's string escapes are valid TOML basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _write_private(path: Path, data: bytes) -> None:
    """Replace `path` with `data`, created with mode 0600 before a byte is written."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a leftover temporary file keeps its old mode otherwise
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(temporary, path)
