"""The order confirmation e-mail (R11, R12), end to end on real sockets.

A real SMTP server (aiosmtpd) receives; messages are parsed with the standard
library's ``email`` package. The links are followed over HTTP on the hub's
public port, and the session they give connects over WebSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import html
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiosmtpd.smtp import SMTP
from websockets.asyncio.client import connect as ws_connect

from parley.client import ParleyClient
from parley.protocol.codec import JSON_SUBPROTOCOL
from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.clock import FakeClock
from parley.server.core.mail_words import OFF_PLATFORM_DISCLAIMER_FR
from parley.server.core.model import Listing, ListingId, Money, Order, OrderId, User, UserId
from parley.server.core.roomevents import OFF_PLATFORM_DISCLAIMER
from parley.server.links import SESSION_TTL_S, Links
from parley.server.mail.compose import compose_order_mail
from parley.server.mail.outbox import MAIL_ROOM
from parley.server.mail.reminders import REMINDER_ROOM
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.front_door import FrontDoor

TITLE = 'Wool <coat> & "hat"'
PHOTO = "https://img.example/coat.jpg"
BUYER_ADDRESS = "amelie@example.com"
SELLER_ADDRESS = "bob@example.com"
LINK_RE = re.compile(r"https?://127\.0\.0\.1:\d+/open\?t=[A-Za-z0-9_.%-]+")
WAIT = 15.0  # seconds an awaited mail may take at most


@dataclass
class SmtpSink:
    """aiosmtpd's handler: keeps what it accepts; answers 451 to the first ``refuse``."""

    refuse: int = 0
    refused: int = 0
    port: int = 0
    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 Try again later"
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 2.0.0 Accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for rcpt, m in self.received if address in rcpt]


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpSink]:
    """aiosmtpd's SMTP server on port 0, on the test's event loop."""
    sink = SmtpSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(sink), "127.0.0.1", 0)
    sink.port = server.sockets[0].getsockname()[1]
    try:
        yield sink
    finally:
        server.close()
        await server.wait_closed()


