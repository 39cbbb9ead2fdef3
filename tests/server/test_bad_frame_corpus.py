"""A corpus of bad frames and requests against a live hub, on both stores and both
encodings: each gets its documented code or close code (protocol/README.md), and the
members who behave keep being served while it runs.

The corpus is a table: frame-level cases written out by hand (not JSON, not an object,
the wrong frame type, bad ids, unknown ops, ...) and field-level cases generated from
one valid example per op: each required field missing, an extra field, each field of
the wrong type, each field out of range. Frames the Python client would not send go
through raw ``websockets`` connections.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import msgpack
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from parley.protocol.errors import CloseCode
from parley.protocol.messages import OPS, Limits, parse_request
from tests.server.conftest import RunningHub

JSON: Final = "parley.v1.json"
MSGPACK: Final = "parley.v1.msgpack"
ENCODINGS: Final = {JSON: "json", MSGPACK: "msgpack"}
REPLY_TIMEOUT: Final = 10.0  # seconds one reply may take at most
SERVICE_EVERY: Final = 8  # a well-behaved post checked after every so many bad frames


@dataclass(frozen=True)
class Case:
    name: str
    code: str  # the error code of the reply
    obj: Any = None  # sent encoded in the connection's encoding...
    json: str | bytes | None = None  # ...or, on parley.v1.json, this frame as is
    msgpack: bytes | str | None = None  # ...and on parley.v1.msgpack, this one
    rid: int | None = None  # the id the reply echoes

    def frame(self, subprotocol: str) -> str | bytes | None:
        """The frame to send on ``subprotocol``; None: the case is of the other encoding."""
        raw = self.json if subprotocol == JSON else self.msgpack
        if raw is not None:
            return raw
        if self.obj is None:
            return None
        try:
            if subprotocol == JSON:
                return orjson.dumps(self.obj).decode()
            packed: bytes = msgpack.packb(self.obj, use_bin_type=True)
            return packed
        except (TypeError, OverflowError, orjson.JSONEncodeError):
            return None  # an integer this encoding cannot carry


def _nested(depth: int) -> bytes:
    return b"\x91" * depth + b"\xc0"


# Frames that are wrong as a whole, or whose envelope is.
FRAME_CASES: Final = [
    Case("invalid JSON", "bad_frame", json="{not json", msgpack=b"\xc1"),
    Case("empty frame", "bad_frame", json="", msgpack=b""),
    Case("JSON with trailing data", "bad_frame", json='{"id": 1, "op": "ping"} {}'),
    Case("MessagePack with trailing data", "bad_frame", msgpack=msgpack.packb({"id": 1}) + b"\xc0"),
    Case("truncated MessagePack", "bad_frame", msgpack=msgpack.packb({"id": 1, "op": "ping"})[:-2]),
    Case("JSON NaN literal", "bad_frame", json='{"id": NaN, "op": "ping"}'),
    Case("JSON lone surrogate escape", "bad_frame", json='{"id": 1, "op": "\\ud800"}'),
    Case("JSON nested too deep", "bad_frame", json="[" * 2000 + "]" * 2000),
    Case("MessagePack nested too deep", "bad_frame", msgpack=_nested(5000)),
    Case("MessagePack ext type", "bad_frame", msgpack=b"\xd4\x05\x00"),
    Case("MessagePack empty ext type", "bad_frame", msgpack=b"\xc7\x00\x05"),
    Case(
        "MessagePack ext type inside",
        "bad_frame",
        msgpack=b"\x82\xa2id\x01\xa2op" + b"\xc7\x00\x05",
    ),
    Case("MessagePack bin map key", "bad_frame", msgpack=msgpack.packb({b"id": 1, b"op": b"ping"})),
    Case("MessagePack int map key", "bad_frame", msgpack=b"\x81\x01\x02"),
    Case(
        "MessagePack str of invalid UTF-8",
        "bad_encoding",
        msgpack=b"\x82\xa2id\x07\xa2op\xa2\xff\xfe",
    ),
    Case("MessagePack str of a surrogate", "bad_encoding", msgpack=b"\x81\xa2op\xa3\xed\xa0\x80"),
    Case("array", "bad_frame", obj=[1, 2]),
    Case("number", "bad_frame", obj=42),
    Case("string", "bad_frame", obj="ping"),
    Case("null", "bad_frame", obj=None, json="null", msgpack=b"\xc0"),
    Case("true", "bad_frame", obj=True),
    Case("binary frame on json", "bad_encoding", json=b'{"id": 5, "op": "ping"}'),
    Case("text frame on msgpack", "bad_encoding", msgpack='{"id": 5, "op": "ping"}'),
    Case(
        "bin op on msgpack", "bad_request", msgpack=msgpack.packb({"id": 5, "op": b"ping"}), rid=5
    ),
    # Ids.
    Case("missing id", "missing_id", obj={"op": "ping"}),
    Case("null id", "missing_id", obj={"id": None, "op": "ping"}),
    Case("negative id", "missing_id", obj={"id": -1, "op": "ping"}),
    Case("id past 2^53-1", "missing_id", obj={"id": 2**53, "op": "ping"}),
    Case("id of 2^64-1", "missing_id", obj={"id": 2**64 - 1, "op": "ping"}),
    Case("id over 64 bits", "missing_id", json='{"id": 18446744073709551616, "op": "ping"}'),
    Case("float id", "missing_id", obj={"id": 1.0, "op": "ping"}),
    Case("float id, fractional", "missing_id", obj={"id": 1.5, "op": "ping"}),
    Case("bool id", "missing_id", obj={"id": True, "op": "ping"}),
    Case("string id", "missing_id", obj={"id": "7", "op": "ping"}),
    Case("list id", "missing_id", obj={"id": [7], "op": "ping"}),
    Case("bin id", "missing_id", msgpack=msgpack.packb({"id": b"\x07", "op": "ping"})),
    Case("huge exponent id", "missing_id", json='{"id": 1e300, "op": "ping"}'),
    Case("infinite id", "bad_frame", json='{"id": 1e999, "op": "ping"}'),
    # Ops.
    Case("missing op", "bad_request", obj={"id": 7}, rid=7),
    Case("null op", "bad_request", obj={"id": 7, "op": None}, rid=7),
    Case("number op", "bad_request", obj={"id": 7, "op": 3}, rid=7),
    Case("list op", "bad_request", obj={"id": 7, "op": ["ping"]}, rid=7),
    Case("unknown op", "unknown_op", obj={"id": 7, "op": "teleport"}, rid=7),
    Case("op in capitals", "unknown_op", obj={"id": 7, "op": "PING"}, rid=7),
    Case("empty op", "unknown_op", obj={"id": 7, "op": ""}, rid=7),
    Case("long unknown op", "unknown_op", obj={"id": 7, "op": "x" * 5000}, rid=7),
    Case("op with a NUL", "unknown_op", obj={"id": 7, "op": "ping\x00"}, rid=7),
    Case(
        "oversized text",
        "too_large",
        obj={"id": 8, "op": "post", "room": "listing:L1", "text": "x" * 4001, "client_msg_id": "c"},
        rid=8,
    ),
    Case(
        "oversized text in an edit",
        "too_large",
        obj={"id": 8, "op": "edit", "room": "listing:L1", "seq": 1, "text": "é" * 4001},
        rid=8,
    ),
    Case(
        "connect twice",
        "already_connected",
        obj={"id": 9, "op": "connect", "token": "t"},
        rid=9,
    ),
]

# One valid request per op: each field-level case changes one thing in it.
VALID: Final[dict[str, dict[str, Any]]] = {
    "connect": {"token": "t", "since": 0, "epoch": "e"},
    "subscribe": {"room": "listing:L1", "since": 0, "epoch": "e"},
    "unsubscribe": {"room": "listing:L1"},
    "history": {"room": "listing:L1", "before": 5, "limit": 10},
    "post": {"room": "listing:L1", "text": "hi", "client_msg_id": "c1"},
    "edit": {"room": "listing:L1", "seq": 1, "text": "hi"},
    "delete": {"room": "listing:L1", "seq": 1},
    "ping": {},
    "notifications": {"before": 5, "limit": 10},
    "notifications_read": {"up_to": 0},
    "offers_enable": {"listing": "L1", "enabled": True},
    "offer_make": {"listing": "L1", "amount": 100},
    "offer_respond": {"offer": "of1", "action": "counter", "amount": 100},
    "likers": {"listing": "L1", "before": 5, "limit": 10},
    "offer_to_likers": {"listing": "L1", "amount": 100, "to": ["u1"]},
    "offers": {"listing": "L1", "state": "open", "limit": 10},
    "read": {"room": "order:O1", "seq": 0},
    "conversations": {"role": "sales", "before": 5, "limit": 10},
    "typing": {"room": "order:O1"},
    "block": {"user": "u2"},
    "unblock": {"user": "u2"},
    "blocks": {},
    "mute": {"room": "listing:L1"},
    "unmute": {"room": "order:O1"},
    "mutes": {},
    "report": {"room": "listing:L1", "seq": 1, "reason": "spam", "note": "n"},
}
OPTIONAL: Final = {  # fields whose null means absent
    "since", "epoch", "before", "limit", ("offer_respond", "amount"), ("offers", "listing"),
    ("offers", "state"), ("report", "note"),
}  # fmt: skip
NOT_INT: Final = ["1", 1.5, True, [1], {"n": 1}]
NOT_STR: Final = [5, True, ["x"], {"s": "x"}]
BAD_ROOMS: Final = ["user:u1", "listing:", "listing:" + "x" * 65, "listing:a b", "L1", "order"]
BAD_IDS: Final = ["", "a b", "x" * 65, "../etc", "é"]
# Out of range, per field (per op where the range differs): each value -> its code.
OUT_OF_RANGE: Final[dict[str, list[Any]]] = {
    "since": [-1, 2**63],
    "before": [0, -1],
    "limit": [0, 101],
    "seq": [0, -1],
    "up_to": [-1, 2**63],
    "amount": [0, -5, 2**53],
    "room": BAD_ROOMS,
    "listing": BAD_IDS,
    "offer": BAD_IDS,
    "token": ["", "t" * 8193],
    "client_msg_id": ["", "c" * 65],
    "text": ["", "   \n\t"],
    "epoch": ["e" * 65],
    "action": ["haggle", "ACCEPT", ""],
    "state": ["pending", ""],
    "role": ["gifts", ""],
    "to": ["everyone", [], ["u1"] * 101, ["bad id"], [""]],
    "user": BAD_IDS,
    "reason": ["rude", "SPAM", ""],
    "note": ["", "x" * 501],
}
OUT_OF_RANGE_PER_OP: Final[dict[tuple[str, str], list[Any]]] = {
    ("conversations", "limit"): [0, 51],
    ("read", "seq"): [-1],
    ("read", "room"): ["listing:L1", *BAD_ROOMS],
    ("typing", "room"): ["listing:L1", *BAD_ROOMS],
}
# Combinations a field alone does not show.
COMBINATIONS: Final[list[tuple[str, dict[str, Any]]]] = [
    ("accept with an amount", {"op": "offer_respond", "offer": "of1", "action": "accept",
                               "amount": 100}),
    ("counter without an amount", {"op": "offer_respond", "offer": "of1", "action": "counter"}),
    ("withdraw with an amount", {"op": "offer_respond", "offer": "of1", "action": "withdraw",
                                 "amount": 5}),
]  # fmt: skip


def _wrong_types(op: str, field: str, value: Any) -> list[Any]:
    if field == "to":
        return ["u1", 5, {"u1": 1}, [5], [None]]
    if field == "enabled":
        return [1, 0, "true", None, []]
    bad = list(NOT_INT) if type(value) is int else list(NOT_STR)
    if field not in OPTIONAL and (op, field) not in OPTIONAL:
        bad.append(None)
    return bad


def field_cases() -> Iterator[Case]:
    rid = 1000
    for op, valid in VALID.items():
        for field, value in valid.items():
            rid += 1
            required = field not in OPTIONAL and (op, field) not in OPTIONAL
            if required:
                without = {k: v for k, v in valid.items() if k != field}
                yield Case(f"{op} without {field}", "bad_request",
                           obj={"id": rid, "op": op, **without}, rid=rid)  # fmt: skip
            for bad in _wrong_types(op, field, value):
                rid += 1
                yield Case(f"{op} {field}={bad!r:.20}", "bad_request",
                           obj={"id": rid, "op": op, **valid, field: bad}, rid=rid)  # fmt: skip
            for bad in OUT_OF_RANGE_PER_OP.get((op, field), OUT_OF_RANGE.get(field, [])):
                rid += 1
                yield Case(f"{op} {field}={bad!r:.20}", "bad_request",
                           obj={"id": rid, "op": op, **valid, field: bad}, rid=rid)  # fmt: skip
        for extra, value in (("bogus", 1), ("ID", 1), ("op ", "x"), ("", None)):
            rid += 1
            yield Case(f"{op} with {extra!r}", "bad_request",
                       obj={"id": rid, "op": op, **valid, extra: value}, rid=rid)  # fmt: skip
    for name, obj in COMBINATIONS:
        rid += 1
        yield Case(name, "bad_request", obj={"id": rid, **obj}, rid=rid)


CORPUS: Final = [*FRAME_CASES, *field_cases()]


def test_the_corpus_covers_every_op_and_each_valid_example_is_valid() -> None:
    assert set(VALID) == OPS
    for op, fields in VALID.items():
        parse_request({"id": 1, "op": op, **fields}, Limits())
    assert len(CORPUS) > 400
    assert len({case.name for case in CORPUS}) == len(CORPUS)


# A live hub.


async def raw(hub: RunningHub, subprotocol: str) -> ClientConnection:
    return await connect(hub.ws_url, subprotocols=[subprotocol], compression=None)  # type: ignore[list-item]


def encode(obj: Any, subprotocol: str) -> str | bytes:
    if subprotocol == JSON:
        return orjson.dumps(obj).decode()
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


async def reply_to(ws: ClientConnection, subprotocol: str) -> dict[str, Any]:
    """The next reply on ``ws``, events skipped."""
    while True:
        frame = await asyncio.wait_for(ws.recv(), REPLY_TIMEOUT)
        message = orjson.loads(frame) if isinstance(frame, str) else msgpack.unpackb(frame)
        if "event" not in message:
            return dict(message)


async def raw_connected(hub: RunningHub, user: str, subprotocol: str) -> ClientConnection:
    ws = await raw(hub, subprotocol)
    await ws.send(encode({"id": 1, "op": "connect", "token": hub.token(user)}, subprotocol))
    assert "result" in await reply_to(ws, subprotocol)
    return ws


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the hub closes ``ws``; the close code it sent."""
    try:
        async with asyncio.timeout(REPLY_TIMEOUT):
            while True:
                await ws.recv()
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


