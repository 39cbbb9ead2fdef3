"""The two encodings of protocol v1, and the prebuilt server frames the hub broadcasts."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import orjson
import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from parley.protocol.codec import (
    CODECS,
    JSON,
    JSON_SUBPROTOCOL,
    MSGPACK,
    MSGPACK_SUBPROTOCOL,
    SUBPROTOCOLS,
    Codec,
    server_frame,
)
from parley.protocol.errors import ErrorCode, ProtocolError

EVENT: dict[str, Any] = {
    "event": "message",
    "room": "listing:42",
    "seq": 2**40,
    "kind": "comment",
    "author": {"id": "u1", "name": "Zoé"},
    "text": "Encore disponible ? 👀 \u00a0«oui»",
    "ts": 1_800_000_000_000,
    "data": {"fields": ["title", "price"], "count": 0, "flag": True, "none": None},
}


def parse_frame(data: bytes) -> Frame:
    """Parse one server-to-client frame with websockets' own parser; no bytes may be left."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False, max_size=None)
    try:
        next(parser)
    except StopIteration as done:
        frame: Frame = done.value
    else:
        raise AssertionError("the frame is incomplete")
    assert not reader.buffer, "bytes left over after the frame"
    return frame


def refused(codec: Codec, frame: str | bytes) -> ErrorCode:
    with pytest.raises(ProtocolError) as info:
        codec.decode(frame)
    return info.value.code


# Subprotocols.


def test_two_subprotocols_pick_the_codec() -> None:
    assert SUBPROTOCOLS == (JSON_SUBPROTOCOL, MSGPACK_SUBPROTOCOL)
    assert JSON_SUBPROTOCOL == "parley.v1.json"
    assert MSGPACK_SUBPROTOCOL == "parley.v1.msgpack"
    assert CODECS[JSON_SUBPROTOCOL] is JSON
    assert CODECS[MSGPACK_SUBPROTOCOL] is MSGPACK
    assert JSON.text_frames
    assert not MSGPACK.text_frames


# Round trips.


def test_json_round_trip() -> None:
    encoded = JSON.encode(EVENT)
    assert orjson.loads(encoded) == EVENT
    assert JSON.decode(encoded.decode("utf-8")) == EVENT


def test_msgpack_round_trip() -> None:
    encoded = MSGPACK.encode(EVENT)
    assert msgpack.unpackb(encoded, raw=False) == EVENT
    assert MSGPACK.decode(encoded) == EVENT


def test_msgpack_strings_are_str_type_and_bytes_are_bin_type() -> None:
    # A widget's MessagePack library must see strings as strings.
    assert MSGPACK.encode("a") == b"\xa1a"
    assert MSGPACK.encode(b"a") == b"\xc4\x01a"


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=lambda c: c.subprotocol)
def test_a_request_decodes_to_the_same_object_in_both_encodings(codec: Codec) -> None:
    request = {"id": 7, "op": "post", "room": "listing:42", "text": "Hi", "client_msg_id": "c1"}
    encoded = codec.encode(request)
    frame: str | bytes = encoded.decode("utf-8") if codec.text_frames else encoded
    assert codec.decode(frame) == request


# Bad frames.


def test_text_frame_on_msgpack_is_bad_encoding() -> None:
    assert refused(MSGPACK, '{"id": 1, "op": "ping"}') is ErrorCode.bad_encoding


def test_binary_frame_on_json_is_bad_encoding() -> None:
    assert refused(JSON, b'{"id": 1, "op": "ping"}') is ErrorCode.bad_encoding


@pytest.mark.parametrize(
    "frame",
    ["", "{", '{"id": 1,}', "[1,]", '{"id": 1} x', "NaN", "{'id': 1}", "\ud800"],
    ids=repr,
)
def test_invalid_json_is_bad_frame(frame: str) -> None:
    assert refused(JSON, frame) is ErrorCode.bad_frame


_PING = msgpack.packb({"id": 1, "op": "ping"}, use_bin_type=True)


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",  # never used
        _PING[:-1],  # truncated
        _PING[:1],
        _PING + _PING,  # two objects in one frame
        msgpack.packb(msgpack.ExtType(1, b"xy")),  # ext types mean nothing here
        msgpack.packb({1: "int key"}),
        b"\x91" * 5000 + b"\x00",  # nested too deep
    ],
    ids=["empty", "c1", "truncated", "header-only", "extra-data", "ext", "int-key", "deep"],
)
def test_invalid_msgpack_is_bad_frame(frame: bytes) -> None:
    assert refused(MSGPACK, frame) is ErrorCode.bad_frame


@pytest.mark.parametrize(
    "frame",
    [
        b"\x81\xa2op\xa2\xff\xfe",  # {"op": <str with invalid UTF-8>}
        b"\x81\xa2\xc3\x28\x01",  # a map key with invalid UTF-8
        b"\x91\xa1\x80",  # a lone continuation byte
    ],
    ids=["value", "key", "continuation"],
)
def test_msgpack_string_with_invalid_utf8_is_bad_encoding(frame: bytes) -> None:
    assert refused(MSGPACK, frame) is ErrorCode.bad_encoding


def test_decoding_errors_keep_the_engines_exception_out() -> None:
    with pytest.raises(ProtocolError) as info:
        MSGPACK.decode(_PING[:-1])
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# Server frames (RFC 6455 section 5.2).

HEADER_SIZE = {0: 2, 125: 2, 126: 4, 65535: 4, 65536: 10}


@pytest.mark.parametrize("size", sorted(HEADER_SIZE))
@pytest.mark.parametrize("text", [True, False], ids=["text", "binary"])
def test_server_frame_is_a_valid_unmasked_frame(size: int, text: bool) -> None:
    payload = (b"abcdefghij" * (size // 10 + 1))[:size]
    data = server_frame(payload, text=text)
    assert len(data) == HEADER_SIZE[size] + size
    frame = parse_frame(data)
    assert frame.fin
    assert not (frame.rsv1 or frame.rsv2 or frame.rsv3)
    assert frame.opcode is (Opcode.TEXT if text else Opcode.BINARY)
    assert bytes(frame.data) == payload


@pytest.mark.parametrize(
    ("size", "length_bytes"),
    [
        (0, b"\x00"),
        (125, b"\x7d"),
        (126, b"\x7e" + struct.pack("!H", 126)),
        (65535, b"\x7e" + struct.pack("!H", 65535)),
        (65536, b"\x7f" + struct.pack("!Q", 65536)),
    ],
)
def test_server_frame_uses_the_shortest_length_encoding(size: int, length_bytes: bytes) -> None:
    data = server_frame(b"\x00" * size, text=False)
    assert data[0] == 0x82  # FIN + binary
    assert data[1 : 1 + len(length_bytes)] == length_bytes  # mask bit clear
    assert len(data) == 1 + len(length_bytes) + size


@pytest.mark.parametrize("codec", [JSON, MSGPACK], ids=lambda c: c.subprotocol)
def test_codec_frame_carries_the_encoded_event(codec: Codec) -> None:
    frame = parse_frame(codec.frame(EVENT))
    assert frame.opcode is (Opcode.TEXT if codec.text_frames else Opcode.BINARY)
    payload = bytes(frame.data)
    assert codec.decode(payload.decode("utf-8") if codec.text_frames else payload) == EVENT
