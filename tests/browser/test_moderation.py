"""Reporting, blocking and a moderator's removal in a real browser, on a marketplace
page of another origin: @sophie.tremblay (fr-CA) reports @marc's (en) comment with
the widget, a moderator removes it through the internal API, both pages show the
tombstone live, and marc reads the statement of reasons in his language. Then
sophie blocks marc: his comments hide on her page, and come back when she unblocks.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Demo
from tests.browser.test_seed_story import Story, open_member

STATEMENT = {
    "fr-CA": "Votre commentaire a été retiré : il invitait à payer hors de la plateforme.",
    "en": "Your comment was removed: it asked for a payment outside the platform.",
}
OFF_PLATFORM = "Pay me by e-transfer instead and I'll ship it today"


async def marc_comments_on_the_coat(
    browser: Browser, demo: Demo, story: Story, text: str
) -> tuple[Page, Page]:
    """marc and sophie on the coat's page; marc's comment, seen on hers."""
    marc = await open_member(browser, demo, story, "marc")
    sophie = await open_member(browser, demo, story, "sophie.tremblay")
    await marc.click('[data-listing="demo-coat"]')
    await sophie.click('[data-listing="demo-coat"]')
    await marc.fill(".parley-comments-section textarea", text)
    await marc.press(".parley-comments-section textarea", "Enter")
    await expect(sophie.locator(".parley-comment").filter(has_text=text)).to_be_visible()
    return marc, sophie


async def test_a_reported_comment_removed_by_a_moderator_is_a_tombstone_on_every_page(
    browser: Browser, demo: Demo, screenshots: Path
) -> None:
    story = Story(screenshots)
    marc, sophie = await marc_comments_on_the_coat(browser, demo, story, OFF_PLATFORM)
    reported = sophie.locator(".parley-comment").filter(has_text="e-transfer")
    # Nobody reports their own words: marc's comment has no "Report" on his page.
    own = marc.locator(".parley-comment").filter(has_text="e-transfer")
    await expect(own.locator("[data-action=report]")).to_have_count(0)
    seq = await own.get_attribute("data-seq")
    own = marc.locator(f'.parley-comment[data-seq="{seq}"]')  # its text is about to go

    # sophie reports it: a reason picked from the list, a note, a confirmation.
    await reported.locator("[data-action=report]").click()
    await expect(reported.locator(".parley-report-form")).to_be_visible()
    await expect(reported.locator(".parley-report-reason option")).to_have_text(
        [
            "Pourriel",
            "Arnaque",
            "Transaction hors de la plateforme",
            "Harcèlement",
            "Contenu inapproprié",
            "Autre",
        ]
    )
    await reported.get_by_label("Motif").select_option("off_platform")
    await reported.get_by_label("Précisions (facultatif)").fill("Il demande un virement Interac.")
    await story.shot(sophie, "sophie-reports-marcs-comment")
    await reported.locator("[data-action=send-report]").click()
    await expect(reported.locator("[data-testid=report-status]")).to_have_text(
        re.compile(r"^Merci : la modération va examiner ce commentaire")
    )
    await expect(reported.locator(".parley-report-form")).to_be_hidden()

    # The moderator reads the queue and removes it, with a statement of reasons.
    status, queue = await demo.hub.api("GET", "/v1/reports?state=open")
    assert status == 200, queue
    [item] = queue["reports"]
    assert item["message"]["text"] == OFF_PLATFORM
    assert item["reasons"] == {"off_platform": 1}
    status, resolved = await demo.hub.api(
        "POST",
        f"/v1/reports/{item['id']}/resolve",
        {"action": "remove_message", "statement": STATEMENT},
    )
    assert status == 200, resolved

    # Both pages show the tombstone live, each in its member's language.
    await expect(own.locator(".parley-text")).to_have_text("Comment removed by moderation.")
    await expect(own).to_have_class(re.compile(r"\bparley-removed\b"))
    gone = sophie.locator(f'.parley-comment.parley-removed[data-seq="{seq}"]')
    await expect(gone.locator(".parley-text")).to_have_text("Commentaire retiré par la modération.")
    await expect(sophie.get_by_text("e-transfer")).to_have_count(0)
    await story.shot(sophie, "sophie-sees-the-tombstone")

    # marc reads why, in English, in his notifications.
    await expect(marc.locator(".parley-bell")).not_to_have_attribute("data-unread", "0")
    await marc.click(".parley-bell")
    notice = marc.locator('.parley-notification[data-kind="moderation"]')
    await expect(notice).to_have_text(
        re.compile(r"Your comment was removed by moderation \(A deal outside the platform\): "
                   + re.escape(STATEMENT["en"]))
    )  # fmt: skip
    await story.shot(marc, "marc-reads-the-statement-of-reasons")
    assert story.errors == []


async def test_a_blocked_members_comments_hide_until_unblocked(
    browser: Browser, demo: Demo, screenshots: Path
) -> None:
    story = Story(screenshots)
    _, sophie = await marc_comments_on_the_coat(browser, demo, story, "Is the belt included?")
    his = sophie.locator(".parley-comment").filter(has_text="Is the belt included?")
    await his.get_by_role("button", name="Bloquer @marc").click()
    hidden = sophie.locator('.parley-comment.parley-blocked[data-author="u-marc"]')
    await expect(hidden.locator(".parley-text")).to_have_text(
        "Commentaire masqué : vous avez bloqué @marc."
    )
    await expect(sophie.get_by_text("Is the belt included?")).to_have_count(0)
    await story.shot(sophie, "sophie-blocked-marc")
    # The block is kept by the hub: a page opened afresh hides his comments too.
    again = await open_member(browser, demo, story, "sophie.tremblay")
    await again.click('[data-listing="demo-coat"]')
    hidden = again.locator('.parley-comment.parley-blocked[data-author="u-marc"]')
    await expect(hidden).to_be_visible()
    await hidden.get_by_role("button", name="Débloquer @marc").click()
    await expect(again.locator(".parley-comment").filter(has_text="Is the belt")).to_be_visible()
    assert story.errors == []