class Service:
    """Two members who behave, in the room the barrage names: one posts, one reads."""

    def __init__(self, hub: RunningHub, subprotocol: str) -> None:
        self.hub = hub
        self.encoding = ENCODINGS[subprotocol]
        self.turns: asyncio.Queue[bool] = asyncio.Queue()
        self.seqs: list[int] = []

    async def run(self) -> None:
        poster = await self.hub.client("poster", encoding=self.encoding)
        reader = await self.hub.client("reader", encoding=self.encoding)
        await reader.subscribe("listing:L1")
        while await self.turns.get():  # False: the barrage is over
            n = len(self.seqs)
            posted = await poster.post("listing:L1", f"still served {n}")
            event = await reader.next_event(REPLY_TIMEOUT, room="listing:L1")
            assert (event["seq"], event["text"]) == (posted["seq"], f"still served {n}")
            self.seqs.append(posted["seq"])


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_the_corpus_gets_its_codes_while_others_are_served(
    hub: RunningHub, subprotocol: str
) -> None:
    await hub.listing("L1", seller="s1")
    await hub.order("O1", "L1", buyer="b1", seller="s1")
    service = Service(hub, subprotocol)
    serving = asyncio.create_task(service.run())
    ws = await raw_connected(hub, "u1", subprotocol)
    sent = 0
    mismatches: list[str] = []
    for case in CORPUS:
        frame = case.frame(subprotocol)
        if frame is None:
            continue
        await ws.send(frame)
        reply = await reply_to(ws, subprotocol)
        expected_id = case.rid
        got = (reply.get("error") or {}).get("code"), reply.get("id")
        if got != (case.code, expected_id):
            mismatches.append(f"{case.name}: {got} != {(case.code, expected_id)}")
        sent += 1
        # A request served resets the count of bad frames in a row (under max_bad_frames).
        if sent % (hub.config.max_bad_frames - 2) == 0:
            await ws.send(encode({"id": 1, "op": "ping"}, subprotocol))
            assert "result" in await reply_to(ws, subprotocol)
        if sent % SERVICE_EVERY == 0:
            service.turns.put_nowait(True)
    service.turns.put_nowait(False)
    await asyncio.wait_for(serving, REPLY_TIMEOUT * 4)
    assert not mismatches, "\n".join(mismatches)
    assert sent > 400 and len(service.seqs) == sent // SERVICE_EVERY
    # Nothing a refused frame carried was stored; everything served was.
    reader = await hub.client("auditor")
    history = (await reader.history("listing:L1", limit=100))["messages"]
    assert sorted(m["seq"] for m in history) == sorted(service.seqs)[-100:]
    assert {m["author"]["id"] for m in history} == {"poster"}


