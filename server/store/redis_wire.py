"""What the Redis store and its fan-out share: entry bodies and error translation.

An entry is stored (and published) as a msgpack array without its seq, which
the log's hash field or the announcement carries. Redis errors that mean "cannot
answer now" become ``StoreUnavailable`` here, once, for both modules.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any, Final, cast

import msgpack
from redis.asyncio.connection import Connection
from redis.exceptions import (
    ClusterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from parley.server.core.model import (
    Author,
    Draft,
    Entry,
    EntryKind,
    ListingId,
    Mention,
    Order,
    OrderId,
    UserId,
)
from parley.server.store.base import StoreUnavailable

# BusyLoadingError (Redis replaying its AOF) is a ConnectionError.
DOWN: Final = (RedisConnectionError, RedisTimeoutError, OSError)
# Replies that mean "not now" rather than "wrong request".
NOT_NOW: Final = (OutOfMemoryError, ReadOnlyError, TryAgainError, ClusterDownError)
NOT_NOW_CODES: Final = ("MISCONF", "NOREPLICAS", "BUSY")

# The store's append script's ARGV (``server.store.redis``): a script that runs its own
# step before it (filing a report) reads its arguments after these.
APPEND_ARGV: Final = 16


@contextlib.contextmanager
def edge() -> Iterator[None]:
    """Translate Redis's "cannot answer now" into ``StoreUnavailable``, once."""
    try:
        yield
    except DOWN as exc:
        raise StoreUnavailable() from exc
    except ResponseError as exc:
        if isinstance(exc, NOT_NOW) or str(exc).startswith(NOT_NOW_CODES):
            raise StoreUnavailable() from exc
        raise


class ResetAwareConnection(Connection):
    """A TCP connection that notices a reset by its peer before it is used.

    Under uvloop, a connection reset by the peer (a network cut, ``CLIENT
    KILL``) leaves its stream neither at EOF nor holding data, so the pool
    hands it out as healthy, and the write then raises ``RuntimeError`` (the
    transport is closed) rather than an ``OSError``: an error no edge expects,
    that leaves ``/readyz`` answering 500 and a pipelined append unanswered.
    Seen before use, the pool reconnects (nothing was sent); seen at a write,
    it is an ``OSError``, which redis-py turns into ``ConnectionError``.
    """

    def _closed_under_us(self) -> bool:
        writer = self._writer
        return writer is not None and writer.transport.is_closing()

    async def can_read(self) -> bool:
        if self._closed_under_us():
            await self.disconnect(nowait=True)
            raise RedisConnectionError("the connection was closed by the peer")
        return await super().can_read()

    async def _send_packed_command(self, command: Any) -> None:
        if self._closed_under_us():
            raise ConnectionResetError("the connection was closed by the peer")
        if self._writer is None:
            # Disconnected by another task while this one was connecting (a
            # cluster client drops a failed node's connections): an OSError,
            # not the AttributeError redis-py would raise.
            raise ConnectionResetError("the connection was closed meanwhile")
        await super()._send_packed_command(command)


async def cancel_firmly(task: asyncio.Task[Any], *, tries: int = 100) -> None:
    """Cancel ``task`` and wait until it is gone, within about ``tries`` / 10 s.

    redis-py can swallow a cancellation that lands inside its own connect,
    disconnect or command; the task's loop must also check a stop flag, and the
    bounded retries make sure nobody waits forever.
    """
    for _ in range(tries):
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=0.1)
        if done:
            return


def as_text(value: bytes | str) -> str:
    # Replies are bytes (decode_responses is off: entry bodies are msgpack).
    return value if isinstance(value, str) else value.decode()


def _head(draft: Draft) -> list[Any]:
    """The body's first seven items: all but data and mentions."""
    author = draft.author
    return [
        draft.kind,
        draft.text,
        draft.ts,
        None if author is None else author.id,
        None if author is None else author.name,
        draft.client_msg_id,
        draft.target,
    ]


def encode_body(draft: Draft) -> bytes:
    body = [
        *_head(draft),
        draft.data,
        [m.to_row() for m in draft.mentions],
        list(draft.masked_kinds),
    ]
    return msgpack.packb(body, use_bin_type=True)


def encode_read_prefix(draft: Draft) -> bytes:
    """A read mark's body but its data and mentions, which the append script
    adds once it knows where the mark lands (a read mark masks nothing)."""
    packed = (msgpack.packb(item, use_bin_type=True) for item in _head(draft))
    return b"\x99" + b"".join(packed)  # a msgpack array of 9: no masked kinds


def encode_edit(draft: Draft) -> bytes:
    """What an edit leaves on its target: the new text, when, its mentions and masks, and
    its new data when it has some (a notification following its message)."""
    mentions = [m.to_row() for m in draft.mentions]
    edit = [draft.text, draft.ts, mentions, list(draft.masked_kinds)]
    if draft.data is not None:
        edit.append(draft.data)
    return msgpack.packb(edit)


def decode_entry(room: str, seq: int, body: bytes, edit: bytes | None, deleted: Any) -> Entry:
    return entry_from_body(room, seq, msgpack.unpackb(body), edit, deleted)


def entry_from_body(
    room: str, seq: int, body: list[Any], edit: bytes | None, deleted: Any
) -> Entry:
    kind, text, ts, author_id, author_name, client_msg_id, target, data = body[:8]
    # Bodies stored before mentions have 8 items, before masking 9.
    rows = body[8] if len(body) > 8 else ()
    masked = body[9] if len(body) > 9 else ()
    author = None if author_id is None else Author(UserId(author_id), author_name)
    edited_ts = None
    if edit is not None:
        text, edited_ts, *rest = msgpack.unpackb(edit)
        if rest:
            rows = rest[0]
            masked = rest[1] if len(rest) > 1 else ()
            if len(rest) > 2:
                data = rest[2]
    held = deleted in (b"3", 3)  # hidden pending review: its words are kept, not shown
    if deleted is not None:
        text, data = "", None
    return Entry(
        room,
        seq,
        cast(EntryKind, kind),
        text,
        ts,
        author,
        client_msg_id,
        target,
        data,
        edited_ts,
        deleted is not None and not held,
        tuple(Mention.from_row(row) for row in rows),
        tuple(masked),
        removed=deleted in (b"2", 2),
        held=held,
    )


def decode_entries(room: str, flat: list[Any]) -> list[Entry]:
    return [
        decode_entry(room, int(flat[i]), flat[i + 1], flat[i + 2], flat[i + 3])
        for i in range(0, len(flat), 4)
    ]


def decode_order(order_id: str, fields: list[Any]) -> Order:
    """An order as its hash stores it: listing, buyer, seller, status, created_ts."""
    listing_id, buyer_id, seller_id, status, created_ts = fields
    return Order(
        OrderId(order_id),
        ListingId(as_text(listing_id)),
        UserId(as_text(buyer_id)),
        UserId(as_text(seller_id)),
        as_text(status),
        int(created_ts),
    )
