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


def _refused(path: Path | None = None, **environ: str) -> InvalidInput:
    """The one-sentence refusal of loading these settings."""
    with pytest.raises(InvalidInput) as refused:
        load_settings(path, environ=environ)
    assert "\n" not in refused.value.message
    return refused.value


def test_a_configuration_file_that_cannot_be_read_is_one_sentence(tmp_path: Path) -> None:
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00secret")
    assert "cannot be read" in _refused(tmp_path).message
    assert "not UTF-8" in _refused(binary).message


@pytest.mark.parametrize(
    ("toml", "word"),
    [
        ('policy = "strict"\n', "[policy] must be a table"),
        ("policy = 5\n", "[policy] must be a table"),
        ("[policy]\nundo_window_minutes = 100000000000000\n", "undo_window_minutes"),
        ("[policy]\nreminder_min_days = 1000000000\n", "reminder_min_days"),
        ("[policy]\nrecipient_long_window_days = 10000000000\n", "recipient_long_window_days"),
        ("[policy]\nsender_min_sample = 100000000000000000000\n", "sender_min_sample"),
        ('secret_key = ["0123456789abcdef01"]\n', "secret_key must be a string"),
        ("mail_from = 12\n", "mail_from must be a string"),
        ("import_max_bytes = true\n", "import_max_bytes must be a whole number"),
        ("smtp_connections = 2.9\n", "smtp_connections must be a whole number"),
        ("import_max_bytes = -1\n", "import_max_bytes must not be negative"),
        ('import_private_hosts = "maybe"\n', "import_private_hosts must be true or false"),
        ('database_url = "not a url"\n', "database_url"),
        ('database_url = "mysql://x@localhost/db"\n', "database_url"),
    ],
)
def test_a_wrong_value_in_the_file_is_refused_by_name(tmp_path: Path, toml: str, word: str) -> None:
    config = tmp_path / "courtois.toml"
    config.write_text(toml, encoding="utf-8")
    refused = _refused(config)
    assert word in refused.message
    assert "0123456789abcdef01" not in refused.message  # a secret is never quoted back


def test_a_wrong_environment_variable_is_refused_like_the_file() -> None:
    assert "profiles: unknown policy key" in _refused(COURTOIS_POLICY_PROFILES="x").message
    assert "COURTOIS_SMTP_URI" in _refused(COURTOIS_SMTP_URI="smtp://h").message
    assert "must not be negative" in _refused(COURTOIS_IMPORT_MAX_BYTES="-1").message
    # Variables that are not settings stay allowed: the file's path, the import password,
    # and the test suite's and tools' own.
    load_settings(
        environ={
            "COURTOIS_IMPORT_PASSWORD": "x",
            "COURTOIS_TEST_POSTGRES_URL": "postgresql://h/d",
            "COURTOIS_FUZZ_SECONDS": "1",
            "COURTOIS_CHAOS_SEED": "1",
            "COURTOIS_BOUNCE_CORPUS": "/nowhere",
        }
    )


@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"COURTOIS_WEBHOOK_SECRET": "short"}, "webhook_url"),
        ({"COURTOIS_WEBHOOK_SECRET": "whsec-0123456789abcdef"}, "webhook_url"),
        ({"COURTOIS_WEBHOOK_URL": "https://hooks.example/in"}, "webhook_secret"),
        (
            {"COURTOIS_WEBHOOK_URL": "https://hooks.example/in", "COURTOIS_WEBHOOK_SECRET": "x"},
            "webhook_secret",
        ),
        (
            {
                "COURTOIS_WEBHOOK_URL": "ftp://hooks.example/in",
                "COURTOIS_WEBHOOK_SECRET": "whsec-0123456789abcdef",
            },
            "webhook_url",
        ),
    ],
)
def test_half_a_webhook_configuration_stops_the_start(environ: dict[str, str], key: str) -> None:
    assert key in _refused(**environ).details


@pytest.mark.parametrize(
    "url",
    [
        "http://host:port/hook",
        "http://hooks..example.com/hook",
        "http://[::1/hook",
        "http://127.0.0.1:80a/",
        f"http://{'a' * 64}.example.com/hook",
        "http:///hook",
        "http://example.com:99999/",
        "http://example.com:0/",
        "http://exa mple.com/",
        "http://exa_mple.com/",
        "http://-bad-.com/",
        "http://bad-.example.com/",
    ],
)
def test_a_webhook_url_that_cannot_be_posted_to_stops_the_start(url: str) -> None:
    refused = _refused(COURTOIS_WEBHOOK_URL=url, COURTOIS_WEBHOOK_SECRET="whsec-0123456789abcdef")
    assert "webhook_url" in refused.details
    assert "COURTOIS_WEBHOOK_URL" in refused.message


def test_a_whole_webhook_configuration_loads() -> None:
    settings = load_settings(
        environ={
            "COURTOIS_WEBHOOK_URL": "https://hooks.example/in",
            "COURTOIS_WEBHOOK_SECRET": "whsec-0123456789abcdef",
        }
    )
    assert settings.webhook_url == "https://hooks.example/in"
    for url in (
        "http://[::1]:8080/in",
        "https://hooks.exämple.org/in",
        "http://127.0.0.1:80/",
        "https://hooks.example.org.:65535/in",
        "http://localhost:1/",
        "https://xn--bcher-kva.example/in",
    ):
        assert (
            load_settings(
                environ={
                    "COURTOIS_WEBHOOK_URL": url,
                    "COURTOIS_WEBHOOK_SECRET": "whsec-0123456789abc",
                }
            ).webhook_url
            == url
        )
