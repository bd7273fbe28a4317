"""DKIM with several selectors: RSA and Ed25519 side by side, each email signed once by
each key, so that a receiver that verifies only one of the algorithms still finds a valid
signature of the platform's domain; and settings that pair them wrongly refused in words."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dkim
import pytest
from test_dkim import raw_message

from conftest import DKIM_DOMAIN, make_dkim_key, make_ed25519_key, signing_settings
from courtois.bootstrap import check_mail_settings
from courtois.config import Settings, load_settings
from courtois.delivery.dkim import sign
from courtois.domain.errors import InvalidInput


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, bytes]]:
    """Each selector's key and TXT record: an RSA one and an Ed25519 one."""
    folder = tmp_path_factory.mktemp("selectors")
    return {"r2026": make_dkim_key(folder), "e2026": make_ed25519_key(folder)}


@pytest.fixture
def settings(keys: dict[str, tuple[Path, bytes]]) -> Settings:
    files = ",".join(str(path) for path, _ in keys.values())
    return signing_settings(Path(files), ",".join(keys))


def signatures(raw: bytes) -> list[str]:
    """The DKIM-Signature headers, unfolded, top first."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    return [line for line in head.split("\r\n") if line.startswith("DKIM-Signature:")]


def verified(raw: bytes, keys: dict[str, tuple[Path, bytes]], index: int) -> bool:
    """Whether the signature at `index` verifies, its key looked up by its own selector."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        selector, _, domain = name.decode().partition("._domainkey.")
        assert domain == f"{DKIM_DOMAIN}."
        return keys[selector][1]

    try:
        return bool(dkim.DKIM(raw).verify(idx=index, dnsfunc=dnsfunc))
    except dkim.ValidationError:  # what dkim.verify reads as False, for one signature
        return False


def test_each_selector_signs_once_and_each_signature_verifies(
    settings: Settings, keys: dict[str, tuple[Path, bytes]]
) -> None:
    raw = raw_message(settings)
    signed = sign(raw, settings)
    found = signatures(signed)
    assert len(found) == 2
    assert "a=rsa-sha256;" in found[0]
    assert "s=r2026;" in found[0]
    assert "a=ed25519-sha256;" in found[1]
    assert "s=e2026;" in found[1]
    assert verified(signed, keys, 0)
    assert verified(signed, keys, 1)
    added = signed.removesuffix(raw)
    assert added != signed
    assert max(len(line) for line in added.split(b"\r\n")) <= 78
    # Both cover the same fields and the same body: a change breaks both.
    changed = signed.replace(b"Viens voir !", b"Viens payer", 1)
    assert changed != signed
    assert not verified(changed, keys, 0)
    assert not verified(changed, keys, 1)


def test_one_selector_still_signs_once(keys: dict[str, tuple[Path, bytes]]) -> None:
    path, _ = keys["e2026"]
    single = signing_settings(path, "e2026")
    signed = sign(raw_message(single), single)
    assert len(signatures(signed)) == 1
    assert verified(signed, keys, 0)


@pytest.mark.parametrize(
    ("selectors", "files", "details"),
    [
        ("r2026,e2026", "{rsa}", {"dkim_selector": "count", "dkim_private_key_file": "count"}),
        ("r2026", "{rsa},{ed}", {"dkim_selector": "count", "dkim_private_key_file": "count"}),
        ("r2026,", "{rsa},{ed}", {"dkim_selector": "empty"}),
        ("r2026,e2026", "{rsa}, ", {"dkim_private_key_file": "empty"}),
        ("r2026, r2026", "{rsa},{ed}", {"dkim_selector": "repeated"}),
    ],
)
def test_selectors_and_key_files_that_do_not_pair_are_refused_at_start(
    settings: Settings,
    keys: dict[str, tuple[Path, bytes]],
    selectors: str,
    files: str,
    details: dict[str, str],
) -> None:
    """A key paired with another selector's name would sign mail no receiver can verify:
    refused before anything is sent, by the start-up check as by the signer."""
    wrong = dataclasses.replace(
        settings,
        dkim_selector=selectors,
        dkim_private_key_file=files.format(rsa=keys["r2026"][0], ed=keys["e2026"][0]),
    )
    with pytest.raises(InvalidInput) as caught:
        check_mail_settings(wrong)
    assert caught.value.details == details
    with pytest.raises(InvalidInput):
        sign(raw_message(settings), wrong)


def test_one_bad_key_file_among_several_is_named(
    settings: Settings, keys: dict[str, tuple[Path, bytes]], tmp_path: Path
) -> None:
    gone = tmp_path / "gone.pem"
    wrong = dataclasses.replace(settings, dkim_private_key_file=f"{keys['r2026'][0]},{gone}")
    with pytest.raises(InvalidInput, match=f"{gone} cannot be read"):
        check_mail_settings(wrong)


def test_the_example_configuration_signs_with_both_keys_once_its_dkim_lines_are_used(
    keys: dict[str, tuple[Path, bytes]], tmp_path: Path
) -> None:
    """`courtois.example.toml` loads as shipped; its DKIM lines, uncommented and pointed at
    real key files, pair each selector with its key and put both signatures on an email."""
    example = (Path(__file__).parents[2] / "courtois.example.toml").read_text("utf-8")
    shipped = tmp_path / "shipped.toml"
    shipped.write_text(example, "utf-8")
    assert not load_settings(shipped, {}).dkim_selector
    used = example.replace("# dkim_", "dkim_")
    for name, (path, _) in zip(("rsa", "ed25519"), keys.values(), strict=True):
        used = used.replace(f"/etc/courtois/dkim-{name}.pem", str(path))
    configured = tmp_path / "courtois.toml"
    configured.write_text(used, "utf-8")
    settings = dataclasses.replace(load_settings(configured, {}), dkim_domain=DKIM_DOMAIN)
    signed = sign(raw_message(settings), settings)
    assert len(signatures(signed)) == 2
    assert verified(signed, keys, 0)
    assert verified(signed, keys, 1)
