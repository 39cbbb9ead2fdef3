"""A TCP relay between one hub and Redis that a test can cut: a partial network cut.

(The browser tests put the same relay between Chromium and a hub: a phone's
socket dropped by its system.)

On loopback every process reaches Redis over the same interface, so a real
partition between one hub and Redis (while another hub keeps it) needs network
namespaces or firewall rules, which tests cannot assume. The closest faithful
thing: point that one hub at this relay instead of at Redis. The relay runs its
own event loop in a thread, so the test's loop (and blocking calls in it)
never hold it up. Two kinds of cut:

- ``cut_reset()``: every relayed connection is reset (RST to the hub) and new
  connections are reset as soon as they are accepted, until ``heal()``: the
  hub sees errors at once, as when the route to Redis is refused.
- ``cut_silent()``: connections stay open but nothing passes, either way,
  until ``heal()``, when what was held passes on: a partition that heals
  before TCP gives up, seen by the hub as a Redis that stopped answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

CHUNK = 64 * 1024


class CuttableLink:
    def __init__(self, target_port: int, *, host: str = "127.0.0.1") -> None:
        self._host = host
        self._target_port = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._transports: set[asyncio.WriteTransport] = set()
        self._refusing = False
        self._flowing: asyncio.Event | None = None
        self.port = 0
        self.accepted = 0  # connections the hub made through the relay
        self.reset = 0  # connections reset by a cut

    @property
    def url(self) -> str:
        return f"redis://{self._host}:{self.port}/0"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()

    def cut_reset(self) -> None:
        self._call(self._cut_reset)

    def cut_silent(self) -> None:
        self._call(self._cut_silent)

    def heal(self) -> None:
        self._call(self._heal)

    def __enter__(self) -> CuttableLink:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, action: Callable[[], None]) -> None:
        async def run() -> None:
            action()

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server = await asyncio.start_server(self._relay, self._host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        self._cut_reset()
        # Let every relay end (their sockets are reset) before the loop stops,
        # rather than leave them to be collected from a closed loop.
        current = asyncio.current_task()
        relays = [t for t in asyncio.all_tasks() if t is not current]
        for task in relays:
            task.cancel()
        await asyncio.gather(*relays, return_exceptions=True)

    def _cut_reset(self) -> None:
        self._refusing = True
        for transport in list(self._transports):
            self._abort(transport)

    def _cut_silent(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    def _heal(self) -> None:
        assert self._flowing is not None
        self._refusing = False
        self._flowing.set()

    def _abort(self, transport: asyncio.WriteTransport) -> None:
        self._transports.discard(transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger 0: the close sends RST, as a cut route does, not a polite FIN.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        self.reset += 1

    async def _relay(
        self, hub_reader: asyncio.StreamReader, hub_writer: asyncio.StreamWriter
    ) -> None:
        self.accepted += 1
        if self._refusing:
            self._abort(hub_writer.transport)
            return
        try:
            redis_reader, redis_writer = await asyncio.open_connection(
                self._host, self._target_port
            )
        except OSError:
            self._abort(hub_writer.transport)
            return
        pair = (hub_writer.transport, redis_writer.transport)
        self._transports.update(pair)
        pumps = [
            asyncio.ensure_future(self._pump(hub_reader, redis_writer)),
            asyncio.ensure_future(self._pump(redis_reader, hub_writer)),
        ]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for transport in pair:  # one side ended: so does the other
                if transport in self._transports:
                    self._transports.discard(transport)
                    transport.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            await self._flowing.wait()  # a silent cut holds the bytes here
            if writer.transport.is_closing():
                return
            writer.write(data)
            await writer.drain()
