"""DKIM: a composed message signed with a fresh key verifies against its public key, and
any change to a signed header or the body breaks the signature; every test of the module
runs with an RSA key (rsa-sha256) and with an Ed25519 key (ed25519-sha256, RFC 8463)."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dkim
import pytest
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from conftest import DKIM_DOMAIN, make_dkim_key, make_ed25519_key, signing_settings
from courtois.bootstrap import check_mail_settings
from courtois.config import Settings
from courtois.delivery.compose import Carried, ComposeInput, compose, to_bytes
from courtois.delivery.dkim import SIGNED_HEADERS, sign
from courtois.delivery.skeleton import compose_wire
from courtois.domain.errors import InvalidInput
from courtois.domain.messages import MessageKind

SELECTOR, DOMAIN = "courtois2026", DKIM_DOMAIN


@pytest.fixture(scope="module", params=["rsa", "ed25519"])
def dkim_key(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, bytes]:
    """A 2048-bit RSA key, then an Ed25519 key, each with its TXT record."""
    folder = tmp_path_factory.mktemp("dkim")
    return make_dkim_key(folder) if request.param == "rsa" else make_ed25519_key(folder)


@pytest.fixture
def settings(dkim_key: tuple[Path, bytes]) -> Settings:
    return signing_settings(dkim_key[0], SELECTOR)


def raw_message(
    settings: Settings, name: str = "Ana Lima", reply_to: str | None = "ana@member.test"
) -> bytes:
    message = ComposeInput(
        message_id="3f1c2a9e-0000-4000-8000-000000000001",
        to="bo@example.com",
        kind=MessageKind.INVITATION,
        locale="fr",
        invitations=(Carried("inv-1", name, "Viens voir !", 1, reply_to=reply_to),),
        sent_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    return to_bytes(compose(settings, message))


def verify(raw: bytes, record: bytes) -> bool:
    asked: list[bytes] = []

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        asked.append(name)
        return record

    result = bool(dkim.verify(raw, dnsfunc=dnsfunc))
    assert asked == [f"{SELECTOR}._domainkey.{DOMAIN}.".encode()]
    return result


def test_signed_message_verifies_against_the_public_key(
    settings: Settings, dkim_key: tuple[Path, bytes]
) -> None:
    signed = sign(raw_message(settings, 'Ána "Lima", <x@y>'), settings)
    assert signed.startswith(b"DKIM-Signature: ")
    assert verify(signed, dkim_key[1])
    header = signed.split(b"\r\n\r\n", 1)[0].decode()
    tags = dict(re.findall(r"(\w+)=([^;]*)", re.sub(r"\s+", "", header.split(":", 1)[1])))
    algorithm = "ed25519-sha256" if b"k=ed25519" in dkim_key[1] else "rsa-sha256"
    assert (tags["a"], tags["c"], tags["d"], tags["s"]) == (
        algorithm,
        "relaxed/relaxed",
        DOMAIN,
        SELECTOR,
    )
    signed_headers = {name.lower() for name in tags["h"].split(":")}
    for required in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert required.lower() in signed_headers
    assert "list-unsubscribe-post" in signed_headers
    assert signed_headers == {name.lower() for name in SIGNED_HEADERS}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"Subject: =?utf-8?", b"Subject: Re: =?utf-8?"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: No"),
        (b"Date: Mon, 02 Mar 2026", b"Date: Tue, 03 Mar 2026"),
        (b"Viens voir !", b"Viens payer"),
    ],
    ids=["subject", "one-click", "date", "body"],
)
def test_tampering_breaks_the_signature(
    settings: Settings, dkim_key: tuple[Path, bytes], old: bytes, new: bytes
) -> None:
    signed = sign(raw_message(settings), settings)
    assert old in signed
    assert not verify(signed.replace(old, new, 1), dkim_key[1])


def test_adding_a_signed_header_breaks_the_signature(
    settings: Settings, dkim_key: tuple[Path, bytes]
) -> None:
    """Over-signing: a second Reply-To or List-Unsubscribe cannot be slipped in, above or
    below the real one, nor a header that was absent (Reply-To without opt-in)."""
    signed = sign(raw_message(settings), settings)
    for extra in (b"Reply-To: thief@evil.test", b"List-Unsubscribe: <https://evil.test/>"):
        assert not verify(
            signed.replace(b"\r\nTo: ", b"\r\n" + extra + b"\r\nTo: ", 1), dkim_key[1]
        )
        head, body = signed.split(b"\r\n\r\n", 1)
        assert not verify(head + b"\r\n" + extra + b"\r\n\r\n" + body, dkim_key[1])
    bare = sign(raw_message(settings, reply_to=None), settings)
    assert verify(bare, dkim_key[1])
    head, body = bare.split(b"\r\n\r\n", 1)
    assert not verify(head + b"\r\nReply-To: thief@evil.test\r\n\r\n" + body, dkim_key[1])


def test_the_thread_a_reminder_names_is_signed_and_cannot_be_added_or_changed(
    settings: Settings, dkim_key: tuple[Path, bytes]
) -> None:
    """A reminder's In-Reply-To and References (its invitation email's Message-ID) are
    signed: neither can be changed to thread it under another message, and neither can be
    added to an email that has none."""
    reminder = ComposeInput(
        message_id="3f1c2a9e-0000-4000-8000-000000000002",
        to="bo@example.com",
        kind=MessageKind.REMINDER,
        locale="fr",
        invitations=(Carried("inv-1", "Ana Lima", "Viens voir !", 1),),
        sent_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        in_reply_to="3f1c2a9e-0000-4000-8000-000000000001",
    )
    signed = sign(compose_wire(settings, reminder).raw, settings)
    assert verify(signed, dkim_key[1])
    for name in (b"In-Reply-To", b"References"):
        line = name + b": <3f1c2a9e-0000-4000-8000-000000000001@"
        assert line in signed
        other = name + b": <3f1c2a9e-0000-4000-8000-000000000666@"
        assert not verify(signed.replace(line, other, 1), dkim_key[1])
    invitation = sign(raw_message(settings), settings)
    head, body = invitation.split(b"\r\n\r\n", 1)
    for extra in (b"In-Reply-To: <x@evil.test>", b"References: <x@evil.test>"):
        assert not verify(head + b"\r\n" + extra + b"\r\n\r\n" + body, dkim_key[1])


def test_without_dkim_settings_the_message_is_unchanged(settings: Settings) -> None:
    bare = dataclasses.replace(settings, dkim_domain="", dkim_selector="", dkim_private_key_file="")
    raw = raw_message(bare)
    assert sign(raw, bare) is raw


@pytest.mark.parametrize("missing", ["dkim_domain", "dkim_selector", "dkim_private_key_file"])
def test_a_partial_dkim_setting_is_refused(settings: Settings, missing: str) -> None:
    partial = dataclasses.replace(settings, **{missing: ""})
    with pytest.raises(InvalidInput) as caught:
        sign(raw_message(partial), partial)
    assert caught.value.details == {missing: "missing"}


def test_an_unreadable_or_bad_key_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    gone = dataclasses.replace(settings, dkim_private_key_file=str(tmp_path / "nope.pem"))
    with pytest.raises(InvalidInput, match="cannot be read"):
        sign(raw_message(gone), gone)
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n")
    bad = dataclasses.replace(settings, dkim_private_key_file=str(junk))
    with pytest.raises(InvalidInput, match="does not hold"):
        sign(raw_message(bad), bad)


def test_a_key_dkim_has_no_algorithm_for_is_refused(settings: Settings, tmp_path: Path) -> None:
    """An ECDSA key (P-256) is a valid PEM private key, but DKIM signs with RSA or Ed25519
    only: refused in words, before any email leaves with a signature nobody can check."""
    ecdsa = tmp_path / "p256.pem"
    subprocess.run(
        ["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(ecdsa)],
        check=True,
        capture_output=True,
    )
    wrong = dataclasses.replace(settings, dkim_private_key_file=str(ecdsa))
    with pytest.raises(InvalidInput, match="does not hold an RSA or Ed25519 private key"):
        sign(raw_message(wrong), wrong)


def test_relaxed_canonicalisation_survives_folding_tabs_and_trailing_lines(
    settings: Settings, dkim_key: tuple[Path, bytes]
) -> None:
    """Folded and repeated headers, runs of tabs and spaces, trailing whitespace and empty
    lines at the end: dkimpy's verifier agrees with the signer on all of them."""
    raw = (
        b'From: "Ana"   <invitations@agora.test>\r\n'
        b"To: bo@example.com\r\n"
        b"Subject: a long subject\r\n\tfolded\t  onto two lines  \r\n"
        b"Date: Mon, 02 Mar 2026 09:00:00 +0000\r\n"
        b"Message-ID: <m1@agora.test>\r\n"
        b"X-Unsigned: anything\r\n"
        b"\r\n"
        b"Hello  \t there  \r\n"
        b"\r\n"
        b"last line\t\r\n"
        b"\r\n"
        b"\r\n"
    )
    signed = sign(raw, settings)
    assert verify(signed, dkim_key[1])
    assert not verify(signed.replace(b"there", b"where"), dkim_key[1])


