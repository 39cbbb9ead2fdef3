"""Floods and slow clients: connection caps, write limits, one stalled reader among 500.

A stalled client is a real socket whose reading is paused: TCP fills up
behind it, and the hub's send buffer for it grows until ``send_buffer_bytes``.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from parley.client import ConnectionLost, ParleyClient, ParleyError
from parley.protocol.errors import CloseCode, ErrorCode
from parley.server.core.clock import FakeClock
from parley.server.core.model import UserId
from parley.server.hub import TYPING_LAG_FRACTION, Conn
from parley.server.links import Links
from tests.server.conftest import RunningHub, start_hub, stop_hub

JSON = "parley.v1.json"
ROOM = "listing:L1"
TEXT = "y" * 1000  # about a kilobyte per message event


async def raw(hub: RunningHub, *, source: str = "127.0.0.1", **kw: Any) -> ClientConnection:
    """A WebSocket from ``source`` (any 127/8 address is this host's loopback)."""
    return await connect(
        hub.ws_url,
        subprotocols=[JSON],  # type: ignore[list-item]
        compression=None,
        local_addr=(source, 0),
        **kw,
    )


async def request(ws: ClientConnection, obj: dict[str, Any]) -> dict[str, Any]:
    await ws.send(orjson.dumps(obj).decode())
    reply: dict[str, Any] = orjson.loads(await ws.recv())
    assert "result" in reply, reply
    return reply["result"]  # type: ignore[no-any-return]


async def close_code(ws: ClientConnection, timeout: float = 10.0) -> int | None:
    """Read until the close (bounded); the code the hub sent."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a state the hub reaches by itself, bounded in time."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


# Caps.


async def test_a_member_over_the_cap_is_closed_with_4009_and_nobody_else_is(
    sqlite_url: str,
) -> None:
    hub = await start_hub(sqlite_url, max_connections_per_member=3)
    try:
        devices = [await hub.client("u1") for _ in range(3)]
        with pytest.raises(ConnectionLost) as refused:
            await hub.client("u1")
        assert refused.value.code == CloseCode.too_many_connections
        other = await hub.client("u2")  # another member is not counted with u1
        for client in (*devices, other):
            await client.request("ping")
        # A device that leaves makes room for the next.
        await devices[0].close()
        await until(lambda: hub.app.hub.member_cap.held("u1") == 2)
        again = await hub.client("u1")
        await again.request("ping")
    finally:
        await stop_hub(hub)


async def test_an_address_over_the_cap_is_closed_with_4009_before_connect(
    sqlite_url: str,
) -> None:
    hub = await start_hub(sqlite_url, max_connections_per_ip=3)
    try:
        # Not even authenticated: an address may not hold sockets open for free.
        held = [await raw(hub, source="127.0.0.2") for _ in range(3)]
        over = await raw(hub, source="127.0.0.2")
        assert await close_code(over) == CloseCode.too_many_connections
        # Another address is served, and so are the three.
        elsewhere = await raw(hub, source="127.0.0.3")
        await request(elsewhere, {"id": 1, "op": "connect", "token": hub.token("u9")})
        for i, ws in enumerate(held):
            await request(ws, {"id": 1, "op": "connect", "token": hub.token(f"u{i}")})
        await held[0].close()
        await until(lambda: hub.app.hub.address_cap.held("127.0.0.2") == 2)
        again = await raw(hub, source="127.0.0.2")
        await request(again, {"id": 1, "op": "connect", "token": hub.token("u5")})
        for ws in (*held[1:], elsewhere, again):
            await ws.close()
    finally:
        await stop_hub(hub)


# Writes: one budget per connection, and one per member for all their connections.

# Each connection may write 4 at once, the member 6 over all their connections;
# both refill at one per second, and the fake clock moves only when told.
MEMBER_LIMITS: dict[str, Any] = {
    "write_burst": 4,
    "write_rate": 1.0,
    "member_write_burst": 6,
    "member_write_rate": 1.0,
}


async def refusal(client: ParleyClient, room: str, text: str) -> str:
    """Post ``text`` expecting ``rate_limited``; the refusal's message."""
    with pytest.raises(ParleyError) as refused:
        await client.post(room, text)
    assert refused.value.code == ErrorCode.rate_limited
    return refused.value.message


async def stored_texts(client: ParleyClient, room: str) -> list[str]:
    return sorted(m["text"] for m in (await client.history(room, limit=100))["messages"])


async def test_a_member_writing_from_several_connections_shares_one_budget(
    sqlite_url: str, clock: FakeClock
) -> None:
    hub = await start_hub(sqlite_url, clock=clock, **MEMBER_LIMITS)
    try:
        await hub.listing("L1")
        room = "listing:L1"
        devices = {name: await hub.client("u1") for name in ("app", "tab", "widget")}
        app, tab, widget = devices.values()
        for name, device in devices.items():  # two each: every connection under its 4
            for i in range(2):
                await device.post(room, f"{name} {i}")
        accepted = await stored_texts(app, room)
        assert len(accepted) == 6
        # The member's six are spent: any of their connections is refused, saying why.
        assert "member" in await refusal(widget, room, "refused 1")
        assert "member" in await refusal(app, room, "refused 2")
        # Another member has their own budget.
        other = await hub.client("u2")
        await other.post(room, "from u2")
        # One second refills one of the member's tokens, for whichever device writes first.
        clock.advance(1.0)
        await tab.post(room, "after a second")
        assert "member" in await refusal(app, room, "refused 3")
        clock.advance(60.0)  # a minute: the full burst again
        for i in range(2):
            for name, device in devices.items():
                await device.post(room, f"{name} after a minute {i}")
        # What was refused is nowhere; everything accepted is stored once.
        texts = await stored_texts(other, room)
        assert not [t for t in texts if t.startswith("refused")]
        assert len(texts) == 6 + 1 + 1 + 6
        assert set(accepted) <= set(texts)
    finally:
        await stop_hub(hub)


async def test_a_refused_write_spends_no_token_of_either_limit(
    sqlite_url: str, clock: FakeClock
) -> None:
    hub = await start_hub(sqlite_url, clock=clock, **MEMBER_LIMITS)
    try:
        await hub.listing("L1")
        room = "listing:L1"
        flooder, other_device = await hub.client("u1"), await hub.client("u1")
        # One connection past its own 4: refused by its connection's limit ...
        for i in range(4):
            await flooder.post(room, f"flood {i}")
        for i in range(5):
            assert "connection" in await refusal(flooder, room, f"refused flood {i}")
        # ... which left the member's other two to the member's other device.
        await other_device.post(room, "other 1")
        await other_device.post(room, "other 2")
        # Refused by the member's limit: the device keeps its own tokens.
        for i in range(5):
            assert "member" in await refusal(other_device, room, f"refused other {i}")
        clock.advance(6.0)  # the member's six are back; the device had 2 left and got 2 more
        for i in range(4):
            await other_device.post(room, f"after {i}")
        assert "connection" in await refusal(other_device, room, "refused after")
        texts = await stored_texts(other_device, room)
        assert not [t for t in texts if t.startswith("refused")]
        assert len(texts) == 4 + 2 + 4
    finally:
        await stop_hub(hub)


async def test_an_e_mail_link_session_writes_on_its_members_budget(
    sqlite_url: str, clock: FakeClock
) -> None:
    hub = await start_hub(sqlite_url, clock=clock, **MEMBER_LIMITS)
    try:
        await hub.listing("L1", seller="s1")
        await hub.order("O1", "L1", buyer="b1", seller="s1")
        room = "order:O1"
        app = await hub.client("b1")
        buyer = await hub.app.store.get_user(UserId("b1"))
        assert buyer is not None
        token = Links(hub.config, clock).session_token(buyer, room)
        session = await ParleyClient.connect(hub.ws_url, token, reconnect=False)
        hub.clients.append(session)
        for i in range(3):
            await app.post(room, f"app {i}")
            await session.post(room, f"link {i}")
        # The session is the buyer: the buyer's six are spent, from either.
        assert "member" in await refusal(session, room, "refused link")
        assert "member" in await refusal(app, room, "refused app")
        seller = await hub.client("s1")
        await seller.post(room, "the seller writes on")
        texts = await stored_texts(seller, room)
        assert not [t for t in texts if t.startswith("refused")]
        assert [t for t in texts if t.startswith(("app", "link"))] == sorted(
            [f"app {i}" for i in range(3)] + [f"link {i}" for i in range(3)]
        )
    finally:
        await stop_hub(hub)


# Ephemeral events go first.


async def test_a_lagging_client_goes_without_presence_but_gets_every_message(
    sqlite_url: str,
) -> None:
    bound = 64 * 1024
    hub = await start_hub(
        sqlite_url, send_buffer_bytes=bound, write_burst=10_000, member_write_burst=10_000
    )
    try:
        await hub.listing("L1", seller="s1")
        await hub.order("O1", "L1", buyer="b1", seller="s1")
        order = "order:O1"
        buyer = await hub.client("b1")
        await buyer.subscribe(order)
        known = set(hub.app.hub.conns)
        phone = await raw(hub)  # the buyer's other device, which stops reading
        await request(phone, {"id": 1, "op": "connect", "token": hub.token("b1")})
        await request(phone, {"id": 2, "op": "subscribe", "room": order})
        [phone_conn] = hub.app.hub.conns - known
        phone_conn.transport.get_extra_info("socket").setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024
        )
        phone.transport.pause_reading()
        lagging = bound // TYPING_LAG_FRACTION
        for i in range(500):  # bounded: it lags after a few dozen
            await buyer.post(order, f"{i} {TEXT}")
            if phone_conn.transport.get_write_buffer_size() > lagging:
                break
        assert lagging < phone_conn.transport.get_write_buffer_size() < bound // 2

        seller = await hub.client("s1")
        await seller.subscribe(order)  # the seller arrives: presence, to the buyer's devices
        for _ in range(1000):  # bounded: the buyer's messages, then the presence
            event = await buyer.next_event()
            if event["event"] == "presence":
                break
        assert event == {"event": "presence", "room": order, "user_id": "s1", "online": True}
        last = await seller.post(order, "after presence")

        phone.transport.resume_reading()
        kinds: list[str] = []
        for _ in range(1000):  # bounded: its backlog, then the seller's message
            event = orjson.loads(await asyncio.wait_for(phone.recv(), 10))
            kinds.append(event.get("event", "reply"))
            if event.get("seq") == last["seq"]:
                break
        assert kinds[-1] == "message"
        assert "presence" not in kinds
        assert not phone_conn.closing  # skipped, not closed
        await phone.close()
    finally:
        await stop_hub(hub)


