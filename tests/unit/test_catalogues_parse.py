"""Every catalogue parses without a word from Babel: a warning at parse time (a plural
form the language does not have, a line it cannot read) is printed by every process that
loads it, at each start, and means a translation that is dropped."""

from __future__ import annotations

import logging
from importlib.resources import files
from io import BytesIO

import pytest
from babel.messages.pofile import read_po

CATALOGUES = sorted(
    f"{locale.name}/{domain.name}"
    for locale in files("courtois").joinpath("locale").iterdir()
    if locale.is_dir()
    for domain in locale.joinpath("LC_MESSAGES").iterdir()
    if domain.name.endswith(".po")
)


def test_every_catalogue_is_found() -> None:
    assert len(CATALOGUES) >= 4, CATALOGUES


@pytest.mark.parametrize("catalogue", CATALOGUES)
def test_a_catalogue_parses_silently(
    catalogue: str, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    locale, domain = catalogue.split("/")
    source = files("courtois").joinpath("locale", locale, "LC_MESSAGES", domain).read_bytes()
    with caplog.at_level(logging.DEBUG):
        catalog = read_po(BytesIO(source), locale=locale)
    # Babel prints its parse warnings ("WARNING: ...") on stdout; newer releases may log.
    assert capsys.readouterr().out == ""
    assert [record.getMessage() for record in caplog.records] == []
    for message in catalog:
        if message.pluralizable and message.id:
            assert len(message.string) == catalog.num_plurals, message.id