def test_the_key_file_is_parsed_once_per_version(settings: Settings) -> None:
    """Rotating the key file is picked up; an unchanged file is not parsed again."""
    from courtois.delivery.dkim import _load

    _load.cache_clear()
    sign(raw_message(settings), settings)
    sign(raw_message(settings), settings)
    assert _load.cache_info().misses == 1


def test_a_rotated_key_file_signs_once_its_time_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's time is read at most once a KEY_FILE_CHECK_SECONDS: a key written over
    the file signs from the next reading on."""
    from courtois.delivery import dkim as signer

    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    first, first_record = make_ed25519_key(tmp_path / "one")
    second, second_record = make_ed25519_key(tmp_path / "two")
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(first.read_bytes())
    settings = signing_settings(key_file, SELECTOR)
    monkeypatch.setattr(signer, "KEY_FILE_CHECK_SECONDS", 3600.0)
    assert verify(sign(raw_message(settings), settings), first_record)
    key_file.write_bytes(second.read_bytes())
    os.utime(key_file, (1, 1))  # a time unlike the first version's, however fast the disk
    # Within the interval the version already read signs on.
    assert verify(sign(raw_message(settings), settings), first_record)
    monkeypatch.setattr(signer, "KEY_FILE_CHECK_SECONDS", 0.0)
    assert verify(sign(raw_message(settings), settings), second_record)
    key_file.unlink()
    with pytest.raises(InvalidInput, match="cannot be read"):
        sign(raw_message(settings), settings)


_WSP = re.compile(rb"[ \t]+")


def relaxed_body_line_by_line(body: bytes) -> bytes:
    """RFC 6376 section 3.4.4 followed to the letter, one line at a time."""
    lines = [_WSP.sub(b" ", line).rstrip(b" ") for line in body.split(b"\r\n")]
    while lines and not lines[-1]:
        lines.pop()
    return b"".join(line + b"\r\n" for line in lines)


@examples(max_examples=500, deadline=None)
@given(
    body=st.lists(
        st.sampled_from([b"a", b"=", b" ", b"  ", b"\t", b"\r\n", b"\r", b"\n", b".", b"\xc3\xa9"]),
        max_size=40,
    ).map(b"".join)
)
def test_the_body_is_canonicalised_as_the_rfc_says(body: bytes) -> None:
    from courtois.delivery.dkim import _relaxed_body

    assert _relaxed_body(body) == relaxed_body_line_by_line(body)


def test_an_email_filled_from_a_skeleton_verifies(
    settings: Settings, dkim_key: tuple[Path, bytes]
) -> None:
    for recipient in range(3):
        message = ComposeInput(
            message_id=f"3f1c2a9e-0000-4000-8000-00000000000{recipient}",
            to=f"r{recipient}@example.com",
            kind=MessageKind.INVITATION,
            locale="fr",
            invitations=(Carried(f"inv-{recipient}", "Ána", "Viens  voir !\t\n.\n", 1),),
            sent_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        )
        assert verify(sign(compose_wire(settings, message).raw, settings), dkim_key[1])


# --- lines SMTP can carry, whatever the key ------------------------------------------------------


@pytest.fixture(scope="module", params=[1024, 2048, 4096])
def sized_key(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A key of each size a platform may publish, and its TXT record."""
    return make_dkim_key(tmp_path_factory.mktemp("dkim"), request.param)


