"""A closed connection is freed by reference counting, with no collection (HubConnection)."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from parley.server.hub import HubConnection


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@pytest.mark.parametrize("abort", [True, False], ids=["tcp-abort", "close-handshake"])
async def test_a_closed_connection_is_freed_without_a_collection(no_gc: None, abort: bool) -> None:
    refs: list[weakref.ref[object]] = []

    async def handler(ws: ServerConnection) -> None:
        refs.extend([weakref.ref(ws), weakref.ref(ws.protocol)])
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass

    async with serve(
        handler, "127.0.0.1", 0, compression=None, create_connection=HubConnection
    ) as server:
        port = server.sockets[0].getsockname()[1]
        for _ in range(5):
            client = await connect(f"ws://127.0.0.1:{port}/", compression=None)
            await client.send("hello")
            if abort:
                client.transport.abort()  # no close frame: parser_exc is an EOFError
            else:
                await client.close()
        for _ in range(50):  # bounded: until the server saw every connection go
            if len(refs) == 10 and not server.connections:
                break
            await asyncio.sleep(0.02)
    await asyncio.sleep(0)
    assert len(refs) == 10
    assert [r() for r in refs] == [None] * 10
