"""Rendering the pages: escaping, dates in both languages, the headers every page carries,
the sign-up URL an accepting recipient is sent to, and an import report's words."""

from __future__ import annotations

import base64
import hashlib
import io
from datetime import UTC, date, datetime

import pytest

from courtois.config import Settings
from courtois.domain.contacts import ReadLimit, RecordProblem
from courtois.domain.errors import InvalidInput
from courtois.domain.members import Member
from courtois.importers import read_contacts
from courtois.services.contacts import ImportReport
from courtois.services.recipient_email import Inviting
from courtois.web.pages.recipient import signup_url
from courtois.web.pages.render import CSS, HEADERS, day, environment, render_page, when

SETTINGS = Settings(
    secret_key="unit-secret-0123456789",
    platform_name='Agora <script>alert("x")</script>',
    base_url="https://agora.test/",
    platform_postal_address="1 rue de la Paix\n75002 Paris",
)


@pytest.mark.parametrize("count", [1, 2])
@pytest.mark.parametrize("by_hand", [False, True])
def test_platform_and_address_are_escaped_and_no_script_runs(count: int, by_hand: bool) -> None:
    inviters = [
        Inviting(f"i-{n}", f"m-{n}", f'Ana{n} <script>alert("y")</script>') for n in range(count)
    ]
    html = render_page(
        SETTINGS, "en", "unsubscribe.html", inviters=inviters, by_hand=by_hand, shared=by_hand
    )
    assert "<script>" not in html
    assert "Ana0 &lt;script&gt;" in html
    assert "Agora &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "1 rue de la Paix, 75002 Paris" in html


def test_the_stylesheet_is_the_one_the_policy_allows() -> None:
    html = render_page(SETTINGS, "fr", "not_found.html", by_hand=False)
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert style == CSS
    digest = base64.b64encode(hashlib.sha256(style.encode("utf-8")).digest()).decode()
    policy = HEADERS["Content-Security-Policy"]
    assert f"style-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "form-action 'self'" in policy
    assert HEADERS["Cache-Control"] == "no-store"
    assert HEADERS["Referrer-Policy"] == "no-referrer"
    assert HEADERS["X-Frame-Options"] == "DENY"


def test_dates_read_as_people_write_them() -> None:
    moment = datetime(2026, 3, 2, 9, 5, tzinfo=UTC)
    assert day(moment, "fr") == "2 mars 2026"
    assert day(date(2026, 3, 2), "en") == "March 2, 2026"
    assert when(moment, "fr") == "2 mars 2026, 09:05 UTC"
    assert when(None, "en") == ""
    # French writes the first of the month as an ordinal, and only that day.
    assert day(date(2026, 12, 1), "fr") == "1er décembre 2026"
    assert when(datetime(2026, 12, 1, 9, 5, tzinfo=UTC), "fr") == "1er décembre 2026, 09:05 UTC"
    assert day(date(2026, 12, 11), "fr") == "11 décembre 2026"
    assert day(date(2026, 12, 1), "en") == "December 1, 2026"


def test_the_sign_up_url_carries_the_invitation() -> None:
    assert signup_url(SETTINGS, "inv-1") == "https://agora.test/welcome?invitation=inv-1"
    configured = Settings(signup_url="https://p.example/join?src=mail#top")
    assert signup_url(configured, "a b") == "https://p.example/join?src=mail&invitation=a+b#top"
    # courtois's own page is told the invitation's language; the platform's is not.
    assert signup_url(SETTINGS, "inv-1", "fr") == (
        "https://agora.test/welcome?lang=fr&invitation=inv-1"
    )
    assert signup_url(configured, "a", "fr") == "https://p.example/join?src=mail&invitation=a#top"


