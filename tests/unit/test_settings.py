"""Settings from a file and the environment: a value that every email would carry but no
header can print stops the start with a clear error, before any batch is claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from courtois.config import load_settings
from courtois.delivery.compose import Carried, ComposeInput, compose, to_bytes
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind


def _load(**environ: str) -> object:
    return load_settings(environ={f"COURTOIS_{k.upper()}": v for k, v in environ.items()})


def test_the_defaults_and_plain_values_load() -> None:
    settings = load_settings(
        environ={
            "COURTOIS_BASE_URL": "https://agora.example/invite",
            "COURTOIS_MAIL_FROM": "invitations@agorà.example",
            "COURTOIS_SIGNUP_URL": "https://agora.example/join?from=courtois",
            "COURTOIS_SECRET_KEY": "a-secret-key-of-some-length",
        }
    )
    assert settings.base_url == "https://agora.example/invite"
    # The settings that load make an email that prints (an IDN domain goes out as xn--).
    message = ComposeInput(
        "m-1", "bo@example.org", MessageKind.INVITATION, "en", (Carried("inv-1", "Ana"),)
    )
    domain = "agorà.example".encode("idna")
    assert b"From: Ana via courtois <invitations@" + domain + b">" in to_bytes(
        compose(settings, message)
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("base_url", "https://agorà.example"),
        ("base_url", "https://agora.example/é"),
        ("base_url", "ftp://agora.example"),
        ("base_url", "agora.example"),
        ("signup_url", "https://agora.example/inscrïption"),
        ("mail_from", "invitátions@agora.example"),
        ("mail_from", "invitations"),
        ("mail_from", "@agora.example"),
    ],
)
def test_a_value_no_header_can_carry_is_refused_by_name(key: str, value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        _load(**{key: value})
    assert refused.value.message.startswith(key)
    assert key in refused.value.details


def test_a_file_is_checked_like_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "courtois.toml"
    config.write_text('base_url = "https://exämple.org"\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="xn--"):
        load_settings(config, environ={})
