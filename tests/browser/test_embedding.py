"""The widget as integrators embed it: failures a member can see, a mobile app's WebView, the demo.

Pages come from the marketplace's own origin (a static server that adds
nothing), with the hub's allow-list on. Where the network must fail, a TCP
relay between the browser and the hub is cut: the browser sees its socket
dropped, as a phone does when the system suspends an app.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, expect

from parley.server.core.clock import FakeClock
from parley.server.links import Links
from tests.browser.conftest import Demo
from tests.support.cuttable_link import CuttableLink

STEP_TIMEOUT = 10_000  # ms
RESUMED_WITHIN = 4_000  # ms: back in the foreground, the conversation is current by then
PHONE = {"width": 360, "height": 740}
ORDER = "demo-1001"  # the demo's order: @marc bought @sophie.tremblay's chair
expect.set_options(timeout=STEP_TIMEOUT)


async def marketplace_page(browser: Browser, demo: Demo, **context: Any) -> tuple[Page, list[str]]:
    """An empty page of the marketplace's origin, with the hub's widget module imported."""
    page = await (await browser.new_context(**context)).new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{demo.pages_origin}/blank.html")
    await page.evaluate(
        """async (hub) => {
        window.W = await import(`${hub}/widget/widget.js`);
        const sheet = Object.assign(document.createElement("link"),
          { rel: "stylesheet", href: `${hub}/widget/widget.css` });
        document.head.append(sheet);
        document.body.append(Object.assign(document.createElement("div"), { id: "chat" }));
    }""",
        demo.hub_origin,
    )
    return page, errors


START = """async ({url, token}) => {
    try {
      await window.W.ParleyWidget.start(document.getElementById("chat"), { url, token });
      return null;
    } catch (err) {
      return { code: err.code, problem: err.problem };
    }
}"""


async def test_an_expired_token_is_said_in_the_members_language(
    browser: Browser, demo: Demo
) -> None:
    page, errors = await marketplace_page(browser, demo)
    token = demo.token("sophie.tremblay", ttl=-60)
    failed = await page.evaluate(START, {"url": demo.ws_url, "token": token})
    assert failed == {"code": "unauthorized", "problem": "expired"}
    alert = page.get_by_role("alert")
    await expect(alert).to_have_attribute("lang", "fr-CA")
    await expect(alert).to_contain_text("Votre session a expiré.")
    await expect(alert).to_contain_text("Rechargez la page")
    await expect(page.locator("[data-action=retry]")).to_have_count(0)  # retrying cannot help
    assert not errors


async def test_an_unreachable_hub_says_so_and_try_again_starts_the_widget(
    browser: Browser, demo: Demo, screenshots: Path
) -> None:
    with CuttableLink(demo.hub.app.ws_port) as link:
        page, errors = await marketplace_page(browser, demo)
        link.cut_reset()
        failed = await page.evaluate(
            START, {"url": f"ws://127.0.0.1:{link.port}/", "token": demo.token("marc")}
        )
        assert failed is not None and failed["problem"] == "offline", failed
        alert = page.get_by_role("alert")
        await expect(alert).to_contain_text("The chat service cannot be reached.")
        await expect(alert).to_contain_text("Check your Internet connection")
        await page.screenshot(path=str(screenshots / "01-offline.png"))
        link.heal()
        await page.click("[data-action=retry]")
        # Without a listing or a room to open (and no showCatalog): "My orders".
        await expect(page.locator(".parley-orders-view")).to_be_visible()
        await expect(page.get_by_role("alert")).to_have_count(0)
        await expect(page.locator("[data-action=back]")).to_have_count(0)  # nowhere to go back
        assert not errors


async def test_the_hub_refuses_an_origin_that_is_not_allowed(browser: Browser, demo: Demo) -> None:
    """The same page from an origin the allow-list does not name: no module, no socket."""
    other = demo.pages_origin.replace("127.0.0.1", "localhost")  # another origin, same server
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{other}/blank.html")
    loaded = await page.evaluate(
        """async (hub) => {
        try { await import(`${hub}/widget/widget.js`); return "loaded"; }
        catch (err) { return "refused"; }
    }""",
        demo.hub_origin,
    )
    assert loaded == "refused"
    opened = await page.evaluate(
        """(url) => new Promise((resolve) => {
        const ws = new WebSocket(url, ["parley.v1.json"]);
        ws.onopen = () => resolve("open");
        ws.onclose = (e) => resolve(`closed ${e.code}`);
    })""",
        demo.ws_url,
    )
    assert opened == "closed 1006"  # the handshake got 403


async def test_the_demo_page_of_the_hub_works_with_the_allow_list_on(
    browser: Browser, demo: Demo
) -> None:
    page = await (await browser.new_context()).new_page()
    errors: list[str] = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"{demo.hub_origin}/demo#token={demo.token('jordan_k')}")
    await expect(page.locator(".parley-catalog")).to_be_visible()
    await page.click('[data-listing="demo-boots"]')
    await expect(page.locator("[data-action=back]")).to_be_visible()  # back to the catalogue
    assert not errors, errors


async def test_in_a_mobile_apps_webview_the_conversation_resumes_after_the_background(
    browser: Browser, demo: Demo, screenshots: Path
) -> None:
    """The host app hands in the token; suspended, its socket dropped; resumed, nothing lost."""
    sophie = await demo.hub.client("u-sophie", "sophie.tremblay", locale="fr-CA")
    room = f"order:{ORDER}"
    with CuttableLink(demo.hub.app.ws_port) as link:
        context = await browser.new_context(
            viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True
        )
        # What the app injects before the page's scripts run (a WKUserScript, a JS interface).
        host = {
            "hubUrl": f"ws://127.0.0.1:{link.port}/",
            "room": room,
            "token": demo.token("marc"),
            "info": {
                "title": "Chaise",
                "counterpart": {"id": "u-sophie", "name": "sophie.tremblay"},
            },
        }
        await context.add_init_script(
            script=f"""const host = {json.dumps(host)};
            window.ParleyHost = {{ ...host, calls: 0,
              token() {{ this.calls += 1; return host.token; }} }};"""
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        await page.goto(f"{demo.pages_origin}/app.html")
        messages = page.locator(".parley-conversation .parley-message")
        await expect(messages.filter(has_text="je l'envoie demain")).to_be_visible()
        await expect(page.locator(".parley-counterpart")).to_contain_text("@sophie")
        # A phone's screen: nothing wider than the viewport, the composer within reach.
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width} px wide on a 360 px screen"
        await expect(page.locator(".parley-compose")).to_be_in_viewport()
        await page.screenshot(path=str(screenshots / "01-phone-360x740.png"))

        # The app goes to the background: the page is frozen and the system drops its socket.
        cdp = await context.new_cdp_session(page)
        await cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
        link.cut_reset()
        missed = [f"Pendant ton absence {i}" for i in range(3)]
        for text in missed:
            await sophie.post(room, text)
        link.heal()
        # Back in the foreground: the app tells the page, as its onResume would
        # (WebViews do not reliably fire visibilitychange), and the client reconnects
        # at once, not after its long backoff.
        await cdp.send("Page.setWebLifecycleState", {"state": "active"})
        await page.evaluate("window.parleyWidget.client.resumeNow()")
        for text in missed:
            await expect(messages.filter(has_text=text)).to_have_count(1, timeout=RESUMED_WITHIN)
        texts = await messages.locator(".parley-text").all_inner_texts()
        order = [texts.index(t) for t in missed]
        assert order == sorted(order), texts  # in the order they were sent
        await page.locator(".parley-compose").fill("Merci, bien reçu !")
        await page.locator(".parley-compose").press("Enter")
        await expect(messages.filter(has_text=re.compile("bien reçu"))).to_have_count(1)
        stored = await sophie.history(room, limit=50)
        texts = [m["text"] for m in stored["messages"]]
        assert texts.count("Merci, bien reçu !") == 1, texts
        assert all(texts.count(t) == 1 for t in missed), texts
        calls = await page.evaluate("window.ParleyHost.calls")
        assert calls >= 2, "the token was not asked of the app again on reconnect"
        await page.screenshot(path=str(screenshots / "02-phone-resumed.png"))
        assert not errors, errors


async def test_a_page_back_online_reconnects_without_waiting_out_its_backoff(
    browser: Browser, demo: Demo
) -> None:
    """``online`` (and ``visibilitychange``, ``pageshow``, ``resume``) end the backoff."""
    with CuttableLink(demo.hub.app.ws_port) as link:
        page, errors = await marketplace_page(browser, demo)
        await page.evaluate(
            """async ({hub, url, token}) => {
            const { ParleyClient } = await import(`${hub}/parley.js`);
            const slow = { minBackoff: 30000, maxBackoff: 60000 };
            window.client = await ParleyClient.connect(url, token, slow);
        }""",
            {
                "hub": demo.hub_origin,
                "url": f"ws://127.0.0.1:{link.port}/",
                "token": demo.token("jordan_k"),
            },
        )
        link.cut_reset()
        await page.wait_for_function("window.client.state === 'reconnecting'")
        link.heal()
        await page.evaluate("window.dispatchEvent(new Event('online'))")
        await page.wait_for_function("window.client.state === 'open'", timeout=RESUMED_WITHIN)
        assert not errors


async def test_an_expired_email_link_says_so_in_the_members_language(
    browser: Browser, demo: Demo, screenshots: Path
) -> None:
    sent = FakeClock(time.time() - 3 * demo.hub.config.link_ttl_hours * 3600)
    link = Links(demo.hub.config, sent).url(ORDER, "u-sophie")  # sent long ago
    page = await (await browser.new_context(viewport=PHONE)).new_page()
    response = await page.goto(link)
    assert response is not None and response.status == 410
    await expect(page.locator("h1")).to_have_text("Ce lien a expiré.")
    await expect(page.get_by_text("Mes commandes")).to_be_visible()
    await expect(page.get_by_role("link", name="Ouvrir l'application")).to_be_visible()
    await expect(page.get_by_text("This link has expired.")).to_have_count(0)
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(244, 244, 245)", "the widget's style sheet is not applied"
    await page.screenshot(path=str(screenshots / "01-expired-link.png"))


async def test_r2_a_deleted_mention_leaves_the_bell_live(browser: Browser, demo: Demo) -> None:
    """Tagged, then the comment deleted at once: the words leave the member's bell too."""
    page = await (await browser.new_context()).new_page()
    await page.goto(demo.page_url("marc"))
    bell = page.locator(".parley-bell")
    await expect(page.locator(".parley-catalog")).to_be_visible()
    before = int(await bell.get_attribute("data-unread") or "0")
    sophie = await demo.hub.client("u-sophie", "sophie.tremblay", locale="fr-CA")
    reply = await sophie.post("listing:demo-boots", "@marc meet me at the metro, bring cash")
    await expect(bell).to_have_attribute("data-unread", str(before + 1))
    await sophie.delete("listing:demo-boots", reply["seq"])
    await expect(bell).to_have_attribute("data-unread", str(before))
    await bell.click()
    await expect(page.locator(".parley-notification-list")).to_be_visible()
    await expect(page.get_by_text("bring cash")).to_have_count(0)
