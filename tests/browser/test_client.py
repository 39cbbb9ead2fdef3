"""The JavaScript client (/parley.js) in Chromium against a real hub.

Requests and replies, events as listeners and as an async iterator, typed
errors, and what a dropped connection must not lose: the client reconnects,
resumes each room and the inbox with ``since``, and a ``post`` whose reply was
lost is retried with the same ``client_msg_id`` and stored once.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Browser, Page

from tests.browser.conftest import Demo


async def client_page(browser: Browser, demo: Demo) -> tuple[Page, list[str]]:
    """A marketplace's page, on its own origin, that imports the hub's ``/parley.js``."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    await page.goto(f"{demo.pages_origin}/blank.html")
    load = "async (hub) => { window.P = await import(`${hub}/parley.js`); }"
    await page.evaluate(load, demo.hub_origin)
    return page, errors


def ws_url(demo: Demo) -> str:
    return demo.ws_url


async def test_requests_events_and_typed_errors(browser: Browser, demo: Demo) -> None:
    page, errors = await client_page(browser, demo)
    out: dict[str, Any] = await page.evaluate(
        """async ({url, token}) => {
        const { ParleyClient, ParleyError } = window.P;
        const client = await ParleyClient.connect(url, token);
        const out = { user: client.user, state: client.state };
        const room = "listing:demo-boots";
        const joined = await client.subscribe(room);
        const events = client.events({ room });
        const heard = [];
        client.on("message", (e) => heard.push(e.seq));
        out.reply = await client.post(room, "Still available? 👀 @marc");
        out.event = (await events.next()).value;
        out.heard = heard;
        out.positions = Object.fromEntries(client.positions);
        out.joinedSeq = joined.seq;
        const failures = {};
        for (const [name, call] of Object.entries({
          order: () => client.subscribe("order:never-reported"),
          offers: () => client.offerMake("demo-lamp", 100),
          unknown: () => client.request("no_such_op"),
        })) {
          try { await call(); failures[name] = "no error"; }
          catch (e) {
            failures[name] = { code: e.code, parley: e instanceof ParleyError, message: e.message };
          }
        }
        out.failures = failures;
        const page = await client.history(room, { limit: 5 });
        out.history = page.messages.map((m) => m.text);
        await events.return();
        client.close();
        out.closedState = client.state;
        try { await ParleyClient.connect(url, "not-a-token"); out.badToken = "connected?"; }
        catch (e) { out.badToken = e.code; }
        return out;
    }""",
        {"url": ws_url(demo), "token": demo.hub.token("u-jordan", "jordan_k")},
    )
    assert out["user"]["name"] == "jordan_k"
    assert out["state"] == "open"
    assert out["event"]["event"] == "message"
    assert out["event"]["seq"] == out["reply"]["seq"] == out["joinedSeq"] + 1
    assert out["heard"] == [out["reply"]["seq"]]
    assert out["reply"]["notified"] == 1  # @marc
    assert out["positions"]["listing:demo-boots"]["seq"] == out["reply"]["seq"]
    assert out["history"][0] == "Still available? 👀 @marc"
    # R2, as a typed error with the hub's stable code.
    assert out["failures"]["order"]["code"] == "order_required"
    assert out["failures"]["order"]["parley"] is True
    assert out["failures"]["offers"]["code"] == "offers_disabled"
    assert out["failures"]["unknown"]["code"] == "unknown_op"
    assert out["closedState"] == "closed"
    assert out["badToken"] == "unauthorized"
    assert not errors


async def test_a_dropped_connection_resumes_rooms_and_inbox(browser: Browser, demo: Demo) -> None:
    page, errors = await client_page(browser, demo)
    out: dict[str, Any] = await page.evaluate(
        """async ({url, token, other}) => {
        const { ParleyClient } = window.P;
        const room = "listing:demo-boots";
        // A long first backoff: the other member posts while this one is away.
        const options = { minBackoff: 1500, maxBackoff: 3000 };
        const client = await ParleyClient.connect(url, token, options);
        await client.subscribe(room);
        const seen = [];
        const states = [];
        client.on("message", (e) => seen.push(e.text));
        client.on("notification", (e) => seen.push(`notification:${e.notification.kind}`));
        client.on("state", (e) => states.push(e.state));
        const resumed = client.nextEvent("resumed", 10000);
        client._ws.close(3000, "test: the network dropped");
        const poster = await ParleyClient.connect(url, other);
        await poster.post(room, "Posted while @marc was away");
        await resumed;
        const isAfter = (e) => e.event === "message" && e.text.startsWith("Posted after");
        const after = client.nextEvent(isAfter, 5000);
        await poster.post(room, "Posted after he came back");
        await after;
        poster.close();
        client.close();
        return { seen, states };
    }""",
        {
            "url": ws_url(demo),
            "token": demo.hub.token("u-marc", "marc"),
            "other": demo.hub.token("u-sophie", "sophie.tremblay", locale="fr-CA"),
        },
    )
    # What was missed came once, before what followed: the inbox's mention with connect,
    # then the room's message with its subscribe.
    assert out["seen"] == [
        "notification:mention",
        "Posted while @marc was away",
        "Posted after he came back",
    ], out
    assert out["states"][:2] == ["reconnecting", "open"]
    assert not errors


async def test_a_post_whose_reply_was_lost_is_stored_once(browser: Browser, demo: Demo) -> None:
    page, errors = await client_page(browser, demo)
    out: dict[str, Any] = await page.evaluate(
        """async ({url, token}) => {
        const { ParleyClient } = window.P;
        const room = "listing:demo-boots";
        const client = await ParleyClient.connect(url, token, { minBackoff: 100, maxBackoff: 400 });
        const socket = client._ws;
        // The hub stores the post and replies; the network drops the reply, then the socket.
        const deliver = socket.onmessage;
        let dropped = null;
        socket.onmessage = (message) => {
          const frame = JSON.parse(message.data);
          if (dropped === null && frame.result && frame.result.seq) {
            dropped = frame.result;
            socket.close(3000, "test: dropped with the reply");
            return;
          }
          deliver(message);
        };
        const reply = await client.post(room, "Exactly once, please", { clientMsgId: "once-1" });
        const page = await client.history(room, { limit: 20 });
        client.close();
        const stored = page.messages.filter((m) => m.text === "Exactly once, please");
        return { reply, dropped, stored: stored.map((m) => m.seq) };
    }""",
        {"url": ws_url(demo), "token": demo.hub.token("u-amelie", "Amélie", locale="fr-CA")},
    )
    # The first try was stored (its reply was lost): the retry answers it, not a new copy.
    assert out["dropped"] is not None and out["dropped"]["duplicate"] is False, out
    assert out["reply"]["duplicate"] is True, out
    assert out["reply"]["seq"] == out["dropped"]["seq"]
    assert out["stored"] == [out["reply"]["seq"]], out
    assert not errors
