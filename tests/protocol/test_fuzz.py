"""Hostile input, fuzzed: the codecs and the request validator raise nothing but
``ProtocolError`` with a documented code, whatever a client sends.

Properties, each over a few hundred generated inputs (the file runs in seconds):

- ``decode`` of any text or bytes on either encoding returns a value or refuses it
  with ``bad_frame``/``bad_encoding``;
- ``request_id`` of anything is ``None`` or an integer in ``0 .. 2^53-1``;
- ``parse_request`` of any decoded value (and of request-shaped objects whose
  fields hold anything) returns a request or refuses it with a protocol code;
- the two encodings agree: one object sent as JSON or as MessagePack gets the
  same request or the same code.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from parley.protocol.codec import JSON, MSGPACK, Codec
from parley.protocol.errors import ErrorCode, ProtocolError
from parley.protocol.messages import (
    _FIELDS,
    MAX_REQUEST_ID,
    OPS,
    Limits,
    Request,
    parse_request,
    parse_room,
    request_id,
)

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DECODE_CODES = {ErrorCode.bad_frame, ErrorCode.bad_encoding}
# The protocol errors of protocol/README.md ("the first six").
REQUEST_CODES = {
    ErrorCode.bad_frame,
    ErrorCode.bad_encoding,
    ErrorCode.bad_request,
    ErrorCode.unknown_op,
    ErrorCode.missing_id,
    ErrorCode.too_large,
}
FIELD_NAMES = sorted({name for req, opt in _FIELDS.values() for name in req | opt})

# Scalars a JSON document can hold, and more: huge integers, nan and infinities,
# lone surrogates (json.dumps writes them as \ud800 escapes, which orjson refuses).
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.sampled_from([0, -1, 1, MAX_REQUEST_ID, MAX_REQUEST_ID + 1, 2**63 - 1, 2**63, 2**64 - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40)
    | st.sampled_from(["", " ", "all", "listing:42", "order:O1", "user:u1", "\u00a0", "x" * 70])
)
# Lone surrogates: JSON can escape them (json.dumps does), a MessagePack str cannot hold them.
surrogates = st.text(
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3
)
json_like = st.recursive(
    scalars | surrogates.map(lambda s: f"a{s}b"),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=25,
)
# What MessagePack can carry beyond JSON: bytes, ext types, bytes as map keys.
msgpack_scalars = (
    scalars.filter(lambda v: not isinstance(v, int) or -(2**63) <= v < 2**64)
    | st.binary(max_size=40)
    | st.builds(msgpack.ExtType, st.integers(0, 127), st.binary(max_size=8))
)
msgpack_like = st.recursive(
    msgpack_scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.dictionaries(st.text(max_size=12) | st.binary(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
limits = st.builds(Limits, max_text_chars=st.integers(1, 5000))


# Values a field may well hold, so that generated requests get past the envelope and
# each field's check is reached with the others valid.
plausible = st.one_of(
    st.integers(0, 120),
    st.sampled_from([1, 50, 2**53 - 1, True, False, None, "all", "sales", "purchases"]),
    st.sampled_from(["listing:42", "order:O1", "42", "of1", "hi", "counter", "accept", "open"]),
    st.lists(st.sampled_from(["u1", "u2", "bad id", ""]), max_size=4),
    st.text(min_size=1, max_size=20),
)


@st.composite
def _request_shaped(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> dict[str, Any]:
    anything = draw(st.booleans())  # half the time any value at all, else a plausible one
    pick = values if anything else plausible
    op = draw(st.sampled_from(sorted(OPS)) | (values if anything else st.just("teleport")))
    no_fields: tuple[frozenset[str], frozenset[str]] = (frozenset(), frozenset())
    required, optional = _FIELDS.get(op, no_fields) if isinstance(op, str) else no_fields
    obj: dict[str, Any] = {}
    if draw(st.integers(0, 19)):  # "id" missing once in twenty
        obj["id"] = draw(
            values if anything and not draw(st.integers(0, 3)) else st.integers(0, MAX_REQUEST_ID)
        )
    obj["op"] = op
    for name in sorted(required):
        if draw(st.integers(0, 19)):  # a required field missing once in twenty
            obj[name] = draw(pick)
    for name in sorted(optional):
        if draw(st.booleans()):
            obj[name] = draw(pick)
    if not draw(st.integers(0, 9)):  # a field of another op once in ten
        obj[draw(st.sampled_from(FIELD_NAMES))] = draw(pick)
    return obj


def request_shaped(values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Request-like objects: a real op (mostly), its fields, values plausible or not."""
    return _request_shaped(values)


def outcome(obj: object, lim: Limits) -> object:
    """The request ``obj`` parses to, or the code it is refused with."""
    try:
        return parse_request(obj, lim)
    except ProtocolError as exc:
        assert exc.code in REQUEST_CODES, exc.code
        assert exc.message and len(exc.message) < 600
        return exc.code


def decoded(codec: Codec, frame: str | bytes) -> tuple[bool, Any]:
    try:
        return True, codec.decode(frame)
    except ProtocolError as exc:
        assert exc.code in DECODE_CODES, exc.code
        return False, exc.code


