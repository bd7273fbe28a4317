"""Addresses: one normal form, one matching key, one keyed digest (invariants 4 and 10)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from courtois.delivery.compose import _address as composable_address
from courtois.domain.addresses import (
    MAX_ADDRESS_LENGTH,
    Address,
    ascii_form,
    digest_of,
    is_role_mailbox,
    matching_key,
    parse_address,
    recipient_digest,
)
from courtois.domain.errors import InvalidAddress, InvalidInput

SECRET = b"unit-test-secret"
OTHER_SECRET = b"another-deployment"


def _address_of_length(length: int) -> str:
    """A syntactically valid address of exactly `length` characters (lengths 253 to 300)."""
    head = "x" * 64 + "@" + ("d" * 60 + ".") * 3  # 64 + 1 + 183 characters
    address = head + "d" * (length - len(head) - len(".org")) + ".org"
    assert len(address) == length
    return address


# --- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("ana@example.org", "ana@example.org"),
        ("Ana@Example.ORG", "Ana@example.org"),  # domain lower-cased, local part kept
        ("  Ana@Example.ORG \n", "Ana@example.org"),  # surrounding whitespace stripped
        ("\tbo@b.org\r\n", "bo@b.org"),
        ("ana@exämple.org", "ana@exämple.org"),  # Unicode domain kept in Unicode form
        ("ana@EXÄMPLE.org", "ana@exämple.org"),
        ("ana@xn--exmple-cua.org", "ana@exämple.org"),  # IDNA A-label decoded
        ("ana@exa\u0308mple.org", "ana@exämple.org"),  # decomposed ä composed (NFC)
        ("élodie@exemple.fr", "élodie@exemple.fr"),
    ],
)
def test_parse_address_normalizes(raw: str, normalized: str) -> None:
    address = parse_address(raw)
    assert isinstance(address, Address)
    assert address.normalized == normalized
    assert str(address) == normalized
    assert address.key == matching_key(normalized)


def test_key_is_case_folded_on_both_sides() -> None:
    assert parse_address("Ana@Example.ORG").key == "ana@example.org"
    assert parse_address("ÉLODIE@Exemple.FR").key == "élodie@exemple.fr"


def test_unicode_and_punycode_spellings_share_one_key_and_digest() -> None:
    """Nobody escapes an opt-out by writing the domain in its A-label form."""
    spellings = [
        "ana@exämple.org",
        "ANA@EXÄMPLE.ORG",
        "ana@xn--exmple-cua.org",
        "Ana@XN--EXMPLE-CUA.ORG",
    ]
    keys = {parse_address(s).key for s in spellings}
    digests = {digest_of(s, SECRET) for s in spellings}
    assert keys == {"ana@exämple.org"}
    assert len(digests) == 1


def test_decomposed_and_composed_local_parts_share_one_key() -> None:
    assert parse_address("a\u0308na@b.org").key == parse_address("äna@b.org").key


def test_length_limit_boundary() -> None:
    at_limit = _address_of_length(MAX_ADDRESS_LENGTH)
    assert parse_address(at_limit).normalized == at_limit
    # Whitespace around an address at the limit does not count against it.
    assert parse_address(f"  {at_limit}\n").normalized == at_limit
    with pytest.raises(InvalidAddress, match="254"):
        parse_address(_address_of_length(MAX_ADDRESS_LENGTH + 1))
    with pytest.raises(InvalidAddress, match="254"):
        parse_address("a" * 300 + "@example.org")


@pytest.mark.parametrize(
    ("local", "taken"),
    [
        ("a" * 64, True),
        ("a" * 65, False),
        ("a" * 240, False),
        ("Ana.Lima+" + "x" * 56, False),  # 65, on the fast path's own pattern
        ("é" * 32, True),  # 64 octets in UTF-8
        ("é" * 33, False),  # 33 characters, 66 octets
        ("e\u0301" * 32, True),  # decomposed, 96 octets as typed, 64 once composed (NFC)
    ],
)
def test_the_local_part_is_64_octets_at_most(local: str, taken: bool) -> None:
    """RFC 5321, section 4.5.3.1.1, counted in UTF-8 octets of the normal form; refused with
    a reason like any other invalid address, as typed and in any case."""
    for raw in (f"{local}@example.org", f"{local}@Example.ORG", f"{local}@ü.de"):
        if taken:
            assert len(parse_address(raw).normalized.rpartition("@")[0].encode()) <= 64
            continue
        with pytest.raises(InvalidAddress) as caught:
            parse_address(raw)
        assert caught.value.code == "invalid-address"
        assert caught.value.message == (
            "Not a valid email address: the part before the @-sign is longer than 64 bytes."
        )


def test_a_recipients_own_request_is_taken_whatever_its_local_part() -> None:
    """An opt-out, "forget me" or a bounce for an address taken in before the limit was
    enforced still finds it: the same normal form and key as it had then."""
    raw = "A" * 100 + "@Example.org"
    found = parse_address(raw, any_local_length=True)
    assert found == ("A" * 100 + "@example.org", "a" * 100 + "@example.org")
    with pytest.raises(InvalidAddress):
        parse_address("a b@example.org", any_local_length=True)


# --- refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\r\n",
        "nobody",
        "nobody.example.org",
        "a@",
        "@b.org",
        "a@b@c.org",
        "a..b@c.org",
        "a b@c.org",
        "a@b",  # no dot in the domain
        "a@localhost",
        "a@[192.0.2.1]",
        '"a b"@c.org',
        "a@b.org\r\nBcc: x@y.org",  # header injection
        "a@b.org\nBcc: x@y.org",
        "a@b.org\rBcc: x@y.org",
        "a\r\n@b.org",
        "a@b.org\x00",
        "=?utf-8?q?p2?=@example.org",  # an encoded word: no header could carry it
        "x=?b?YQ==?=@example.org",
        "Ana <a@b.org>",  # display-name forms
        '"Ana" <a@b.org>',
        "<a@b.org>",
        "a@b.org, c@d.org",
        "a@b.org;c@d.org",
    ],
)
def test_invalid_inputs_raise_invalid_address(raw: str) -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address(raw)
    error = caught.value
    assert isinstance(error, InvalidInput)
    assert error.code == "invalid-address"
    assert error.message


def test_empty_address_says_so() -> None:
    with pytest.raises(InvalidAddress, match="empty"):
        parse_address(" \t ")


def test_refusal_hides_the_library_exception() -> None:
    with pytest.raises(InvalidAddress) as caught:
        parse_address("Ana <a@b.org>")
    # `from None`: callers see our error, not email_validator's, as the cause.
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_digest_of_refuses_invalid_addresses() -> None:
    with pytest.raises(InvalidAddress):
        digest_of("a@b.org\r\nBcc: x@y.org", SECRET)


# --- matching key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("normalized", "key"),
    [
        ("Ana@example.org", "ana@example.org"),
        ("ANA@EXAMPLE.ORG", "ana@example.org"),
        ("ÉLODIE@exemple.fr", "élodie@exemple.fr"),
        ("ana@exämple.org", "ana@exämple.org"),
    ],
)
def test_matching_key_folds_case(normalized: str, key: str) -> None:
    assert matching_key(normalized) == key


# --- digest --------------------------------------------------------------------------------


def test_recipient_digest_is_hmac_sha256_hex() -> None:
    # RFC 4231, test case 1: HMAC-SHA256(key=0x0b * 20, "Hi There").
    assert (
        recipient_digest("Hi There", b"\x0b" * 20)
        == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    )


def test_digest_shape_and_secrecy() -> None:
    digest = digest_of("ana@example.org", SECRET)
    assert len(digest) == 64
    assert set(digest) <= set(string.hexdigits.lower())
    assert "ana" not in digest


def test_digest_differs_per_secret() -> None:
    assert digest_of("ana@example.org", SECRET) != digest_of("ana@example.org", OTHER_SECRET)


def test_digest_is_equal_for_case_variants() -> None:
    assert digest_of("Ana@X.org", SECRET) == digest_of("ana@x.org", SECRET)
    assert digest_of("  ANA@X.ORG  ", SECRET) == digest_of("ana@x.org", SECRET)


def test_digest_differs_for_different_addresses() -> None:
    assert digest_of("ana@x.org", SECRET) != digest_of("bo@x.org", SECRET)
    assert digest_of("ana@x.org", SECRET) != digest_of("ana@y.org", SECRET)


def test_digest_is_stable() -> None:
    assert digest_of("ana@x.org", SECRET) == digest_of("ana@x.org", SECRET)
    assert recipient_digest("ana@x.org", SECRET) == digest_of("Ana@X.org", SECRET)


_LOCAL = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=20)
_LABEL = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=1, max_size=15)


@given(
    local=_LOCAL,
    labels=st.lists(_LABEL, min_size=1, max_size=3),
    tld=st.sampled_from(["org", "fr", "com", "net"]),
    flips=st.lists(st.booleans(), min_size=60, max_size=60),
    pad=st.sampled_from(["", " ", "\t", "\n", "  \r\n"]),
)
def test_case_and_padding_never_change_the_identity(
    local: str, labels: list[str], tld: str, flips: list[bool], pad: str
) -> None:
    address = f"{local}@{'.'.join(labels)}.{tld}"
    variant = "".join(c.swapcase() if flip else c for c, flip in zip(address, flips, strict=False))
    variant += address[len(flips) :]
    variant = pad + variant + pad
    assert parse_address(variant).key == parse_address(address).key == address.lower()
    assert digest_of(variant, SECRET) == digest_of(address, SECRET)


@pytest.mark.parametrize(
    "raw",
    [
        "postmaster@example.org",
        "Abuse@Example.org",
        "MAILER-DAEMON@mx.example.net",
        "bounces+list-42@lists.example.org",
        "noreply@github.example",
        "no-reply@accounts.example",
        "no_reply.billing@shop.example",
        "donotreply@bank.example",
        "Do-Not-Reply@bank.example",
        "noreply-8f2c@notifications.example",
    ],
)
def test_role_and_no_reply_mailboxes_are_recognised(raw: str) -> None:
    assert is_role_mailbox(parse_address(raw))


@pytest.mark.parametrize(
    "raw",
    [
        "ana@example.org",
        "noah@example.org",  # starts like "no"
        "norelyn@example.org",
        "replyall@example.org",
        "postmaster.ana@example.org",  # a person may well be called so
        "abusey@example.org",
        "info@small-business.example",  # often a person's only address
        "support@example.org",
    ],
)
def test_people_are_not_taken_for_role_mailboxes(raw: str) -> None:
    assert not is_role_mailbox(parse_address(raw))


# Local parts near what mail headers give a meaning to: encoded words above all.
_PIECES = st.lists(
    st.sampled_from(["=?", "?=", "?", "=", "a", "_", "'", ".", "-", "é"]), max_size=3
)
_ENCODED = st.builds(
    "=?{}?{}?{}?=".format,
    st.sampled_from(["", "utf-8", "a"]),
    st.sampled_from(["q", "b", "Q", "x"]),
    st.sampled_from(["", "a", "YQ==", "_"]),
)
_LOCAL = st.builds(
    lambda before, word, after: "".join(before) + word + "".join(after),
    _PIECES,
    st.just("") | _ENCODED,
    _PIECES,
).filter(bool)


@given(_LOCAL, st.sampled_from(["example.org", "exämple.fr"]))
def test_every_address_taken_in_can_be_written_in_an_email(local: str, domain: str) -> None:
    """Intake and composition agree: an address parse_address accepts is one the composer
    can put in a To header, so no accepted invitation fails when its email is written."""
    try:
        address = parse_address(f"{local}@{domain}")
    except InvalidAddress:
        return
    assert str(composable_address(address.normalized, "to"))


@pytest.mark.parametrize(
    ("normalized", "ascii"),
    [
        ("ana@example.org", "ana@example.org"),
        ("idn@münchen.example", "idn@xn--mnchen-3ya.example"),
        # IDNA 2008, as email-validator writes it: the stdlib's IDNA 2003 would name another
        # domain ("fass.example").
        ("ana@faß.example", "ana@xn--fa-hia.example"),
        # A local part outside ASCII has no other form: only the domain changes.
        ("bö@bücher.example", "bö@xn--bcher-kva.example"),
    ],
)
def test_the_ascii_form_writes_the_domain_in_a_labels(normalized: str, ascii: str) -> None:
    assert ascii_form(normalized) == ascii
    assert ascii_form(parse_address(ascii).normalized) == ascii
    # The To header names the very domain the envelope carries.
    assert composable_address(normalized, "to").addr_spec == ascii


def test_a_domain_without_an_ascii_form_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid characters"):
        ascii_form("ana@exa mple.örg")


@given(
    local=st.from_regex(r"[A-Za-z0-9_+-]{1,20}(\.[A-Za-z0-9_+-]{1,10}){0,3}", fullmatch=True),
    domain=st.from_regex(r"[A-Za-z0-9-]{1,20}(\.[A-Za-z0-9-]{1,12}){1,3}", fullmatch=True),
)
def test_a_plain_address_is_built_as_the_parser_reads_it(local: str, domain: str) -> None:
    """A dot-atom at a plain domain is built from its parts, not parsed: the same address
    the stdlib's parser makes of it, printed the same."""
    from email.headerregistry import Address as MailAddress

    value = f"{local}@{domain}"
    try:
        parsed = MailAddress(addr_spec=f"{local}@{domain.encode('idna').decode('ascii')}")
    except UnicodeError:  # a label the codec refuses (empty, too long) is refused alike
        with pytest.raises(InvalidInput):
            composable_address(value, "to")
        return
    built = composable_address(value, "to")
    assert built == parsed
    assert (built.addr_spec, str(built)) == (parsed.addr_spec, str(parsed))