# Cases that close the connection: each on its own, with a member served beside it.


async def served_beside(hub: RunningHub, subprotocol: str) -> tuple[Any, Any]:
    await hub.listing("L1", seller="s1")
    poster = await hub.client("poster", encoding=ENCODINGS[subprotocol])
    reader = await hub.client("reader", encoding=ENCODINGS[subprotocol])
    await reader.subscribe("listing:L1")
    return poster, reader


async def still_served(poster: Any, reader: Any, text: str) -> None:
    posted = await poster.post("listing:L1", text)
    event = await reader.next_event(REPLY_TIMEOUT, room="listing:L1")
    assert (event["seq"], event["text"]) == (posted["seq"], text)


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_a_frame_over_max_frame_bytes_closes_with_1009(
    hub: RunningHub, subprotocol: str
) -> None:
    poster, reader = await served_beside(hub, subprotocol)
    ws = await raw_connected(hub, "u1", subprotocol)
    big = {"id": 2, "op": "post", "room": "listing:L1", "text": "x" * hub.config.max_frame_bytes,
           "client_msg_id": "c"}  # fmt: skip
    await ws.send(encode(big, subprotocol))
    await still_served(poster, reader, "beside a big frame")
    assert await close_code(ws) == CloseCode.message_too_big


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_a_fragmented_message_over_max_frame_bytes_closes_with_1009(
    hub: RunningHub, subprotocol: str
) -> None:
    poster, reader = await served_beside(hub, subprotocol)
    ws = await raw_connected(hub, "u1", subprotocol)
    piece = "x" * (hub.config.max_frame_bytes // 4)
    pieces = (piece if subprotocol == JSON else piece.encode() for _ in range(5))
    await ws.send(pieces)
    await still_served(poster, reader, "beside a fragmented message")
    assert await close_code(ws) == CloseCode.message_too_big


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_invalid_utf8_in_a_text_frame_closes_with_1007(
    hub: RunningHub, subprotocol: str
) -> None:
    poster, reader = await served_beside(hub, subprotocol)
    ws = await raw_connected(hub, "u1", subprotocol)
    ws.protocol.send_frame(Frame(Opcode.TEXT, b'{"id": 2, "op": "ping\xff"}'))
    ws.send_data()
    await still_served(poster, reader, "beside bad UTF-8")
    assert await close_code(ws) == CloseCode.invalid_payload


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
@pytest.mark.parametrize("connected", [True, False], ids=["after connect", "before connect"])
async def test_bad_frames_in_a_row_close_with_4003(
    hub: RunningHub, subprotocol: str, connected: bool
) -> None:
    poster, reader = await served_beside(hub, subprotocol)
    ws = await (raw_connected(hub, "u1", subprotocol) if connected else raw(hub, subprotocol))
    bad = [case.frame(subprotocol) for case in FRAME_CASES[:40]]
    bad_frames = [frame for frame in bad if frame is not None]
    for n in range(hub.config.max_bad_frames):
        await ws.send(bad_frames[n % len(bad_frames)])
        if n < hub.config.max_bad_frames - 1:
            reply = await reply_to(ws, subprotocol)
            assert reply["error"]["code"] in ("bad_frame", "bad_encoding", "missing_id")
    await still_served(poster, reader, "beside a barrage")
    assert await close_code(ws) == CloseCode.too_many_errors


@pytest.mark.parametrize("subprotocol", [JSON, MSGPACK])
async def test_ops_before_connect_are_not_connected_then_connect_works(
    hub: RunningHub, subprotocol: str
) -> None:
    poster, reader = await served_beside(hub, subprotocol)
    ws = await raw(hub, subprotocol)
    for n, (op, fields) in enumerate(sorted(VALID.items())):
        if op == "connect":
            continue
        if n % (hub.config.max_bad_frames - 1) == 0:  # before connect, every refusal counts
            await ws.close()
            ws = await raw(hub, subprotocol)
        await ws.send(encode({"id": 100 + n, "op": op, **fields}, subprotocol))
        reply = await reply_to(ws, subprotocol)
        assert (reply["error"]["code"], reply["id"]) == ("not_connected", 100 + n), op
    await ws.send(encode({"id": 2, "op": "connect", "token": hub.token("u1")}, subprotocol))
    assert (await reply_to(ws, subprotocol))["result"]["user"]["id"] == "u1"
    await ws.send(encode({"id": 3, "op": "connect", "token": hub.token("u1")}, subprotocol))
    reply = await reply_to(ws, subprotocol)
    assert (reply["error"]["code"], reply["id"]) == ("already_connected", 3)
    await still_served(poster, reader, "beside early ops")