def contains(value: Any, pred: Any) -> bool:
    if pred(value):
        return True
    if isinstance(value, dict):
        return any(contains(k, pred) or contains(v, pred) for k, v in value.items())
    if isinstance(value, list | tuple) and not isinstance(value, msgpack.ExtType):
        return any(contains(v, pred) for v in value)
    return False


# Decoding.


@FUZZ
@given(st.text(max_size=300))
def test_json_decode_of_any_text_returns_or_refuses(text: str) -> None:
    decoded(JSON, text)


@FUZZ
@given(json_like)
def test_json_decode_of_any_document_stdlib_writes(value: Any) -> None:
    # Big integers and nan/Infinity literals, surrogate escapes: orjson refuses or reads them.
    ok, _ = decoded(JSON, json.dumps(value))
    if contains(value, lambda v: isinstance(v, float) and not math.isfinite(v)):
        assert not ok


@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_returns_or_refuses_on_both_encodings(data: bytes) -> None:
    decoded(MSGPACK, data)
    assert decoded(JSON, data) == (False, ErrorCode.bad_encoding)
    text = data.decode("utf-8", "surrogateescape")  # lone surrogates where bytes were bad
    assert decoded(MSGPACK, text) == (False, ErrorCode.bad_encoding)
    decoded(JSON, text)


@FUZZ
@given(msgpack_like)
def test_msgpack_ext_types_and_bin_keys_are_bad_frame(value: Any) -> None:
    ok, got = decoded(MSGPACK, msgpack.packb(value, use_bin_type=True))
    alien = contains(value, lambda v: isinstance(v, msgpack.ExtType)) or contains(
        value, lambda v: isinstance(v, dict) and any(type(k) is not str for k in v)
    )
    assert ok is not alien
    if not ok:
        assert got is ErrorCode.bad_frame


@FUZZ
@given(st.binary(min_size=1, max_size=60), st.integers(0, 59), st.integers(0, 255))
def test_msgpack_mutated_frames_return_or_refuse(tail: bytes, at: int, byte: int) -> None:
    frame = bytearray(msgpack.packb({"id": 1, "op": "post", "room": "listing:1", "text": "hi"}))
    frame[at % len(frame)] = byte
    decoded(MSGPACK, bytes(frame) + tail)
    decoded(MSGPACK, bytes(frame[: at % len(frame)]))


# The envelope and the fields.


@FUZZ
@given(msgpack_like | st.builds(object) | st.sets(st.integers(), max_size=3))
def test_request_id_of_anything_is_none_or_a_usable_id(value: Any) -> None:
    for obj in (value, {"id": value}):
        rid = request_id(obj)
        assert rid is None or (type(rid) is int and 0 <= rid <= MAX_REQUEST_ID)


@FUZZ
@given(msgpack_like | st.builds(object))
def test_parse_room_of_anything_returns_a_room_or_bad_request(value: Any) -> None:
    try:
        room = parse_room(value)
    except ProtocolError as exc:
        assert exc.code is ErrorCode.bad_request
    else:
        assert room.split(":", 1)[0] in ("listing", "order")


@FUZZ
@given(json_like | msgpack_like, limits)
def test_parse_request_of_any_value(value: Any, lim: Limits) -> None:
    outcome(value, lim)


@FUZZ
@given(request_shaped(json_like | msgpack_like), limits)
def test_parse_request_of_request_shaped_objects(obj: dict[str, Any], lim: Limits) -> None:
    got = outcome(obj, lim)
    if not isinstance(got, ErrorCode):
        assert isinstance(got, Request) and got.id == obj["id"]
        assert request_id(obj) == obj["id"]


@FUZZ
@given(request_shaped(json_like), limits)
def test_both_encodings_agree(obj: dict[str, Any], lim: Limits) -> None:
    """Sent as JSON or as MessagePack, one object gets one answer (where both carry it)."""
    try:
        as_json = orjson.dumps(obj).decode()  # refuses ints over 64 bits
        as_msgpack = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError):
        return  # ints over 64 bits, lone surrogates: not both encodings carry them
    if contains(obj, lambda v: isinstance(v, float) and not math.isfinite(v)):
        return  # orjson writes nan as null: not the same object any more
    ok_json, from_json = decoded(JSON, as_json)
    ok_msgpack, from_msgpack = decoded(MSGPACK, as_msgpack)
    assert ok_json and ok_msgpack
    assert outcome(from_json, lim) == outcome(from_msgpack, lim)


@FUZZ
@given(request_shaped(json_like), limits)
def test_decode_then_parse_as_the_hub_does(obj: dict[str, Any], lim: Limits) -> None:
    for codec, frame in ((JSON, json.dumps(obj)), (MSGPACK, _packb_or_none(obj))):
        if frame is None:
            continue
        ok, value = decoded(codec, frame)
        if ok:
            request_id(value)
            outcome(value, lim)


def _packb_or_none(obj: Any) -> bytes | None:
    try:
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
    except (TypeError, ValueError, OverflowError):
        return None  # ints over 64 bits, lone surrogates
    return packed
