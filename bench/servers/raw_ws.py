"""The floor: a raw ``websockets`` + ``uvloop`` server that only broadcasts.

No authentication, no storage, no validation. A client sends
``{"op":"join","room":R}`` (answered with ``{"op":"joined"}``), then frames
``{"op":"msg","room":R,...}``; each is parsed once to find its room and the
received bytes are handed unchanged to ``broadcast()`` for everyone in that
room, sender included. This is what the library itself costs per delivery.

Run: ``python bench/servers/raw_ws.py PORT``; prints ``listening`` when ready.
"""

from __future__ import annotations

import asyncio
import signal
import sys

import orjson
import uvloop
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

JOINED = b'{"op":"joined"}'

rooms: dict[str, set[ServerConnection]] = {}


async def handler(ws: ServerConnection) -> None:
    joined: list[str] = []
    try:
        while True:
            frame = await ws.recv(decode=False)
            msg = orjson.loads(frame)
            room = msg["room"]
            if msg["op"] == "join":
                rooms.setdefault(room, set()).add(ws)
                joined.append(room)
                await ws.send(JOINED, text=True)
            else:
                members = rooms.get(room)
                if members:
                    broadcast(members, frame, text=True)
    except ConnectionClosed:
        pass
    finally:
        for room in joined:
            members = rooms.get(room)
            if members is not None:
                members.discard(ws)
                if not members:
                    del rooms[room]


async def main(port: int) -> None:
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # compression=None: the load generator offers none either, and Socket.IO 4
    # has per-message deflate off by default; backlog sized for connect bursts.
    async with serve(handler, "127.0.0.1", port, compression=None, backlog=1024):
        print("listening", flush=True)
        await stop


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
