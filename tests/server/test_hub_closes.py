"""Codes no well-behaved session meets, provoked over a real socket: the error
``internal`` (a bug in the hub), and the close codes 1000, 1002, 1011 (the
store unavailable at ``connect``; a ping without pong) and 4001 after
``conflict``. Each is documented in ``protocol/README.md``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from parley.protocol.errors import CloseCode
from parley.server.core.model import Entry
from parley.server.store.sqlite import SqliteStore
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.server.test_hub_bad_input import close_code, raw, raw_connected, recv, send
from tests.support.redis_server import RedisServer

WAIT = 10.0  # seconds anything awaited below may take at most


class StoreWithABug(SqliteStore):
    """A real SQLite store whose ``history`` fails as a bug would: not a
    ``ParleyError``, nothing the hub expects."""

    async def history(self, room: str, before: int | None, limit: int) -> list[Entry]:
        raise ZeroDivisionError("a bug in the store")


async def test_a_bug_serving_an_op_answers_internal_and_the_session_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "parley.sqlite3"
    hub = await start_hub(f"sqlite:///{path}", backend=StoreWithABug(str(path)))
    try:
        await hub.listing("L1")
        ws = await raw_connected(hub, "u1")
        with caplog.at_level(logging.ERROR, logger="parley.hub"):
            await send(ws, {"id": 2, "op": "history", "room": "listing:L1"})
            reply = await recv(ws)
        # The code and a fixed message; the trace is in the hub's log, never on the wire.
        assert reply == {"id": 2, "error": {"code": "internal", "message": "internal error"}}
        assert "a bug in the store" not in str(reply)
        assert any(
            r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError) for r in caplog.records
        )
        # One bug costs one reply: the connection serves the next request.
        await send(ws, {"id": 3, "op": "subscribe", "room": "listing:L1"})
        assert "result" in await recv(ws)
        await ws.close()
    finally:
        await stop_hub(hub)


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A Redis of this test's own: it is stopped on purpose."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


async def test_the_store_unavailable_at_connect_answers_unavailable_then_closes_1011(
    own_redis: RedisServer,
) -> None:
    hub = await start_hub(own_redis.url)
    try:
        known = await raw_connected(hub, "u1")  # connected before: not touched by the refusal
        own_redis.stop()
        ws = await raw(hub)
        await send(ws, {"id": 1, "op": "connect", "token": hub.token("u2")})
        reply = await asyncio.wait_for(recv(ws), WAIT)
        assert reply["id"] == 1 and reply["error"]["code"] == "unavailable"
        assert await asyncio.wait_for(close_code(ws), WAIT) == CloseCode.internal_error
        own_redis.start()
        # Redis back: the same member connects.
        again = await raw(hub)
        await send(again, {"id": 1, "op": "connect", "token": hub.token("u2")})
        assert (await asyncio.wait_for(recv(again), WAIT))["result"]["user"]["id"] == "u2"
        for open_ws in (known, again):
            await open_ws.close()
    finally:
        await stop_hub(hub)


async def test_a_client_that_stops_answering_pings_is_closed_with_1011(sqlite_url: str) -> None:
    # Short configured intervals, not a long sleep: a ping every 100 ms, 500 ms for its
    # pong (ample for a client that reads, even on a busy machine).
    hub = await start_hub(sqlite_url, ping_interval=0.1, ping_timeout=0.5)
    try:
        ws = await raw_connected(hub, "u1")
        other = await raw_connected(hub, "u2")  # reads, so answers pings: stays
        sessions = {conn.principal.user_id: conn.ws.protocol for conn in hub.app.hub.conns}
        ws.transport.pause_reading()  # the pings go unread: no pong
        async with asyncio.timeout(WAIT):
            while sessions["u1"].close_sent is None:
                await asyncio.sleep(0.01)
        assert sessions["u2"].close_sent is None
        ws.transport.resume_reading()  # the hub's close frame waits in the socket
        assert await asyncio.wait_for(close_code(ws), WAIT) == CloseCode.internal_error
        await send(other, {"id": 2, "op": "ping"})
        assert "result" in await recv(other)
        await other.close()
    finally:
        await stop_hub(hub)


def _unmasked_text_frame(text: str) -> bytes:
    """A client frame without its mask: a protocol violation (RFC 6455, 5.1)."""
    payload = text.encode()
    assert len(payload) < 126
    return bytes([0x81, len(payload)]) + payload


async def _close_received(ws: ClientConnection) -> tuple[int | None, str]:
    try:
        async with asyncio.timeout(WAIT):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "")


async def test_a_protocol_violation_is_closed_with_1002(hub: RunningHub) -> None:
    ws = await raw_connected(hub, "u1")
    ws.transport.write(_unmasked_text_frame('{"id": 2, "op": "ping"}'))
    code, reason = await _close_received(ws)
    assert code == CloseCode.protocol_error
    assert "mask" in reason


async def test_a_client_close_is_answered_with_1000_and_frees_the_session(
    hub: RunningHub,
) -> None:
    ws = await raw_connected(hub, "u1")
    await ws.close()  # 1000, normal closure
    sent, received = ws.protocol.close_sent, ws.protocol.close_rcvd
    assert sent is not None and sent.code == CloseCode.normal
    assert received is not None and received.code == CloseCode.normal  # the hub's answer
    async with asyncio.timeout(WAIT):
        while hub.app.hub.conns:
            await asyncio.sleep(0.01)


async def test_a_token_naming_another_members_username_gets_conflict_then_4001(
    hub: RunningHub,
) -> None:
    status, reply = await hub.api("PUT", "/v1/users/u1", {"name": "alice"})
    assert status == 200, reply
    ws = await raw(hub)
    # u9 is unknown to the backend; its token claims alice's name.
    await send(ws, {"id": 1, "op": "connect", "token": hub.token("u9", "Alice")})
    reply: Any = await recv(ws)
    assert reply["id"] == 1 and reply["error"]["code"] == "conflict"
    assert await close_code(ws) == CloseCode.auth_failed
    # Nothing was recorded for u9: the backend can still register it under another name.
    status, _ = await hub.api("PUT", "/v1/users/u9", {"name": "ursula"})
    assert status == 200
