"""In a real browser (Debian's Chromium, through Playwright): an admin signs in with the
API key and sees the activity charts, drawn by the server, with nothing blocked by the
Content-Security-Policy; screenshots are kept as test artefacts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from admin_support import API_KEY, admin_settings, make_history, moment
from browser_support import (  # noqa: F401 - the fixtures this module uses
    LiveSite,
    Shots,
    broken_words,
    browser,
    browser_context_args,
    live,
    page,
    page_width,
    playwright_driver,
    shots,
    sqlite_only,
)
from playwright.sync_api import Browser, ConsoleMessage, Page

from courtois.config import Settings
from courtois.services.context import Context

pytestmark = sqlite_only


@pytest.fixture
def settings() -> Settings:
    """This module's settings: with an API key, so the admin pages are on."""
    return admin_settings()


def test_an_admin_signs_in_and_sees_the_chart(
    ctx: Context,
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    page: Page,  # noqa: F811 - same
    shots: Shots,  # noqa: F811 - same
) -> None:
    history = make_history(ctx)
    live.clock.now = moment(history.first_day + timedelta(days=4))
    refusals: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            refusals.append(message.text)

    page.on("console", note)

    page.goto(live.url("/admin"))
    assert page.url == live.url("/admin/sign-in")
    shots(page, "sign in")
    page.get_by_label("The platform's API key").fill(API_KEY + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("That is not the API key")
    page.get_by_label("The platform's API key").fill(API_KEY)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(live.url("/admin"))
    chart = page.locator("svg#chart-sent")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 500
    assert box["height"] > 200
    # The chart names itself for screen readers, and its points carry the day's numbers.
    assert page.get_by_role("img", name="Emails sent, and messages deferred into a digest")
    first_day = history.first_day.isoformat()
    point = chart.locator(f'circle[data-series="sent"][data-day="{first_day}"]')
    assert point.get_attribute("data-value") == "3"
    assert point.locator("title").text_content() == "Mar 2: Emails sent 3"
    assert page.locator("svg.chart").count() == 4
    shots(page, "activity")

    page.get_by_text("The numbers").first.click()
    assert page.locator('td[data-series="sent"]').first.is_visible()
    shots(page, "numbers")
    page.get_by_role("link", name="Audit ledger").click()
    assert "The ledger holds" in page.locator("#ledger-status").inner_text()
    shots(page, "ledger")
    page.get_by_role("link", name="Recipient lookup").click()
    page.get_by_label("Email address").fill(history.people["a1"])
    page.get_by_role("button", name="Look up").click()
    assert page.url == live.url("/admin/lookup")  # posted: the address is in no URL
    assert page.locator("table.verdicts").count() == 3  # Ana's two decisions, Bruno's one
    shots(page, "lookup")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live.url("/admin/sign-in"))
    assert refusals == []  # nothing on the pages was refused by the policy


def test_on_a_320_px_screen_the_sign_in_and_a_lookup_fit(
    ctx: Context,
    live: LiveSite,  # noqa: F811 - the fixture imported above, as pytest hands it over
    browser: Browser,  # noqa: F811 - same
    shots: Shots,  # noqa: F811 - same
) -> None:
    """The key's field keeps to the screen, and the lookup's facts stack under their names
    instead of leaving every value past the screen's right edge."""
    history = make_history(ctx)
    live.clock.now = moment(history.first_day + timedelta(days=4))
    width = 320
    context = browser.new_context(viewport={"width": width, "height": 640})
    try:
        tab = context.new_page()
        tab.goto(live.url("/admin/sign-in"))
        shots(tab, "sign in")
        assert page_width(tab) <= width
        tab.get_by_label("The platform's API key").fill(API_KEY)
        tab.get_by_role("button", name="Sign in").click()
        tab.wait_for_url(live.url("/admin"))
        tab.goto(live.url("/admin/lookup"))
        tab.get_by_label("Email address").fill(history.people["a2"])
        tab.get_by_role("button", name="Look up").click()
        shots(tab, "lookup")
        assert page_width(tab) <= width
        facts = tab.locator("dl.facts dd")
        assert facts.count() == 5
        for index in range(facts.count()):
            box = facts.nth(index).bounding_box()
            assert box is not None
            assert box["x"] >= 0, (index, box)
            assert box["x"] + box["width"] <= width, (index, box)
        assert broken_words(tab, "dl.facts dt, th, button") == []
    finally:
        context.close()