# One stalled reader among 500.

WATCHERS = 499
MESSAGES = 240
FANOUT_TIMEOUT = 10.0  # seconds one message may take to reach all 499; far above the normal


class Fleet:
    """The 499 readers: what each received, in order, and when all had each message."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.seqs: list[list[int]] = [[] for _ in range(size)]
        self._count: dict[int, int] = {}
        self._all: dict[int, asyncio.Event] = {}

    def everyone(self, seq: int) -> asyncio.Event:
        return self._all.setdefault(seq, asyncio.Event())

    async def read(self, index: int, ws: ClientConnection) -> None:
        mine = self.seqs[index]
        async for frame in ws:
            event = orjson.loads(frame)
            if event.get("event") != "message":
                continue
            seq = event["seq"]
            mine.append(seq)
            count = self._count[seq] = self._count.get(seq, 0) + 1
            if count == self.size:
                self.everyone(seq).set()


async def stalled_reader(hub: RunningHub, user: str) -> ClientConnection:
    """Subscribed, then reading paused; a small receive buffer so the kernel
    holds little and the hub's own send buffer soon passes its bound."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", hub.app.ws_port))
    ws = await connect(hub.ws_url, sock=sock, subprotocols=[JSON], compression=None)  # type: ignore[list-item]
    await request(ws, {"id": 1, "op": "connect", "token": hub.token(user)})
    await request(ws, {"id": 2, "op": "subscribe", "room": ROOM})
    ws.transport.pause_reading()
    return ws


