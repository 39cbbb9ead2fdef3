"""Hostile and broken clients: each gets its documented code, and nobody else notices."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import jwt
import msgpack
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from parley.protocol.errors import CloseCode, ParleyError
from tests.server.conftest import RunningHub
from tests.support.hubproc import SECRET

JSON = "parley.v1.json"
MSGPACK = "parley.v1.msgpack"


async def raw(hub: RunningHub, subprotocol: str = JSON) -> ClientConnection:
    return await connect(hub.ws_url, subprotocols=[subprotocol], compression=None)  # type: ignore[list-item]


async def raw_connected(hub: RunningHub, user: str, subprotocol: str = JSON) -> ClientConnection:
    ws = await raw(hub, subprotocol)
    await send(ws, {"id": 1, "op": "connect", "token": hub.token(user)}, subprotocol)
    assert "result" in await recv(ws, subprotocol)
    return ws


async def send(ws: ClientConnection, obj: Any, subprotocol: str = JSON) -> None:
    if subprotocol == JSON:
        await ws.send(orjson.dumps(obj).decode())
    else:
        await ws.send(msgpack.packb(obj))


async def recv(ws: ClientConnection, subprotocol: str = JSON) -> Any:
    frame = await ws.recv()
    return orjson.loads(frame) if subprotocol == JSON else msgpack.unpackb(frame)


async def close_code(ws: ClientConnection) -> int | None:
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


# (name, subprotocol, frame to send, expected error code, expected echoed id)
BAD_FRAMES: list[tuple[str, str, str | bytes, str, int | None]] = [
    ("invalid JSON", JSON, "{not json", "bad_frame", None),
    ("JSON array", JSON, "[1, 2]", "bad_frame", None),
    ("JSON scalar", JSON, "42", "bad_frame", None),
    ("binary frame on json", JSON, b'{"id": 5, "op": "ping"}', "bad_encoding", None),
    ("invalid MessagePack", MSGPACK, b"\xc1\xc1\xc1", "bad_frame", None),
    (
        "truncated MessagePack",
        MSGPACK,
        msgpack.packb({"id": 1, "op": "ping"})[:-2],
        "bad_frame",
        None,
    ),
    ("text frame on msgpack", MSGPACK, '{"id": 5, "op": "ping"}', "bad_encoding", None),
    ("msgpack bad UTF-8", MSGPACK, b"\x82\xa2id\x07\xa2op\xa2\xff\xfe", "bad_encoding", None),
    ("missing id", JSON, '{"op": "ping"}', "missing_id", None),
    ("string id", JSON, '{"id": "7", "op": "ping"}', "missing_id", None),
    ("unknown op", JSON, '{"id": 7, "op": "teleport"}', "unknown_op", 7),
    ("op of wrong type", JSON, '{"id": 7, "op": 3}', "bad_request", 7),
    ("unknown field", JSON, '{"id": 7, "op": "ping", "x": 1}', "bad_request", 7),
    (
        "room of wrong type",
        JSON,
        '{"id": 8, "op": "subscribe", "room": 12}',
        "bad_request",
        8,
    ),
    (
        "since of wrong type",
        JSON,
        '{"id": 8, "op": "subscribe", "room": "listing:L1", "since": "3"}',
        "bad_request",
        8,
    ),
    (
        "text of wrong type",
        MSGPACK,
        msgpack.packb(
            {"id": 9, "op": "post", "room": "listing:L1", "text": 5, "client_msg_id": "a"}
        ),
        "bad_request",
        9,
    ),
    (
        "text over the limit",
        JSON,
        orjson.dumps(
            {"id": 10, "op": "post", "room": "listing:L1", "text": "x" * 4001, "client_msg_id": "a"}
        ).decode(),
        "too_large",
        10,
    ),
    ("connect again", JSON, '{"id": 11, "op": "connect", "token": "t"}', "already_connected", 11),
    (
        "somebody else's order room",
        JSON,
        '{"id": 12, "op": "subscribe", "room": "order:O1"}',
        "forbidden",
        12,
    ),
    (
        "order room before the order",
        JSON,
        '{"id": 13, "op": "post", "room": "order:O2", "text": "hi", "client_msg_id": "a"}',
        "order_required",
        13,
    ),
]


@pytest.mark.parametrize(
    ("subprotocol", "frame", "code", "rid"),
    [case[1:] for case in BAD_FRAMES],
    ids=[case[0] for case in BAD_FRAMES],
)
async def test_bad_frames_get_their_code_and_lose_nothing(
    hub: RunningHub, subprotocol: str, frame: str | bytes, code: str, rid: int | None
) -> None:
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    bystander = await hub.client("u2")
    await bystander.subscribe("listing:L1")
    stored = await bystander.post("listing:L1", "a stored comment")
    await bystander.next_event()

    ws = await raw_connected(hub, "u1", subprotocol)
    await ws.send(frame)
    reply = await recv(ws, subprotocol)
    assert reply["error"]["code"] == code
    assert reply["id"] == rid
    # The same connection still works after a bad frame...
    await send(ws, {"id": 99, "op": "ping"}, subprotocol)
    assert "result" in await recv(ws, subprotocol)
    await ws.close()
    # ...and so do the others, with nothing lost.
    await bystander.post("listing:L1", "still here")
    assert (await bystander.next_event())["text"] == "still here"
    history = (await bystander.history("listing:L1"))["messages"]
    assert [m["seq"] for m in history] == [stored["seq"] + 1, stored["seq"]]


async def test_a_frame_over_the_size_limit_closes_with_1009(hub: RunningHub) -> None:
    ws = await raw_connected(hub, "u1")
    await ws.send("x" * (hub.config.max_frame_bytes + 1))
    assert await close_code(ws) == CloseCode.message_too_big


async def test_invalid_utf8_in_a_text_frame_closes_with_1007(hub: RunningHub) -> None:
    ws = await raw_connected(hub, "u1")
    # Bypass the client library's own UTF-8 encoding: a raw text frame.
    from websockets.frames import Frame, Opcode

    ws.protocol.send_frame(Frame(Opcode.TEXT, b'{"id": 1, "op": "\xff"}'))
    ws.send_data()
    assert await close_code(ws) == CloseCode.invalid_payload


async def test_a_client_that_keeps_sending_bad_frames_is_closed_with_4003(
    hub: RunningHub,
) -> None:
    ws = await raw_connected(hub, "u1")
    for _ in range(hub.config.max_bad_frames):
        await ws.send("{nope")
    assert await close_code(ws) == CloseCode.too_many_errors


def _token(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


def _claims(**changes: Any) -> dict[str, Any]:
    claims = {"sub": "u1", "name": "alice", "locale": "fr-CA", "exp": int(time.time()) + 600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _alg_none() -> str:
    import base64

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(obj)).rstrip(b"=").decode()

    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(_claims())}."


# Minted when each test runs, not at collection: a file that runs long after
# collection must still refuse "bad sub" for its sub, not as expired. Each
# refusal names its cause, so one check cannot stand in for another.
BAD_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "expired": (lambda: _token(_claims(exp=int(time.time()) - 3600)), "token expired"),
    "forged signature": (
        lambda: _token(_claims(), key="another-secret-of-at-least-32-bytes!!"),
        "Signature verification failed",
    ),
    "alg none": (_alg_none, "alg value is not allowed"),
    "other algorithm": (
        lambda: _token(_claims(), key=SECRET * 2, algorithm="HS512"),
        "alg value is not allowed",
    ),
    "no exp": (lambda: _token(_claims(exp=None)), '"exp"'),
    "no name": (lambda: _token(_claims(name=None)), '"name"'),
    "bad sub": (lambda: _token(_claims(sub="../../etc")), "sub must be an id"),
    "garbage": (lambda: "not.a.token", "invalid token"),
}


@pytest.mark.parametrize(("mint", "cause"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_bad_tokens_close_with_4001(
    hub: RunningHub, mint: Callable[[], str], cause: str
) -> None:
    ws = await raw(hub)
    await send(ws, {"id": 1, "op": "connect", "token": mint()})
    reply = await recv(ws)
    assert reply["error"]["code"] == "unauthorized"
    assert cause in reply["error"]["message"]
    assert await close_code(ws) == CloseCode.auth_failed


async def test_an_op_before_connect_is_not_connected(hub: RunningHub) -> None:
    await hub.listing("L1")
    ws = await raw(hub)
    await send(
        ws, {"id": 1, "op": "post", "room": "listing:L1", "text": "hi", "client_msg_id": "a"}
    )
    assert (await recv(ws))["error"]["code"] == "not_connected"
    await send(ws, {"id": 2, "op": "connect", "token": hub.token("u1")})
    assert (await recv(ws))["result"]["user"]["id"] == "u1"
    reader = await hub.client("u2")
    assert (await reader.history("listing:L1"))["messages"] == []


async def test_no_connect_frame_in_time_closes_with_4002(sqlite_url: str) -> None:
    from tests.server.conftest import start_hub, stop_hub

    hub = await start_hub(sqlite_url, auth_timeout=0.05)
    try:
        ws = await raw(hub)
        assert await close_code(ws) == CloseCode.auth_timeout
    finally:
        await stop_hub(hub)


@pytest.mark.parametrize("offered", [[], ["chat"], ["parley.v2.json"]])
async def test_a_handshake_offering_no_parley_subprotocol_is_refused(
    hub: RunningHub, offered: list[str]
) -> None:
    with pytest.raises(InvalidStatus) as err:
        await connect(hub.ws_url, subprotocols=offered or None)  # type: ignore[arg-type]
    assert err.value.response.status_code == 400


async def test_a_flooding_client_gets_rate_limited_and_loses_nothing(sqlite_url: str) -> None:
    from tests.server.conftest import start_hub, stop_hub

    hub = await start_hub(sqlite_url, write_burst=5, write_rate=0.001)
    try:
        await hub.listing("L1")
        flooder = await hub.client("u1")
        results = await asyncio.gather(
            *(flooder.post("listing:L1", f"spam {i}") for i in range(8)), return_exceptions=True
        )
        accepted = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if isinstance(r, ParleyError)]
        assert len(accepted) == 5
        assert {e.code for e in refused} == {"rate_limited"}
        # Reads are not limited, and every accepted post is stored.
        history = (await flooder.history("listing:L1"))["messages"]
        assert sorted(m["seq"] for m in history) == sorted(r["seq"] for r in accepted)
        other = await hub.client("u2")
        assert (await other.post("listing:L1", "a member's own budget"))["seq"] == 6
    finally:
        await stop_hub(hub)


async def test_a_burst_of_requests_past_the_in_flight_limit_is_all_answered(
    hub: RunningHub,
) -> None:
    await hub.listing("L1")
    member = await hub.client("u1")
    # Far more than MAX_IN_FLIGHT at once: reading pauses, resumes, and
    # every request gets its own reply.
    replies = await asyncio.gather(
        *(member.history("listing:L1", limit=1) for _ in range(300)),
        *(member.request("ping") for _ in range(300)),
    )
    assert len(replies) == 600
    assert all("messages" in r for r in replies[:300])
    assert all("ts" in r for r in replies[300:])
    assert hub.app.hub.conns and all(c.in_flight == 0 for c in hub.app.hub.conns)