def dkim_lines(signed: bytes) -> list[bytes]:
    """The lines of the DKIM-Signature header: its first and its continuation lines."""
    lines = signed.split(b"\r\n")
    end = next(i for i, line in enumerate(lines[1:], 1) if line[:1] not in (b" ", b"\t"))
    return lines[:end]


def test_every_line_fits_smtp_and_the_signature_verifies_at_every_key_size(
    sized_key: tuple[Path, bytes],
) -> None:
    """Unfolded, a 4096-bit signature was a 1,106-octet line, which SMTP servers refuse
    (998 at most), and a 2048-bit one 761: folded, each line of the header is within 78
    octets, and dkimpy still verifies it."""
    settings = signing_settings(sized_key[0], SELECTOR)
    signed = sign(raw_message(settings, "Ána Lîma " * 12), settings)
    assert max(len(line) for line in signed.split(b"\r\n")) <= 998
    header = dkim_lines(signed)
    assert len(header) > 2
    assert max(len(line) for line in header) <= 78
    assert verify(signed, sized_key[1])
    assert not verify(signed.replace(b"Viens voir !", b"Viens payer"), sized_key[1])
    # Only whitespace was added: unfolded, the tags read as before.
    tags = dict(re.findall(r"(\w+)=([^;]*)", re.sub(r"\s+", "", b"".join(header).decode())))
    assert tags["h"] == ":".join(name.lower() for name in SIGNED_HEADERS for _ in (1, 2))