async def drain_stalled(ws: ClientConnection) -> tuple[list[int], int, int | None]:
    """Read what the stalled client has yet to read: message seqs, bytes, close code."""
    ws.transport.resume_reading()
    seqs: list[int] = []
    size = 0
    try:
        async with asyncio.timeout(FANOUT_TIMEOUT):
            async for frame in ws:
                size += len(frame)
                event = orjson.loads(frame)
                if event.get("event") == "message":
                    seqs.append(event["seq"])
    except ConnectionClosed:
        pass
    return seqs, size, ws.close_code


async def gather_bounded(coros: list[Awaitable[Any]], batch: int = 50) -> list[Any]:
    out: list[Any] = []
    for i in range(0, len(coros), batch):
        out += await asyncio.gather(*coros[i : i + batch])
    return out


async def test_one_stalled_client_among_500_changes_nothing_for_the_others(
    sqlite_url: str,
) -> None:
    """The 499 get every message, in order, and as fast while the stalled one
    is held as after it is gone; it is closed with 4008 only once past
    ``send_buffer_bytes``, and resumes with ``since`` without losing a message."""
    bound = 64 * 1024
    hub = await start_hub(
        sqlite_url,
        send_buffer_bytes=bound,
        max_connections_per_ip=0,
        write_burst=10_000,
        member_write_burst=10_000,
    )
    sockets: list[ClientConnection] = []
    readers: list[asyncio.Task[None]] = []
    try:
        await hub.listing("L1")
        poster = await hub.client("poster")
        stalled = await stalled_reader(hub, "stalled")
        [stalled_conn] = [c for c in hub.app.hub.conns if c.principal.user_id == "stalled"]
        # On loopback the kernel would take megabytes for it (the send buffer
        # grows with a 64 KiB MSS): keep the kernel's share small, so that what
        # piles up is the hub's, as behind a slow mobile link.
        hub_side = stalled_conn.transport.get_extra_info("socket")
        hub_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)

        async def watcher(i: int) -> ClientConnection:
            ws = await raw(hub)
            await request(ws, {"id": 1, "op": "connect", "token": hub.token(f"w{i}")})
            await request(ws, {"id": 2, "op": "subscribe", "room": ROOM})
            return ws

        sockets = await gather_bounded([watcher(i) for i in range(WATCHERS)])
        fleet = Fleet(WATCHERS)
        readers = [asyncio.create_task(fleet.read(i, ws)) for i, ws in enumerate(sockets)]

        # Lockstep: post one, time until all 499 have it, then the next. No
        # backlog builds on the readers' side, so every figure is comparable.
        fanout: list[float] = []
        closed_after: int | None = None  # messages posted while the hub still held it
        drained: asyncio.Task[tuple[list[int], int, int | None]] | None = None
        for i in range(MESSAGES):
            start = time.perf_counter()
            ack = await poster.post(ROOM, f"{i} {TEXT}")
            await asyncio.wait_for(fleet.everyone(ack["seq"]).wait(), FANOUT_TIMEOUT)
            fanout.append(time.perf_counter() - start)
            if closed_after is None and _closing(stalled_conn):
                closed_after = i + 1
                # It reads again now, within the hub's close timeout: so it sees the code.
                drained = asyncio.create_task(drain_stalled(stalled))
        assert closed_after is not None, "the stalled client was never closed"
        assert drained is not None
        held, after = fanout[: closed_after - 1], fanout[closed_after:]
        assert len(held) >= 20 and len(after) >= 20, (closed_after, MESSAGES)

        # What: every one of the 499 got every message, once, in order.
        expected = list(range(1, MESSAGES + 1))
        for seqs in fleet.seqs:
            assert seqs == expected
        # When: no slower while the stalled one was held than once it was gone.
        assert statistics.median(held) <= 2 * statistics.median(after) + 0.02, (held, after)
        assert _p90(held) <= 2 * _p90(after) + 0.05, (held, after)
        assert max(fanout) < FANOUT_TIMEOUT

        # The stalled one: its backlog first, then 4008, and only past the bound.
        seen, size, code = await drained
        assert code == CloseCode.slow_consumer
        assert size > bound
        assert seen == list(range(1, len(seen) + 1))
        # It resumes with since and loses nothing durable.
        back = await hub.client("stalled")
        resumed = await back.subscribe(ROOM, since=seen[-1])
        assert not resumed.get("reload")
        assert seen + [e["seq"] for e in resumed["missed"]] == expected
    finally:
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()
        await stop_hub(hub)


def _closing(conn: Conn) -> bool:
    return conn.closing


def _p90(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.9)]