async def eventually(check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Wait (bounded) until ``check()`` holds: for something to arrive, not for time."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def mail_hub(store: str, clock: FakeClock, **settings: Any) -> AsyncIterator[RunningHub]:
    """A hub whose links name its public address: a front door on a port of its own."""
    door = FrontDoor()
    await door.open()
    try:
        hub = await start_hub(store, clock=clock, public_url=door.url, **settings)
        door.target = hub.app.ws_port
        hub.app.mail.poll_interval = 0.05
        hub.app.mail.retry_base = 0.01
        try:
            yield hub
        finally:
            await stop_hub(hub)
    finally:
        await door.close()


def smtp_settings(sink: SmtpSink) -> dict[str, Any]:
    return {"mail_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": sink.port}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def hub(sqlite_url: str, clock: FakeClock, smtp: SmtpSink) -> AsyncIterator[RunningHub]:
    async with mail_hub(sqlite_url, clock, **smtp_settings(smtp)) as running:
        yield running


async def members_and_order(
    hub: RunningHub, order_id: str = "o1", listing_id: str = "l1", *, buyer_email: bool = True
) -> None:
    buyer: dict[str, Any] = {"name": "Amelie", "locale": "fr-CA"}
    if buyer_email:
        buyer["email"] = BUYER_ADDRESS
    for user_id, body in (
        ("buyer", buyer),
        ("seller", {"name": "bob_sells", "locale": "en-US", "email": SELLER_ADDRESS}),
    ):
        status, reply = await hub.api("PUT", f"/v1/users/{user_id}", body)
        assert status == 200, reply
    await hub.listing(listing_id, seller="seller", title=TITLE, photo_url=PHOTO)
    await hub.order(order_id, listing_id, "buyer", "seller")


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain text and the HTML of a message that must have both, text first."""
    assert message.get_content_type() == "multipart/alternative"
    kinds = [part.get_content_type() for part in message.iter_parts()]
    assert kinds == ["text/plain", "text/html"]
    text, markup = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and markup is not None
    return text.get_content(), markup.get_content()


def link_in(text: str) -> str:
    found = LINK_RE.findall(text)
    assert len(set(found)) == 1, found
    return str(found[0])


async def outbox_drained(hub: RunningHub) -> bool:
    store = hub.app.store
    jobs = [e for e in await store.entries_after(MAIL_ROOM, 0, 1000) if e.kind == "event"]
    return bool(jobs) and (await store.read_state(MAIL_ROOM)).up_to >= jobs[-1].seq


async def until_drained(hub: RunningHub) -> None:
    async with asyncio.timeout(WAIT):
        while not await outbox_drained(hub):
            await asyncio.sleep(0.02)


async def get(url: str) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, dict(response.headers), await response.text()


def meta(page: str, name: str) -> str:
    found = re.search(rf'<meta name="{name}" content="([^"]*)">', page)
    assert found is not None, name
    return html.unescape(found[1])


# What is sent.


async def test_r11_both_parties_get_one_mail_each_in_their_language(
    hub: RunningHub, smtp: SmtpSink
) -> None:
    await members_and_order(hub)
    await eventually(lambda: len(smtp.received) >= 2)
    assert len(smtp.received) == 2
    [buyer_mail] = smtp.to(BUYER_ADDRESS)
    [seller_mail] = smtp.to(SELLER_ADDRESS)

    assert buyer_mail["Subject"].startswith("Commande o1 confirmée")
    assert buyer_mail["Content-Language"] == "fr-CA"
    assert "Marketplace" in buyer_mail["From"]
    text, markup = parts(buyer_mail)
    for words in (TITLE, "o1", "@bob_sells", "Ouvrir la conversation", OFF_PLATFORM_DISCLAIMER_FR):
        assert words in text
    assert "Wool &lt;coat&gt; &amp; &#34;hat&#34;" in markup
    assert "<coat>" not in markup
    assert "@bob_sells" in markup and f'src="{PHOTO}"' in markup
    assert "Ouvrir la conversation" in markup and OFF_PLATFORM_DISCLAIMER_FR in markup
    assert link_in(text) == link_in(markup)
    assert link_in(text).startswith(hub.config.public_url + "/open?t=")

    assert seller_mail["Subject"].startswith("You sold Wool <coat>")
    assert seller_mail["Content-Language"] == "en"
    text, markup = parts(seller_mail)
    for words in ("@Amelie", "o1", "Open the conversation", OFF_PLATFORM_DISCLAIMER):
        assert words in text and words in markup
    assert link_in(text) != link_in(parts(buyer_mail)[0])  # one link per member
    assert buyer_mail["Message-ID"] != seller_mail["Message-ID"]


async def test_r11_a_retried_order_sends_nothing_more(hub: RunningHub, smtp: SmtpSink) -> None:
    await members_and_order(hub)
    for _ in range(2):
        await hub.order("o1", "l1", "buyer", "seller")
    await until_drained(hub)
    jobs = [e for e in await hub.app.store.entries_after(MAIL_ROOM, 0, 100) if e.kind == "event"]
    assert len(jobs) == 2
    assert len(smtp.received) == 2
    assert hub.app.mail.sent == 2


async def test_r11_a_member_without_an_address_is_skipped_and_logged_by_id(
    hub: RunningHub, smtp: SmtpSink, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="parley.mail")
    await members_and_order(hub, buyer_email=False)
    await until_drained(hub)
    assert [rcpt for rcpt, _ in smtp.received] == [[SELLER_ADDRESS]]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "no e-mail address" in logged and "order_confirmation:o1:buyer" in logged
    assert "@" not in logged and TITLE not in logged  # ids only, never addresses nor words


# The link and the session it opens.


async def test_r11_the_link_opens_that_conversation_for_that_member(
    hub: RunningHub, smtp: SmtpSink
) -> None:
    await members_and_order(hub)
    await hub.order("o2", "l1", "buyer", "seller")  # another order of the same member
    await eventually(lambda: len(smtp.to(BUYER_ADDRESS)) >= 2)
    [mail] = [m for m in smtp.to(BUYER_ADDRESS) if m["Subject"].startswith("Commande o1 ")]
    link = link_in(parts(mail)[0])

    status, headers, page = await get(link)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert meta(page, "parley-room") == "order:o1"
    # The page connects where the member found it: the public address.
    public_ws = meta(page, "parley-ws")
    assert public_ws == hub.config.public_url.replace("http://", "ws://", 1) + "/"
    assert "Wool &lt;coat&gt;" in page and "<coat>" not in page
    assert OFF_PLATFORM_DISCLAIMER_FR in page
    session = meta(page, "parley-session")

    # The connect result says what the session is: no inbox, one room.
    async with ws_connect(public_ws, subprotocols=[JSON_SUBPROTOCOL]) as ws:
        await ws.send(orjson.dumps({"id": 1, "op": "connect", "token": session}).decode())
        result = orjson.loads(await ws.recv())["result"]
    assert result["inbox"] is None and result["scope"] == "order:o1"
    assert result["user"]["id"] == "buyer"

    client = await ParleyClient.connect(hub.ws_url, session, reconnect=False)
    hub.clients.append(client)
    assert client.scope == "order:o1"
    await client.subscribe("order:o1")
    history = await client.history("order:o1")
    assert history["messages"][-1]["data"]["type"] == "order_opened"
    posted = await client.post("order:o1", "Bonjour, c'est bien reçu")
    assert posted["seq"] > 0
    assert "ts" in await client.request("ping")

    for op, fields in (
        ("subscribe", {"room": "order:o2"}),
        ("history", {"room": "order:o2"}),
        ("post", {"room": "order:o2", "text": "hi", "client_msg_id": "c2"}),
        ("subscribe", {"room": "listing:l1"}),
        ("notifications", {}),
        ("offers", {}),
    ):
        with pytest.raises(ParleyError) as refused:
            await client.request(op, **fields)
        assert refused.value.code == ErrorCode.forbidden, op

    # The post is the buyer's, seen by the seller like any other.
    seller = await hub.client("seller", "bob_sells")
    messages = (await seller.history("order:o1"))["messages"]
    assert messages[0]["author"]["id"] == "buyer"
    assert messages[0]["text"] == "Bonjour, c'est bien reçu"


async def test_r11_a_session_token_expires(hub: RunningHub, clock: FakeClock) -> None:
    await members_and_order(hub)
    user = await hub.app.store.get_user(UserId("buyer"))
    assert user is not None
    session = Links(hub.config, clock).session_token(user, "order:o1")
    clock.advance(SESSION_TTL_S + 1)
    with pytest.raises(ParleyError) as refused:
        await ParleyClient.connect(hub.ws_url, session, reconnect=False)
    assert refused.value.code == ErrorCode.unauthorized


async def test_r11_a_link_is_not_a_token(hub: RunningHub) -> None:
    await members_and_order(hub)
    link_token = Links(hub.config, hub.app.clock).link_token("o1", "buyer")
    with pytest.raises(ParleyError) as refused:
        await ParleyClient.connect(hub.ws_url, link_token, reconnect=False)
    assert refused.value.code == ErrorCode.unauthorized


def problem_text(page: str) -> str:
    assert "Traceback" not in page
    return html.unescape(page)


async def test_r11_a_tampered_link_is_refused_with_a_page(hub: RunningHub) -> None:
    await members_and_order(hub)
    link = Links(hub.config, hub.app.clock).url("o1", "buyer")
    token = link.partition("t=")[2]
    bad = link[: -len(token)] + token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    status, headers, page = await get(bad)
    assert status == 403
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    text = problem_text(page)
    assert "This link is not valid." in text and "Ce lien n'est pas valide." in text
    assert "My orders" in text and "Mes commandes" in text
    assert token[:20] not in page  # nothing of the token comes back

    status, _, page = await get(f"http://127.0.0.1:{hub.app.ws_port}/open")
    assert status == 400 and "Ce lien n'est pas valide." in problem_text(page)


async def test_r11_an_expired_link_is_refused_with_410(hub: RunningHub, clock: FakeClock) -> None:
    await members_and_order(hub)
    link = Links(hub.config, clock).url("o1", "buyer")
    clock.advance(hub.config.link_ttl_hours * 3600 + 1)
    status, _, page = await get(link)
    assert status == 410
    text = problem_text(page)
    # A genuine link names its member: the page speaks their language (fr-CA) alone.
    assert "Ce lien a expiré." in text and "Mes commandes" in text
    assert "This link has expired." not in text
    assert '<html lang="fr-CA">' in page
    seller_link = Links(hub.config, clock).url("o1", "seller")
    clock.advance(hub.config.link_ttl_hours * 3600 + 1)
    status, _, page = await get(seller_link)
    assert status == 410
    assert "This link has expired." in problem_text(page) and '<html lang="en">' in page


async def test_r11_a_link_of_a_member_who_is_not_a_party_is_refused(hub: RunningHub) -> None:
    await members_and_order(hub)
    status, reply = await hub.api("PUT", "/v1/users/eve", {"name": "eve", "email": "e@x.example"})
    assert status == 200, reply
    link = Links(hub.config, hub.app.clock).url("o1", "eve")
    status, _, page = await get(link)
    assert status == 403
    text = problem_text(page)
    assert "does not open a conversation of yours" in text
    assert "n'ouvre pas une de vos conversations" in text
    assert "parley-session" not in page


async def test_the_hub_still_upgrades_websockets_and_ignores_other_paths(hub: RunningHub) -> None:
    status, _, _ = await get(f"http://127.0.0.1:{hub.app.ws_port}/elsewhere")
    assert status == 404  # not a page of the hub's, and not a WebSocket handshake
    client = await hub.client("someone")
    assert client.scope is None


# Backends and retries.


async def test_r11_the_files_backend_writes_parseable_eml_files(
    sqlite_url: str, clock: FakeClock, tmp_path: Path
) -> None:
    directory = tmp_path / "mail"
    async with mail_hub(sqlite_url, clock, mail_backend="files", mail_dir=str(directory)) as hub:
        await members_and_order(hub)
        await until_drained(hub)
    files = sorted(directory.iterdir())
    assert [f.suffix for f in files] == [".eml", ".eml"]  # no temporary file left
    messages = [email.message_from_bytes(f.read_bytes(), policy=default_policy) for f in files]
    assert sorted(str(m["To"].addresses[0].addr_spec) for m in messages) == sorted(
        [BUYER_ADDRESS, SELLER_ADDRESS]
    )
    for message in messages:
        assert isinstance(message, EmailMessage)
        text, markup = parts(message)
        assert LINK_RE.search(text) and "<a href=" in markup


async def test_r11_a_refusing_smtp_server_is_retried_until_the_mail_arrives(
    hub: RunningHub, smtp: SmtpSink
) -> None:
    smtp.refuse = 3
    await members_and_order(hub)
    await eventually(lambda: len(smtp.received) >= 2)
    await until_drained(hub)
    assert smtp.refused == 3
    assert sorted(rcpt[0] for rcpt, _ in smtp.received) == sorted([BUYER_ADDRESS, SELLER_ADDRESS])


async def test_r11_two_hubs_on_one_redis_send_each_mail_once(
    redis_server: Any, clock: FakeClock, smtp: SmtpSink
) -> None:
    redis_server.start()
    await redis_server.flushall()
    async with contextlib.AsyncExitStack() as running:
        hubs = [
            await running.enter_async_context(
                mail_hub(redis_server.url, clock, **smtp_settings(smtp))
            )
            for _ in range(2)
        ]
        await members_and_order(hubs[0], "o1", "l1")
        for n, hub in enumerate(hubs * 2):
            await hub.listing(f"l{n + 2}", seller="seller", title=TITLE)
            await hub.order(f"o{n + 2}", f"l{n + 2}", "buyer", "seller")
            await hub.order(f"o{n + 2}", f"l{n + 2}", "buyer", "seller")  # and a retry
        await eventually(lambda: len(smtp.received) >= 10)
        await until_drained(hubs[0])
        await until_drained(hubs[1])
        subjects = [(rcpt[0], m["Subject"]) for rcpt, m in smtp.received]
        assert len(subjects) == 10 and len(set(subjects)) == 10
        assert hubs[0].app.mail.sent + hubs[1].app.mail.sent == 10


# Composing, without sockets.


def test_r11_members_words_are_escaped_in_html_and_a_photo_must_be_a_web_url() -> None:
    listing = Listing(ListingId("l1"), UserId("s"), "<script>x</script>", Money(100, "CAD"),
                      "javascript:alert(1)")  # fmt: skip
    message = compose_order_mail(
        kind="order_confirmation",
        locale="en",
        role="buyer",
        order=Order(OrderId("o1"), ListingId("l1"), UserId("b"), UserId("s")),
        listing=listing,
        member=User(UserId("b"), "bea", "en", "bea@example.com"),
        to="bea@example.com",
        counterpart=User(UserId("s"), "<b>sam</b>", "en"),
        link="https://chat.example/open?t=abc",
        sender="Marketplace <no-reply@marketplace.example>",
        message_id="<x@marketplace.example>",
        now=1_800_000_000.0,
    )
    text, markup = parts(message)
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert "<b>sam</b>" not in markup and "&lt;b&gt;sam" in markup
    assert "javascript:" not in markup and "<img" not in markup
    assert "<script>x</script>" in text  # plain text is not HTML


# Part 6: a conversation left unread gets one reminder.


async def reminders_drained(hub: RunningHub) -> bool:
    store = hub.app.store
    found = [e for e in await store.entries_after(REMINDER_ROOM, 0, 1000) if e.kind == "event"]
    return bool(found) and (await store.read_state(REMINDER_ROOM)).up_to >= found[-1].seq


@pytest.fixture
async def reminding_hub(
    sqlite_url: str, clock: FakeClock, smtp: SmtpSink
) -> AsyncIterator[RunningHub]:
    async with mail_hub(
        sqlite_url, clock, unread_reminder_minutes=15, **smtp_settings(smtp)
    ) as running:
        yield running


async def test_unread_conversation_gets_one_reminder_not_one_per_message(
    reminding_hub: RunningHub, smtp: SmtpSink, clock: FakeClock
) -> None:
    hub = reminding_hub
    await members_and_order(hub)
    await until_drained(hub)
    seller = await hub.client("seller", "bob_sells")
    for text in ("Hello!", "It ships tomorrow.", "Which address?"):
        last = await seller.post("order:o1", text)
    clock.advance(15 * 60)
    await eventually(lambda: len(smtp.to(BUYER_ADDRESS)) >= 2)
    async with asyncio.timeout(WAIT):
        while not (await reminders_drained(hub) and await outbox_drained(hub)):
            await asyncio.sleep(0.02)
    reminders = [m for m in smtp.to(BUYER_ADDRESS) if "non lus" in m["Subject"]]
    assert len(reminders) == 1
    assert len(smtp.to(SELLER_ADDRESS)) == 1  # the seller wrote: nothing unread for them
    text, markup = parts(reminders[0])
    assert "@bob_sells" in text and "Ouvrir la conversation" in markup
    assert OFF_PLATFORM_DISCLAIMER_FR in text
    status, _, page = await get(link_in(text))
    assert status == 200 and meta(page, "parley-room") == "order:o1"

    # Read, then left unread again: a new stretch, a new reminder.
    buyer = await hub.client("buyer", "Amelie", locale="fr-CA")
    await buyer.read("order:o1", last["seq"])
    await seller.post("order:o1", "Still there?")
    clock.advance(15 * 60)
    await eventually(lambda: len(smtp.to(BUYER_ADDRESS)) >= 3)


async def test_a_conversation_read_in_time_gets_no_reminder(
    reminding_hub: RunningHub, smtp: SmtpSink, clock: FakeClock
) -> None:
    hub = reminding_hub
    await members_and_order(hub)
    await until_drained(hub)
    seller = await hub.client("seller", "bob_sells")
    posted = await seller.post("order:o1", "Hello!")
    buyer = await hub.client("buyer", "Amelie", locale="fr-CA")
    await buyer.read("order:o1", posted["seq"])
    clock.advance(15 * 60)
    async with asyncio.timeout(WAIT):
        while not await reminders_drained(hub):
            await asyncio.sleep(0.02)
    await until_drained(hub)
    assert len(smtp.to(BUYER_ADDRESS)) == 1  # the confirmation only