@examples(max_examples=40, deadline=None)
@given(
    # Up to the longest that fits a line with its tag ("d=...;" and "s=...;"); a longer
    # one takes a line of its own, as long as it needs.
    domain=st.from_regex(r"[a-z0-9]{1,40}(\.[a-z0-9]{1,30}){0,2}\.test", fullmatch=True).filter(
        lambda domain: len(domain) <= 75
    ),
    selector=st.from_regex(r"[a-z0-9]{1,63}(\.[a-z0-9]{1,20}){0,2}", fullmatch=True).filter(
        lambda selector: len(selector) <= 75
    ),
)
def test_the_header_folds_within_78_octets_whatever_the_names(
    dkim_key: tuple[Path, bytes], domain: str, selector: str
) -> None:
    """Where the folds fall depends on the domain's and selector's lengths: each layout
    keeps its lines within 78 octets and verifies."""
    settings = dataclasses.replace(
        signing_settings(dkim_key[0], selector), dkim_domain=domain, mail_from=f"a@{domain}"
    )
    signed = sign(raw_message(settings), settings)
    assert max(len(line) for line in dkim_lines(signed)) <= 78
    expected = f"{selector}._domainkey.{domain}.".encode()

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        assert name == expected
        return dkim_key[1]

    assert dkim.verify(signed, dnsfunc=dnsfunc)


def test_the_start_up_check_refuses_only_what_smtp_cannot_carry(
    sized_key: tuple[Path, bytes],
) -> None:
    """The start-up check signs a sample email: it accepts every key size, now that the
    header is folded, and refuses settings that would make a line SMTP servers refuse."""
    settings = signing_settings(sized_key[0], SELECTOR)
    check_mail_settings(settings)
    too_long = dataclasses.replace(settings, dkim_selector="s" * 1000)
    with pytest.raises(InvalidInput, match="longer than 998 octets"):
        check_mail_settings(too_long)
