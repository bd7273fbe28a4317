"""The one-call `_` of the template environments renders what Jinja's own newstyle gettext
renders, byte for byte: same sentence, same escaping of the variables in HTML, same `%`
formatting, for any name, note and platform. A difference would change the emails' preview
hashes, which pin what members consented to (invariant 2)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest
from babel.support import Translations
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Environment

from courtois.config import Settings
from courtois.delivery import render as email_render
from courtois.delivery.render import Inviter, RenderContext, Rendered, render
from courtois.domain.members import SUPPORTED_LOCALES
from courtois.domain.messages import MessageKind
from courtois.services.recipient_email import Inviting
from courtois.web.pages import render as page_render

# Characters that matter to the two paths: HTML specials, `%` (a format string's), braces.
WORDS = st.lists(
    st.sampled_from([*"Aa é<>&\"'%(){}s\n\t", "Zoë", "%(member)s", "%%"]), max_size=30
).map("".join)


# The environments' own builders, taken before any test swaps them.
BUILD_EMAILS = email_render._environment
BUILD_PAGES = page_render.environment


def stock_install(env: Environment, catalogue: Translations) -> None:
    """What the environments did before: the i18n extension's own `_` and gettext."""
    env.install_gettext_translations(catalogue, newstyle=True)  # type: ignore[attr-defined]


def built_with_stock_gettext(
    module: object, build: Callable[[str], Environment], locale: str
) -> Environment:
    """The environment `build` makes, built by the same code with the stock install."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(module, "install_translations", stock_install)
        return build.__wrapped__(locale)  # type: ignore[attr-defined]


@cache
def stock_email_environment(locale: str) -> Environment:
    return built_with_stock_gettext(email_render, BUILD_EMAILS, locale)


def rendered_both(
    kind: MessageKind, locale: str, context: RenderContext
) -> tuple[Rendered, Rendered]:
    fast = render(kind, locale, context)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(email_render, "_environment", stock_email_environment)
        stock = render(kind, locale, context)
    return fast, stock


def test_the_stock_environment_is_the_extensions_own() -> None:
    stock = stock_email_environment("fr")
    assert stock.globals["_"] is not BUILD_EMAILS("fr").globals["_"]
    assert stock.globals["_"].__module__ == "jinja2.ext"


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(list(MessageKind)),
    locale=st.sampled_from(SUPPORTED_LOCALES),
    platform=WORDS,
    postal=WORDS,
    names=st.lists(WORDS, min_size=1, max_size=3),
    note=WORDS,
    first_contact=st.booleans(),
    asked=st.booleans(),
)
def test_emails_render_as_with_jinjas_own_gettext(
    kind: MessageKind,
    locale: str,
    platform: str,
    postal: str,
    names: list[str],
    note: str,
    first_contact: bool,
    asked: bool,
) -> None:
    if kind is not MessageKind.DIGEST:
        names = names[:1]
    context = RenderContext(
        platform=platform,
        base_url="https://agora.test",
        inviters=tuple(Inviter(name, note, 1) for name in names),
        postal_address=postal,
        first_contact=first_contact,
        asked_by_recipient=asked and kind is MessageKind.REMINDER,
    )
    fast, stock = rendered_both(kind, locale, context)
    assert fast == stock


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize(
    "template", ["unsubscribe.html", "unsubscribed.html", "not_found.html", "welcome.html"]
)
@pytest.mark.parametrize("platform", ['Agora <b>"%"</b> & Co', "100% %(x)s"])
@pytest.mark.parametrize("by_hand", [False, True])
def test_pages_render_as_with_jinjas_own_gettext(
    locale: str, template: str, platform: str, by_hand: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = Settings(secret_key="unit-secret-0123456789", platform_name=platform)
    # The member a page names, as hostile as the platform's name.
    member = f"{platform} Lima"
    # A digest's members, for the unsubscribe page; under strict-eu, reached from the text
    # a member sent by hand (a shared link).
    inviters = (Inviting("i-1", "m-1", member), Inviting("i-2", "m-2", f"{platform} Bo"))
    values = {"member": member, "inviters": inviters, "by_hand": by_hand, "shared": by_hand}
    fast = page_render.render_page(config, locale, template, **values)
    stock = built_with_stock_gettext(page_render, BUILD_PAGES, locale)
    monkeypatch.setattr(page_render, "environment", lambda _locale: stock)
    again = page_render.render_page(config, locale, template, **values)
    assert again == fast
