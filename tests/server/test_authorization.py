"""The authorization matrix: every op, every room kind, every kind of member.

``MATRIX`` is the one table: a row per op and room kind, a column per kind of
member, each cell ``OK`` or the exact error code the hub answers. Every cell
is one test, run against a real hub over real sockets on both stores.

The members of a cell's world (each cell builds its own, on a hub shared by
the module, so no cell sees another's traces):

- ``anonymous``: a socket that has not sent ``connect``;
- ``stranger``: an authenticated member with no part in anything below;
- ``buyer``: the buyer of the order, on the listing;
- ``seller``: the listing's seller, and so the order's;
- ``other_buyer``: the buyer of another order of the same seller;
- ``session``: the buyer's session from the e-mail link (R11), scoped to the
  order's room, obtained from the landing page as a widget does.

Room kinds: ``listing`` (``listing:<id>``, or the listing an op names),
``closed_listing`` (the same, once the backend deleted the listing),
``order`` (``order:<id>`` of a reported order), ``no_order`` (``order:<id>``
never reported: R2), ``-`` (the op names no room). Edits and deletions target
the buyer's message in that room (seq 1 in ``no_order``); the
``offer_respond`` row answers the buyer's open offer with ``decline``.

A refused write leaves the room's log as it was: checked on every refused
cell of a listing or order room.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import aiohttp
import orjson
import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect

from parley.protocol.codec import JSON_SUBPROTOCOL
from parley.protocol.messages import OPS
from parley.server.app import SystemClock
from parley.server.links import Links
from tests.server.conftest import RunningHub, start_hub, stop_hub

OK: Final = "ok"
NC: Final = "not_connected"
AC: Final = "already_connected"
F: Final = "forbidden"
OR: Final = "order_required"
NF: Final = "not_found"
NS: Final = "not_subscribed"
BR: Final = "bad_request"
NYT: Final = "not_your_turn"

MEMBERS: Final = ("anonymous", "stranger", "buyer", "seller", "other_buyer", "session")
ROOM_KINDS: Final = ("listing", "closed_listing", "order", "no_order", "-")

# fmt: off
MATRIX: Final[tuple[tuple[str, str, str, str, str, str, str, str], ...]] = (
    # op                  room kind    anonymous stranger buyer seller other_buyer session
    ("connect",            "-",        OK,  AC,  AC,  AC,  AC,  AC),
    ("ping",               "-",        NC,  OK,  OK,  OK,  OK,  OK),
    ("subscribe",          "listing",  NC,  OK,  OK,  OK,  OK,  F),
    ("subscribe",          "closed_listing", NC, NF, NF, NF, NF, F),
    ("subscribe",          "order",    NC,  F,   OK,  OK,  F,   OK),
    ("subscribe",          "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("unsubscribe",        "listing",  NC,  OK,  OK,  OK,  OK,  F),
    ("unsubscribe",        "closed_listing", NC, NS, NS, NS, NS, F),
    ("unsubscribe",        "order",    NC,  NS,  OK,  OK,  NS,  OK),
    ("unsubscribe",        "no_order", NC,  NS,  NS,  NS,  NS,  F),
    ("history",            "listing",  NC,  OK,  OK,  OK,  OK,  F),
    ("history",            "closed_listing", NC, NF, NF, NF, NF, F),
    ("history",            "order",    NC,  F,   OK,  OK,  F,   OK),
    ("history",            "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("post",               "listing",  NC,  OK,  OK,  OK,  OK,  F),
    ("post",               "closed_listing", NC, NF, NF, NF, NF, F),
    ("post",               "order",    NC,  F,   OK,  OK,  F,   OK),
    ("post",               "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("edit",               "listing",  NC,  F,   OK,  F,   F,   F),
    ("edit",               "closed_listing", NC, NF, NF, NF, NF, F),
    ("edit",               "order",    NC,  F,   OK,  F,   F,   OK),
    ("edit",               "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("delete",             "listing",  NC,  F,   OK,  OK,  F,   F),
    ("delete",             "closed_listing", NC, NF, NF, NF, NF, F),
    ("delete",             "order",    NC,  F,   OK,  F,   F,   OK),
    ("delete",             "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("notifications",      "-",        NC,  OK,  OK,  OK,  OK,  F),
    ("notifications_read", "-",        NC,  OK,  OK,  OK,  OK,  F),
    ("offers_enable",      "listing",  NC,  F,   F,   OK,  F,   F),
    ("offers_enable",      "closed_listing", NC, NF, NF, NF, NF, F),
    ("offer_make",         "listing",  NC,  OK,  OK,  F,   OK,  F),
    ("offer_make",         "closed_listing", NC, NF, NF, NF, NF, F),
    ("offer_respond",      "listing",  NC,  NF,  NYT, OK,  NF,  F),
    ("likers",             "listing",  NC,  F,   F,   OK,  F,   F),
    ("likers",             "closed_listing", NC, NF, NF, NF, NF, F),
    ("offer_to_likers",    "listing",  NC,  F,   F,   OK,  F,   F),
    ("offer_to_likers",    "closed_listing", NC, NF, NF, NF, NF, F),
    ("offers",             "-",        NC,  OK,  OK,  OK,  OK,  F),
    # read and typing take order rooms only: a listing room is refused by
    # validation, before anything else (even before connect).
    ("read",               "listing",  BR,  BR,  BR,  BR,  BR,  BR),
    ("read",               "closed_listing", BR, BR, BR, BR, BR, BR),
    ("read",               "order",    NC,  F,   OK,  OK,  F,   OK),
    ("read",               "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("conversations",      "-",        NC,  OK,  OK,  OK,  OK,  F),
    ("typing",             "listing",  BR,  BR,  BR,  BR,  BR,  BR),
    ("typing",             "closed_listing", BR, BR, BR, BR, BR, BR),
    ("typing",             "order",    NC,  F,   OK,  OK,  F,   OK),
    ("typing",             "no_order", NC,  OR,  OR,  OR,  OR,  F),
    # A member's own lists: a scoped session has none; a room muted must be readable.
    ("block",              "-",        NC,  OK,  OK,  OK,  OK,  F),
    ("unblock",            "-",        NC,  OK,  OK,  OK,  OK,  F),
    ("blocks",             "-",        NC,  OK,  OK,  OK,  OK,  F),
    ("mute",               "listing",  NC,  OK,  OK,  OK,  OK,  F),
    ("mute",               "closed_listing", NC, NF, NF, NF, NF, F),
    ("mute",               "order",    NC,  F,   OK,  OK,  F,   F),
    ("mute",               "no_order", NC,  OR,  OR,  OR,  OR,  F),
    ("unmute",             "listing",  NC,  OK,  OK,  OK,  OK,  F),
    ("mutes",              "-",        NC,  OK,  OK,  OK,  OK,  F),
    # Members report other members' messages they may read (the target is the buyer's).
    ("report",             "listing",  NC,  OK,  F,   OK,  OK,  F),
    ("report",             "closed_listing", NC, NF, NF, NF, NF, F),
    ("report",             "order",    NC,  F,   F,   OK,  F,   F),
    ("report",             "no_order", NC,  OR,  OR,  OR,  OR,  F),
)
# fmt: on

CELLS: Final = [
    pytest.param(op, kind, member, expected, id=f"{op}-{kind}-{member}")
    for op, kind, *row in MATRIX
    for member, expected in zip(MEMBERS, row, strict=True)
]
REPLY_TIMEOUT: Final = 5.0
_worlds = itertools.count(1)


def test_the_matrix_covers_every_op_and_every_kind_of_member() -> None:
    assert {op for op, *_ in MATRIX} == OPS
    assert {kind for _, kind, *_ in MATRIX} == set(ROOM_KINDS)
    assert len({(op, kind) for op, kind, *_ in MATRIX}) == len(MATRIX)
    assert all(len(row) == 2 + len(MEMBERS) for row in MATRIX)
    # Every op that names a room is in the table for each room kind it may name.
    for op in (
        "subscribe", "unsubscribe", "history", "post", "edit", "delete", "read", "typing",
        "report",
    ):  # fmt: skip
        assert {kind for o, kind, *_ in MATRIX if o == op} == set(ROOM_KINDS) - {"-"}


@dataclass(frozen=True)
class World:
    n: int
    listing_seq: int  # the buyer's comment in the listing room
    closed_seq: int  # the buyer's comment in the closed listing's room
    order_seq: int  # the buyer's message in the order room
    offer: str | None  # the buyer's open offer on the listing (offer_respond only)

    def member(self, kind: str) -> str:
        return f"{kind}{self.n}"

    def listing(self, kind: str) -> str:
        return f"D{self.n}" if kind == "closed_listing" else f"L{self.n}"

    @property
    def order(self) -> str:
        return f"O{self.n}"

    def room(self, kind: str) -> str:
        if kind in ("listing", "closed_listing"):
            return f"listing:{self.listing(kind)}"
        if kind == "order":
            return f"order:{self.order}"
        return f"order:P{self.n}"  # never reported

    def target(self, kind: str) -> int:
        seqs = {"listing": self.listing_seq, "closed_listing": self.closed_seq}
        return seqs.get(kind, self.order_seq if kind == "order" else 1)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sqlite", "redis"])
async def shared_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    """One hub per store for the whole table: each cell builds a world of its own."""
    directory: Path = tmp_path_factory.mktemp("authz")
    url = f"sqlite:///{directory / 'parley.sqlite3'}"
    if request.param == "redis":
        redis_server = request.getfixturevalue("redis_server")
        redis_server.start()
        await redis_server.flushall()
        url = redis_server.url
    running = await start_hub(url, mail_dir=str(directory / "mail"))
    try:
        yield running
    finally:
        await stop_hub(running)


async def build_world(hub: RunningHub, op: str) -> World:
    n = next(_worlds)
    seller, buyer, other, stranger, fan = (
        f"{kind}{n}" for kind in ("seller", "buyer", "other_buyer", "stranger", "fan")
    )
    for user in (seller, buyer, other, stranger, fan):
        status, reply = await hub.api("PUT", f"/v1/users/{user}", {"name": user})
        assert status in (200, 201), reply
    await hub.listing(f"L{n}", seller, offers_enabled=True)
    await hub.listing(f"M{n}", seller)
    await hub.listing(f"D{n}", seller, offers_enabled=True)  # deleted below
    await hub.order(f"O{n}", f"L{n}", buyer, seller)
    await hub.order(f"Q{n}", f"M{n}", other, seller)  # the other buyer's order
    status, reply = await hub.api("PUT", f"/v1/listings/L{n}/likers/{fan}")
    assert status in (200, 201), reply
    client = await hub.client(buyer)
    try:
        listing_seq = (await client.post(f"listing:L{n}", "Is it still available?"))["seq"]
        order_seq = (await client.post(f"order:O{n}", "Which day will you ship?"))["seq"]
        closed_seq = (await client.post(f"listing:D{n}", "Still there?"))["seq"]
        offer = None
        if op == "offer_respond":
            offer = (await client.offer_make(f"L{n}", 4000))["id"]
    finally:
        hub.clients.remove(client)
        await client.close()
    await hub.listing(f"D{n}", seller, status="deleted")  # the backend deletes it: room closed
    return World(n, listing_seq, closed_seq, order_seq, offer)


def request_for(op: str, kind: str, world: World) -> dict[str, Any]:
    room = world.room(kind)
    listing = world.listing(kind)
    fields: dict[str, dict[str, Any]] = {
        "connect": {},  # the token is the member's own, set by the test
        "ping": {},
        "subscribe": {"room": room},
        "unsubscribe": {"room": room},
        "history": {"room": room},
        "post": {"room": room, "text": "Hello", "client_msg_id": "matrix-1"},
        "edit": {"room": room, "seq": world.target(kind), "text": "Hello again"},
        "delete": {"room": room, "seq": world.target(kind)},
        "notifications": {},
        "notifications_read": {"up_to": 0},
        "offers_enable": {"listing": listing, "enabled": True},
        "offer_make": {"listing": listing, "amount": 4000},
        "offer_respond": {"offer": world.offer or "none", "action": "decline"},
        "likers": {"listing": listing},
        "offer_to_likers": {"listing": listing, "amount": 4000, "to": "all"},
        "offers": {},
        "read": {"room": room, "seq": world.target(kind)},
        "conversations": {"role": "purchases"},
        "typing": {"room": room},
        "block": {"user": f"fan{world.n}"},
        "unblock": {"user": f"fan{world.n}"},
        "blocks": {},
        "mute": {"room": room},
        "unmute": {"room": room},
        "mutes": {},
        "report": {"room": room, "seq": world.target(kind), "reason": "spam"},
    }
    return {"op": op, **fields[op]}


async def session_token(hub: RunningHub, world: World) -> str:
    """The buyer's session, as the widget gets it: from the e-mail link's landing page."""
    link = Links(hub.config, SystemClock()).link_token(world.order, world.member("buyer"))
    url = f"http://127.0.0.1:{hub.app.ws_port}/open?t={quote(link, safe='')}"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        page = await response.text()
    found = re.search(r'<meta name="parley-session" content="([^"]*)">', page)
    assert found is not None
    return html.unescape(found[1])


async def ask(ws: ClientConnection, rid: int, request: dict[str, Any]) -> dict[str, Any]:
    """Send one request; its reply (events on the way are skipped)."""
    await ws.send(orjson.dumps({"id": rid, **request}).decode())
    async with asyncio.timeout(REPLY_TIMEOUT):
        while True:
            frame = orjson.loads(await ws.recv())
            if frame.get("id") == rid:
                reply: dict[str, Any] = frame
                return reply


def outcome(reply: dict[str, Any]) -> str:
    if "error" in reply:
        code: str = reply["error"]["code"]
        return code
    assert "result" in reply, reply
    return OK


async def head_seq(hub: RunningHub, room: str) -> int:
    head = await hub.app.store.head(room)
    seq: int = head.seq
    return seq


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("op", "kind", "member", "expected"), CELLS)
async def test_authorization_matrix(
    shared_hub: RunningHub, op: str, kind: str, member: str, expected: str
) -> None:
    hub = shared_hub
    world = await build_world(hub, op)
    request = request_for(op, kind, world)
    if member == "anonymous":
        token = None
        if op == "connect":
            request["token"] = hub.token(world.member("stranger"))
    elif member == "session":
        token = await session_token(hub, world)
    else:
        token = hub.token(world.member(member))
    if op == "connect" and token is not None:
        request["token"] = token
    watched = kind in ("listing", "order") and "room" in request
    before = await head_seq(hub, world.room(kind)) if watched else 0

    async with ws_connect(hub.ws_url, subprotocols=[JSON_SUBPROTOCOL]) as ws:  # type: ignore[list-item]
        if token is not None:
            connected = await ask(ws, 1, {"op": "connect", "token": token})
            assert outcome(connected) == OK, connected
            if member == "session":
                assert connected["result"]["scope"] == f"order:{world.order}"
        if op == "unsubscribe":
            # Unsubscribing needs a subscription: try one first, allowed or not.
            await ask(ws, 2, {"op": "subscribe", "room": request["room"]})
        reply = await ask(ws, 3, request)

    assert outcome(reply) == expected, reply
    if expected != OK and watched:
        assert await head_seq(hub, world.room(kind)) == before, "a refused op changed the log"


@pytest.mark.asyncio(loop_scope="module")
async def test_a_deleted_comments_edits_are_not_replayed(shared_hub: RunningHub) -> None:
    hub = shared_hub
    n = next(_worlds)
    await hub.listing(f"L{n}", f"seller{n}")
    author = await hub.client(f"author{n}")
    seq = (await author.post(f"listing:L{n}", "first words"))["seq"]
    await author.edit(f"listing:L{n}", seq, "second words, regretted")
    await author.delete(f"listing:L{n}", seq)
    reader = await hub.client(f"stranger{n}")
    missed = (await reader.subscribe(f"listing:L{n}", since=0))["missed"]
    assert [e["event"] for e in missed] == ["message", "message_edited", "message_deleted"]
    assert all(not e.get("text") for e in missed), missed
