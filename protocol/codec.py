"""The two encodings of protocol v1, chosen by WebSocket subprotocol.

``parley.v1.json`` carries orjson in text frames, ``parley.v1.msgpack`` carries
MessagePack in binary frames. A codec decodes one frame to a Python object and
encodes one reply or event to bytes; ``server_frame`` wraps those bytes in a
complete, unmasked WebSocket frame so the hub builds a broadcast frame once and
hands the same bytes to every recipient.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Final

import msgpack
import orjson

from parley.protocol.errors import ErrorCode, ProtocolError

JSON_SUBPROTOCOL: Final = "parley.v1.json"
MSGPACK_SUBPROTOCOL: Final = "parley.v1.msgpack"

_OP_TEXT: Final = 0x1
_OP_BINARY: Final = 0x2


@dataclass(frozen=True, slots=True)
class Codec:
    subprotocol: str
    text_frames: bool

    def decode(self, frame: str | bytes) -> Any:
        if self.text_frames:
            if not isinstance(frame, str):
                raise ProtocolError(
                    ErrorCode.bad_encoding, f"{self.subprotocol} takes text frames only"
                )
            try:
                return orjson.loads(frame)
            except orjson.JSONDecodeError as exc:
                raise ProtocolError(ErrorCode.bad_frame, f"invalid JSON: {exc}") from None
        if not isinstance(frame, bytes):
            raise ProtocolError(
                ErrorCode.bad_encoding, f"{self.subprotocol} takes binary frames only"
            )
        try:
            # Containers are bounded by the frame size limit already; ext types
            # and non-string map keys have no meaning in the protocol.
            return msgpack.unpackb(
                frame,
                raw=False,
                strict_map_key=True,  # str or bin keys; _str_keys refuses bin ones
                max_ext_len=0,  # ext types of length 0 get past it: _no_ext refuses them
                ext_hook=_no_ext,
                object_hook=_str_keys,
            )
        except UnicodeDecodeError:
            raise ProtocolError(ErrorCode.bad_encoding, "invalid UTF-8 in a string") from None
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
            raise ProtocolError(ErrorCode.bad_frame, "invalid MessagePack") from None

    def encode(self, obj: Any) -> bytes:
        if self.text_frames:
            return orjson.dumps(obj)
        packed: bytes = msgpack.packb(obj, use_bin_type=True)
        return packed

    def frame(self, obj: Any) -> bytes:
        """A complete server-to-client WebSocket frame carrying ``obj``."""
        return server_frame(self.encode(obj), text=self.text_frames)


def _no_ext(code: int, data: bytes) -> Any:
    raise ValueError("ext types have no meaning in the protocol")


def _str_keys(obj: dict[Any, Any]) -> dict[str, Any]:
    # strict_map_key lets bin keys through; a field is never named by bytes.
    for key in obj:
        if type(key) is not str:
            raise ValueError("map keys must be strings")
    return obj


JSON: Final = Codec(JSON_SUBPROTOCOL, text_frames=True)
MSGPACK: Final = Codec(MSGPACK_SUBPROTOCOL, text_frames=False)
CODECS: Final[dict[str, Codec]] = {c.subprotocol: c for c in (JSON, MSGPACK)}
SUBPROTOCOLS: Final = tuple(CODECS)


def server_frame(payload: bytes, *, text: bool) -> bytes:
    """RFC 6455 section 5.2: FIN, opcode, length, no mask (server to client)."""
    first = 0x80 | (_OP_TEXT if text else _OP_BINARY)
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", first, size)
    elif size < 65536:
        header = struct.pack("!BBH", first, 126, size)
    else:
        header = struct.pack("!BBQ", first, 127, size)
    return header + payload