def test_an_import_report_says_what_was_left_unread_in_the_members_language() -> None:
    report = ImportReport(records=3, limits=[ReadLimit("Envoyés", read=5_000, total=5_108)])
    shown = {
        locale: render_page(
            SETTINGS,
            locale,
            "member_import.html",
            member=Member("ana", "ana@example.com", "Ana", locale),
            csrf="",
            csrf_field="csrf",
            problem="",
            reason="",
            report=report,
            pasted="",
            limit="64 MB",
        )
        for locale in ("en", "fr")
    }
    assert "Only the newest 5,000 of the 5,108 messages in Envoyés were read." in shown["en"]
    french = shown["fr"].replace("\u202f", " ").replace("\u00a0", " ")
    assert (
        "Seuls les 5 000 messages les plus récents sur les 5 108 du dossier Envoyés ont été lus."
        in french
    )


# A file of each kind the readers refuse whole, read as the format named (None: detected).
REFUSED_FILES = [
    (b"", None),
    (bytes(range(256)) * 4, "csv"),
    (b"BEGIN:VCARD\r\nVERSION:3.0\r\nEMAIL:bo@example.org\r\nEND:VCARD\r\n", "csv"),
    (b"dn: cn=Bo\nmail: bo@example.org\n", "csv"),
    (b"Name,Phone\nBo,123\n", "csv"),
    (b"Just some words.\n", "vcard"),
    (b"Just some words.\n", "ldif"),
    (b"# only a comment\n", "ldif"),
    (b"Just some words.\n", None),
]


@pytest.mark.parametrize(("content", "file_format"), REFUSED_FILES)
def test_every_reason_a_file_is_refused_is_worded_in_french(
    content: bytes, file_format: str | None
) -> None:
    """The member page shows why a file was refused in its own words: each reason the
    readers give has them (a reader's new sentence would otherwise show in English)."""
    with pytest.raises(InvalidInput) as caught:
        list(read_contacts(io.BytesIO(content), file_format))
    page = environment("fr").from_string(
        '{% import "member_macros.html" as m with context %}{{ m.file_refusal(reason) }}'
    )
    shown = page.render(reason=caught.value.message)
    assert shown
    assert shown != caught.value.message


# A file whose records the readers set aside, each for a reason of its own, with its format.
REFUSED_RECORDS = [
    (b'Name,Email\r\nBo,bo@example.org\r\n,"unterminated', "csv"),
    (b"BEGIN:VCARD\r\nFN:Bo\r\nEMAIL;ENCODING=b:!!!\r\nEND:VCARD\r\n", "vcard"),
    (
        b"BEGIN:VCARD\r\nFN:Bo\r\n"
        + b"".join(b"EMAIL:bo%d@example.org\r\n" % n for n in range(1001))
        + b"END:VCARD\r\n",
        "vcard",
    ),
    (b"dn: cn=Bo\nmail:: !!!\n", "ldif"),
    (b"dn: cn=Bo\nmail:< file:///tmp/bo.ldif\n", "ldif"),
    (
        b"dn: cn=Bo\n" + b"".join(b"mail: bo%d@example.org\n" % n for n in range(1001)),
        "ldif",
    ),
]


@pytest.mark.parametrize(
    ("content", "file_format"),
    REFUSED_RECORDS,
    ids=[
        "csv-open-quote",
        "vcard-base64",
        "vcard-too-large",
        "ldif-base64",
        "ldif-url",
        "ldif-too-large",
    ],
)
def test_every_reason_a_record_is_set_aside_is_worded_in_french(
    content: bytes, file_format: str
) -> None:
    """The import report says why each record was left out in the member's words: a
    reader's sentence the macro does not know would show in English on a French page."""
    reasons = [
        record.reason
        for record in read_contacts(io.BytesIO(content), file_format)
        if isinstance(record, RecordProblem)
    ]
    assert len(reasons) == 1
    page = environment("fr").from_string(
        '{% import "member_macros.html" as m with context %}{{ m.reason(reason) }}'
    )
    shown = page.render(reason=reasons[0])
    assert shown
    assert shown != reasons[0]
    assert not any(word in shown for word in ("unreadable", "too large", "never", "not valid"))
    assert "illisible\u00a0: " in shown or "trop grande\u00a0: plus de 1\u202f000 adresses" in shown
