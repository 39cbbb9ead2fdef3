"""atheris harness: one frame through ``decode`` then ``parse_request``, as the hub does.

Not part of the test run (pytest collects ``test_*.py`` only). The first byte picks the
encoding and the text limit (and, one time in eight, a frame of the wrong type), the
rest is the frame: bytes on ``parley.v1.msgpack``, on ``parley.v1.json`` a text when the
bytes are valid UTF-8 (websockets closes the connection with 1007 otherwise). Anything raised but a
``ProtocolError`` with a protocol code is a crash, and libFuzzer keeps the input.

    .venv/bin/pip install atheris
    .venv/bin/python tests/fuzz/fuzz_decode.py --seeds /tmp/parley-fuzz-corpus
    .venv/bin/python tests/fuzz/fuzz_decode.py /tmp/parley-fuzz-corpus \\
        -max_total_time=60 -max_len=4096 -rss_limit_mb=2048

A crash is written to ``crash-<sha1>`` in the working directory; replay it with
``.venv/bin/python tests/fuzz/fuzz_decode.py crash-<sha1>``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

with atheris.instrument_imports():
    from parley.protocol.codec import JSON, MSGPACK
    from parley.protocol.errors import ErrorCode, ProtocolError
    from parley.protocol.messages import MAX_REQUEST_ID, Limits, parse_request, request_id

import msgpack

PROTOCOL_CODES = frozenset(
    {
        ErrorCode.bad_frame,
        ErrorCode.bad_encoding,
        ErrorCode.bad_request,
        ErrorCode.unknown_op,
        ErrorCode.missing_id,
        ErrorCode.too_large,
    }
)
LIMITS = (Limits(), Limits(max_text_chars=1), Limits(max_text_chars=64))


def one_frame(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    head = fdp.ConsumeInt(1)
    codec = MSGPACK if head & 1 else JSON
    limits = LIMITS[(head >> 1) % len(LIMITS)]
    wrong_type = (head >> 3) & 7 == 7
    raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    frame: str | bytes = raw
    if (codec is JSON) is not wrong_type:
        try:
            frame = raw.decode()  # websockets closes 1007 on invalid UTF-8 before the hub
        except UnicodeDecodeError:
            return
    try:
        obj = codec.decode(frame)
        rid = request_id(obj)
        assert rid is None or 0 <= rid <= MAX_REQUEST_ID
        request = parse_request(obj, limits)
    except ProtocolError as exc:
        if exc.code not in PROTOCOL_CODES:
            raise AssertionError(f"undocumented code {exc.code}") from exc
        if wrong_type:
            assert exc.code is ErrorCode.bad_encoding
        return
    assert not wrong_type
    assert request.id == rid


SEEDS = [
    {"id": 1, "op": "connect", "token": "t", "since": 3, "epoch": "e"},
    {"id": 2, "op": "subscribe", "room": "listing:42", "since": 0},
    {"id": 3, "op": "post", "room": "order:O1", "text": "hi", "client_msg_id": "c1"},
    {"id": 4, "op": "edit", "room": "listing:42", "seq": 2, "text": "x"},
    {"id": 5, "op": "history", "room": "listing:42", "before": 9, "limit": 10},
    {"id": 6, "op": "offer_respond", "offer": "of1", "action": "counter", "amount": 900},
    {"id": 7, "op": "offer_to_likers", "listing": "42", "amount": 900, "to": ["u1", "u2"]},
    {"id": 8, "op": "offers", "listing": "42", "state": "open", "limit": 5},
    {"id": 9, "op": "conversations", "role": "sales", "before": 1, "limit": 2},
    {"id": 10, "op": "offers_enable", "listing": "42", "enabled": True},
]


def write_seeds(directory: Path) -> None:
    import orjson

    directory.mkdir(parents=True, exist_ok=True)
    for n, seed in enumerate(SEEDS):
        (directory / f"json-{n}").write_bytes(b"\x00" + orjson.dumps(seed))  # head 0: JSON
        (directory / f"msgpack-{n}").write_bytes(b"\x01" + msgpack.packb(seed))  # 1: msgpack


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seeds":
        write_seeds(Path(sys.argv[2]))
        sys.exit(0)
    atheris.Setup(sys.argv, one_frame)
    atheris.Fuzz()
