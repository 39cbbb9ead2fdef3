"""The seed's story in a real browser: two members, two browser contexts, one hub (R1-R12).

@sophie.tremblay (fr-CA) sells a wool coat; @marc (en) asks about it in the
public comments, she answers and tags him (his bell rings), he makes an offer,
she counters, he accepts; the marketplace reports the order through the
internal API; they talk in the private conversation (typing, "seen"); the
backend reports a tracking number; the link of marc's confirmation e-mail
opens the conversation on its own. A screenshot of each step is written under
``artifacts/screenshots/<test>/`` (``$PARLEY_SCREENSHOTS`` to change it).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import Demo

COAT = "Manteau de laine avec ceinture"
STEP_TIMEOUT = 10_000  # ms any one expectation may wait for the page
MAIL_TIMEOUT = 15.0  # seconds the hub's mail sender may take to write the e-mail
expect.set_options(timeout=STEP_TIMEOUT)


class Story:
    """Screenshots numbered in the order the story takes them, and the pages' errors."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.step = 0
        self.errors: list[str] = []

    async def shot(self, page: Page, name: str) -> None:
        self.step += 1
        await page.screenshot(path=str(self.folder / f"{self.step:02d}-{name}.png"), full_page=True)

    def watch(self, page: Page, who: str) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"{who}: {exc}"))
        page.on("console", lambda msg: self._console(who, msg))

    def _console(self, who: str, msg: Any) -> None:
        if msg.type == "error":  # a CORS refusal, a failed module import, a 404...
            self.errors.append(f"{who}: {msg.text} ({msg.location.get('url')})")


async def open_member(browser: Browser, demo: Demo, story: Story, name: str) -> Page:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    page = await context.new_page()
    story.watch(page, name)
    await page.goto(demo.page_url(name))
    await expect(page.locator(".parley-catalog")).to_be_visible()
    # The token left the address bar as soon as the page read it.
    assert "token" not in page.url
    return page


async def unread(page: Page) -> int:
    return int(await page.locator(".parley-bell").get_attribute("data-unread") or "0")


