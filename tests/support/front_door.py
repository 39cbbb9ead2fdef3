"""A hub's public address in front of it, as a load balancer or a TLS
terminator gives one in production: a TCP relay on a port of its own.

It binds port 0 before the hub starts, so that ``public_url`` (the e-mail's
links, the landing page's WebSocket URL) can name it; the hub binds port 0
too, and the relay is pointed at the port the hub got. Bytes pass unchanged,
both ways.
"""

from __future__ import annotations

import asyncio
import contextlib

CHUNK = 64 * 1024


class FrontDoor:
    def __init__(self) -> None:
        self.target = 0  # the hub's port, once it has one
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None, "open() first"
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.target, "point the front door at the hub's port first"
        try:
            hub_reader, hub_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, hub_writer}
        try:
            await asyncio.gather(_pipe(reader, hub_writer), _pipe(hub_reader, writer))
        finally:
            self._writers -= {writer, hub_writer}


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        with contextlib.suppress(ConnectionError, RuntimeError):
            writer.close()
