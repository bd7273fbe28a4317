"""Choosing the Sent folder from LIST answers, as servers really write them."""

from __future__ import annotations

import pytest

from courtois.importers.imap_folders import (
    Mailbox,
    choose_sent,
    decode_mailbox_name,
    parse_list,
    quote,
)


@pytest.mark.parametrize(
    ("wire", "name"),
    [
        ("Envoy&AOk-s", "Envoyés"),
        ("&AMk-l&AOk-ments envoy&AOk-s", "Éléments envoyés"),
        ("Tom &- Jerry", "Tom & Jerry"),
        ("&ZeVnLIqe-", "日本語"),
        ("Broken &AOk", "Broken &AOk"),  # an unterminated run is not a shift
        ("Bad &!!!-", "Bad &!!!-"),
    ],
)
def test_modified_utf7_names_are_decoded(wire: str, name: str) -> None:
    assert decode_mailbox_name(wire) == name


def test_list_lines_quoted_atoms_literals_and_nil_delimiters() -> None:
    boxes = parse_list(
        [
            b'(\\HasNoChildren \\Sent) "/" Sent',
            b'(\\HasNoChildren) "." "Sent \\"Old\\" Items"',
            (b'(\\HasNoChildren) "/" {11}', b"Envoy&AOk-s"),
            b"(\\Noselect) NIL Public",
            b"not a list line",
            None,
        ]
    )

    assert [(box.wire, box.name, box.delimiter) for box in boxes] == [
        ("Sent", "Sent", "/"),
        ('Sent "Old" Items', 'Sent "Old" Items', "."),
        ("Envoy&AOk-s", "Envoyés", "/"),
        ("Public", "Public", ""),
    ]
    assert boxes[0].flags == {"\\hasnochildren", "\\sent"}
    assert not boxes[3].selectable


def box(name: str, *flags: str, delimiter: str = "/") -> Mailbox:
    return Mailbox(wire=name, name=name, delimiter=delimiter, flags=frozenset(flags))


def test_the_sent_attribute_wins_over_any_name() -> None:
    boxes = [box("Sent"), box("Sent Items"), box("Outbox Archive", "\\sent")]

    assert choose_sent(boxes, None) == boxes[2]


def test_usual_names_in_order_at_the_top_or_under_inbox_only() -> None:
    assert choose_sent([box("Sent Items"), box("Sent")], None) == box("Sent")
    assert choose_sent([box("INBOX.Sent", delimiter=".")], None) is not None
    assert choose_sent([box("Archive/2019/Sent")], None) is None
    assert choose_sent([box("Sent", "\\noselect")], None) is None
    assert choose_sent([box("ENVOYÉS")], None) == box("ENVOYÉS")


def test_a_named_folder_is_matched_exactly_then_ignoring_case() -> None:
    boxes = [box("sent"), box("Sent")]

    assert choose_sent(boxes, "Sent") == boxes[1]
    assert choose_sent([box("Sent")], "SENT") == box("Sent")
    assert choose_sent(boxes, "Archive") is None


def test_quoting_escapes_backslashes_and_quotes() -> None:
    assert quote('Sent "Old" \\ Items') == '"Sent \\"Old\\" \\\\ Items"'