async def confirmation_link(mail_dir: Path, order_id: str, user_id: str) -> str:
    """The conversation link of a member's confirmation e-mail, once the hub wrote it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + MAIL_TIMEOUT
    pattern = f"*order_confirmation-{order_id}-{user_id}.eml"
    while not list(mail_dir.glob(pattern)):
        assert loop.time() < deadline, f"no e-mail {pattern} in {mail_dir}"
        await asyncio.sleep(0.1)
    path = next(iter(mail_dir.glob(pattern)))
    message: Any = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    found = re.search(r"https?://\S+/open\?t=\S+", text)
    assert found, text
    return found.group(0)


@pytest.mark.parametrize("demo", ["snippet", "bundle"], indirect=True)
async def test_the_seed_story_r1_to_r12(browser: Browser, demo: Demo, screenshots: Path) -> None:
    """Played on a marketplace page of another origin, with the hub's allow-list on.

    ``snippet``: the page imports the widget from the hub as docs/widget.md shows;
    ``bundle``: the page bundles the npm package (esbuild) and serves it itself.
    """
    story = Story(screenshots)
    marc = await open_member(browser, demo, story, "marc")
    sophie = await open_member(browser, demo, story, "sophie.tremblay")

    # Each member's widget speaks their language.
    await expect(marc.locator(".parley-me")).to_have_text("Signed in as @marc")
    await expect(sophie.locator(".parley-me")).to_have_text("Connecté·e : @sophie.tremblay")
    await story.shot(marc, "marc-catalogue")

    # R1: the listing's public comments, under its photo and price.
    await marc.click('[data-listing="demo-coat"]')
    await sophie.click('[data-listing="demo-coat"]')
    await expect(marc.locator(".parley-price")).to_have_text("$80.00")
    await expect(sophie.locator(".parley-price")).to_have_text(re.compile(r"80,00\s\$"))
    await expect(marc.locator(".parley-comment")).to_have_count(2)  # the demo's seeded ones

    # A question, live on the seller's screen.
    question = "Hi! How long is the belt, and can the coat go in the washing machine?"
    await marc.fill(".parley-comments-section textarea", question)
    await marc.press(".parley-comments-section textarea", "Enter")
    await expect(
        sophie.locator(".parley-comment").filter(has_text="How long is the belt")
    ).to_be_visible()
    await story.shot(sophie, "sophie-sees-the-question")

    # R4: the answer tags @marc, picked with the keyboard from the autocomplete; his bell rings.
    before = await unread(marc)
    box = sophie.locator(".parley-comments-section textarea")
    await box.click()
    await box.press_sequentially(
        "La ceinture mesure 90 cm et c'est lavage à la main seulement. Merci @ma"
    )
    await expect(sophie.locator(".parley-suggestion")).to_have_text(["@marc"])
    await expect(box).to_have_attribute("aria-expanded", "true")
    await story.shot(sophie, "sophie-tags-marc-with-autocomplete")
    await box.press("Enter")  # picks the suggestion, does not post
    await expect(box).to_have_value(re.compile(r"Merci @marc $"))
    await box.press_sequentially("!")
    await box.press("Enter")  # posts
    answer = marc.locator(".parley-comment").filter(has_text="La ceinture mesure 90 cm")
    await expect(answer.locator(".parley-mention")).to_have_text("@marc")
    await expect(sophie.locator("[data-testid=comment-notice]")).to_have_text(
        "Le membre identifié a été avisé."
    )
    await expect(marc.locator(".parley-bell")).to_have_attribute("data-unread", str(before + 1))
    await expect(marc.locator("[data-testid=bell-count]")).to_have_text(str(before + 1))
    await story.shot(marc, "marc-sees-the-answer-and-his-bell")

    # R3: she adds photos of the belt; the backend reports it and the room shows it.
    status, body = await demo.hub.api(
        "POST", "/v1/listings/demo-coat/events", {"type": "photos_added", "count": 2}
    )
    assert status == 201, body
    await expect(marc.locator(".parley-comments .parley-system")).to_have_text(
        "The seller added 2 photos."
    )
    await expect(sophie.locator(".parley-comments .parley-system")).to_have_text(
        "Le vendeur a ajouté 2 photos."
    )

    # The bell, with the keyboard: Enter opens it (and marks read), Escape closes it.
    await marc.focus(".parley-bell")
    await marc.keyboard.press("Enter")
    panel = marc.locator(".parley-panel")
    await expect(panel).to_be_visible()
    await expect(panel.locator(".parley-notification").first).to_contain_text(
        "@sophie.tremblay tagged you"
    )
    await story.shot(marc, "marc-opens-the-bell")
    await expect(marc.locator(".parley-bell")).to_have_attribute("data-unread", "0")
    await marc.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(marc.locator(".parley-bell")).to_be_focused()

    # R8: a phone number is masked, and its author is told why.
    await marc.fill(".parley-comments-section textarea", "Or text me at 514-555-0199 if easier")
    await marc.press(".parley-comments-section textarea", "Enter")
    await expect(marc.locator("[data-testid=comment-notice]")).to_contain_text(
        "We hid a phone number in your message"
    )
    masked = sophie.locator(".parley-comment").filter(has_text="Or text me at")
    await expect(masked).to_contain_text("•••")
    await expect(masked.locator(".parley-masked")).to_have_text("Coordonnées masquées")
    await story.shot(marc, "marc-phone-number-masked")

    # Members' words are text, never markup.
    await marc.fill(
        ".parley-comments-section textarea", '<img src=x onerror="window.__owned=1"> <b>bold?</b>'
    )
    await marc.press(".parley-comments-section textarea", "Enter")
    markup = sophie.locator(".parley-comment").filter(has_text="<img src=x")
    await expect(markup).to_be_visible()
    assert await markup.locator("img, b").count() == 0
    assert await sophie.evaluate("window.__owned") is None

    # R5: "Make an offer" next to "Buy" (the seller switched offers on).
    await expect(sophie.locator("[data-testid=offers-switch]")).to_be_checked()
    await expect(sophie.locator("[data-action=make-offer]")).to_be_hidden()  # not on her own item
    buttons = marc.locator(".parley-actions .parley-buttons button")
    await expect(buttons).to_have_text(["Buy", "Make an offer"])
    await marc.click("[data-action=make-offer]")
    await marc.fill(".parley-offer-form input", "60")
    await marc.press(".parley-offer-form input", "Enter")
    marc_offer = marc.locator(".parley-offer").first
    await expect(marc_offer).to_have_attribute("data-state", "open")
    await expect(marc_offer.locator("[data-testid=offer-state]")).to_have_text(
        "Open · Waiting for the seller's answer"
    )
    # R7: a countdown to the 72 hours.
    await expect(marc_offer.locator(".parley-countdown")).to_have_text(
        re.compile(r"Expires in 7[12] h \d+ min \d+ s")
    )
    sophie_offer = sophie.locator(".parley-offer").first
    await expect(sophie_offer.locator("[data-testid=offer-state]")).to_have_text(
        "En cours · À vous de répondre"
    )
    await story.shot(sophie, "sophie-receives-the-offer")

    # She counters; it is his turn; he accepts.
    await sophie_offer.locator("[data-action=counter]").click()
    await sophie_offer.locator(".parley-counter-form input").fill("72")
    await sophie_offer.locator(".parley-counter-form input").press("Enter")
    await expect(marc_offer.locator("[data-testid=offer-state]")).to_have_text(
        "Open · Your turn to answer"
    )
    await expect(marc_offer.locator(".parley-offer-history li")).to_have_text(
        ["Buyer: $60.00", "Seller: $72.00"]
    )
    await story.shot(marc, "marc-receives-the-counter-offer")
    await marc_offer.locator("[data-action=accept]").click()
    await expect(marc_offer).to_have_attribute("data-state", "accepted")
    await expect(sophie_offer).to_have_attribute("data-state", "accepted")
    await expect(sophie_offer.locator(".parley-agreed")).to_contain_text("Prix convenu")
    await story.shot(sophie, "offer-accepted")

    # R6: offers to the likers of another item, the 10 % rule explained before sending:
    # first to one liker ("Send offer" next to her name), then to all ("Global offer").
    before = await unread(marc)
    await sophie.click("[data-action=back]")
    await sophie.click('[data-listing="demo-lamp"]')
    await sophie.click("[data-action=likers]")
    await expect(sophie.locator(".parley-liker-name")).to_have_count(3)
    await sophie.click('[data-user="u-amelie"] [data-action=send-offer]')
    await expect(sophie.locator("[data-testid=ten-percent-rule]")).to_contain_text(
        re.compile(r"au moins 10 %.*40,50\s\$")
    )
    await sophie.fill(".parley-likers-form input", "40")
    await sophie.press(".parley-likers-form input", "Enter")
    tools_status = sophie.locator(".parley-seller-tools [role=status]")
    await expect(tools_status).to_have_text("Offre envoyée à 1 membre.")
    await expect(
        sophie.locator('[data-user="u-amelie"] [data-action=send-offer]')
    ).to_be_disabled()  # she has an offer open now
    await sophie.click("[data-action=global-offer]")
    await sophie.fill(".parley-likers-form input", "42")
    await sophie.press(".parley-likers-form input", "Enter")
    await expect(sophie.locator(".parley-likers-form .parley-error")).to_contain_text(
        "Réduction insuffisante : proposez au plus 40,50"
    )
    await story.shot(sophie, "sophie-likers-ten-percent-rule")
    await sophie.fill(".parley-likers-form input", "40")
    await sophie.press(".parley-likers-form input", "Enter")
    await expect(tools_status).to_have_text(
        "Offre envoyée à 2 membres. @Amélie : a déjà une offre en cours"
    )
    await expect(marc.locator(".parley-bell")).to_have_attribute("data-unread", str(before + 1))
    await story.shot(sophie, "sophie-sent-a-global-offer")

    # R2: nothing private before the order: the hub refuses, the widget says why.
    await marc.evaluate("window.parleyWidget.openConversation('order:story-2001', {})")
    await expect(marc.locator(".parley-main > [role=alert]")).to_have_text(
        "A private conversation opens only once the item is bought."
    )
    await story.shot(marc, "marc-no-private-conversation-before-the-order")

    # R9: the marketplace reports the order; its private room opens at once.
    status, body = await demo.hub.api(
        "PUT",
        "/v1/orders/story-2001",
        {"listing_id": "demo-coat", "buyer_id": "u-marc", "seller_id": "u-sophie"},
    )
    assert status == 201, body

    # R10: "My orders", Purchases and Sales, a chat icon over each item photo.
    await marc.click("[data-action=my-orders]")
    await expect(marc.locator('[role=tab][data-role="purchases"]')).to_have_attribute(
        "aria-selected", "true"
    )
    marc_order = marc.locator('[data-order="story-2001"]')
    await expect(marc_order).to_contain_text("Manteau de laine avec ceinture")
    await story.shot(marc, "marc-my-orders")
    await marc_order.locator("[data-action=open-chat]").click()
    await sophie.click("[data-action=my-orders]")
    await sophie.click('[role=tab][data-role="sales"]')
    sophie_order = sophie.locator('[data-order="story-2001"]')
    await expect(sophie_order.locator("[data-action=open-chat]")).to_have_attribute(
        "aria-label", re.compile(r"Ouvrir la conversation avec @marc")
    )
    await story.shot(sophie, "sophie-my-orders-sales")
    await sophie_order.locator("[data-action=open-chat]").click()

    # R12 in the conversation, and the room's first (system) message.
    await expect(marc.locator("[data-testid=disclaimer]")).to_have_text(
        "Transactions made outside the platform are not covered by buyer protection."
    )
    await expect(sophie.locator("[data-testid=disclaimer]")).to_contain_text(
        "ne sont pas couvertes par la protection des acheteurs"
    )
    await expect(marc.locator('.parley-system[data-type="order_opened"]')).to_contain_text(
        "Order confirmed"
    )
    await expect(marc.locator("[data-testid=presence]")).to_have_text("online")

    # Typing, then the message, then "seen".
    marc_box = marc.locator(".parley-conversation textarea")
    await marc_box.press_sequentially("Hi Sophie! Please ship to 1234 rue Saint-Denis, Montréal")
    await expect(sophie.locator("[data-testid=typing]")).to_have_text("@marc écrit…")
    await story.shot(sophie, "sophie-sees-marc-typing")
    await marc_box.press("Enter")
    await expect(
        sophie.locator(".parley-message").filter(has_text="1234 rue Saint-Denis")
    ).to_be_visible()
    await expect(sophie.locator("[data-testid=typing]")).to_have_text("")
    await expect(marc.locator("[data-testid=seen]")).to_have_text("Seen")
    await story.shot(marc, "marc-message-seen")
    sophie_box = sophie.locator(".parley-conversation textarea")
    await sophie_box.fill("Parfait, je l'envoie demain matin.")
    await sophie_box.press("Enter")
    await expect(
        marc.locator(".parley-message").filter(has_text="je l'envoie demain")
    ).to_be_visible()
    await expect(sophie.locator("[data-testid=seen]")).to_have_text("Vu")

    # A tracking number, through the API: a status message in each member's language.
    status, body = await demo.hub.api(
        "POST",
        "/v1/orders/story-2001/status",
        {"status": "shipped", "carrier": "canada_post", "tracking_number": "7023210000099999"},
    )
    assert status == 200, body
    await expect(marc.locator('.parley-system[data-type="order_status"]')).to_contain_text(
        "The order has shipped with Canada Post. Tracking number: 7023210000099999."
    )
    await expect(sophie.locator('.parley-system[data-type="order_status"]')).to_contain_text(
        "La commande a été expédiée par Postes Canada. Numéro de suivi : 7023210000099999."
    )
    await expect(marc.locator(".parley-track")).to_have_attribute(
        "href", re.compile(r"^https://www\.canadapost-postescanada\.ca/.*7023210000099999")
    )
    await story.shot(marc, "marc-tracking-number")
    await story.shot(sophie, "sophie-tracking-number")

    # The language is switchable: marc reads the same conversation in French.
    await marc.select_option("[data-testid=language]", "fr-CA")
    await expect(marc.locator("[data-testid=disclaimer]")).to_contain_text("ne sont pas couvertes")
    await expect(marc.locator('.parley-system[data-type="order_status"]')).to_contain_text(
        "La commande a été expédiée par Postes Canada"
    )
    await story.shot(marc, "marc-switches-to-french")
    await marc.select_option("[data-testid=language]", "en")
    await expect(marc.locator("[data-testid=disclaimer]")).to_contain_text("not covered")

    # R11: the confirmation e-mail's link opens the conversation by itself.
    link = await confirmation_link(demo.mail_dir, "story-2001", "u-marc")
    mailbox = await browser.new_context(viewport={"width": 900, "height": 900})
    landing = await mailbox.new_page()
    story.watch(landing, "landing")
    response = await landing.goto(link)
    assert response is not None and response.status == 200
    conversation = landing.locator(".parley-conversation")
    await expect(
        conversation.locator(".parley-message").filter(has_text="je l'envoie demain")
    ).to_be_visible()
    # The page is the widget, styled, naming the item and the other party, said once.
    await expect(conversation.locator("h2")).to_contain_text(COAT)
    await expect(conversation.locator(".parley-counterpart")).to_contain_text("@sophie.tremblay")
    await expect(landing.locator("[data-testid=disclaimer]")).to_have_count(1)
    await expect(landing.get_by_text("are not covered by buyer protection")).to_have_count(1)
    await expect(landing.locator("[data-testid=disclaimer]")).to_be_visible()
    await expect(landing.locator("[data-parley-placeholder]")).to_have_count(0)  # no "Opening…"
    await expect(landing.get_by_text("Opening your private conversation")).to_have_count(0)
    await expect(landing.locator(".parley-bell")).to_have_count(0)  # one conversation only
    await expect(landing.locator("[data-action=back]")).to_have_count(0)
    background = await landing.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(244, 244, 245)", "the widget's style sheet is not applied"
    await conversation.locator("textarea").fill("Thanks, opened from the e-mail!")
    await conversation.locator("textarea").press("Enter")
    await expect(
        sophie.locator(".parley-message").filter(has_text="opened from the e-mail")
    ).to_be_visible()
    await story.shot(landing, "email-link-opens-the-conversation")

    assert not story.errors, "\n".join(story.errors)
