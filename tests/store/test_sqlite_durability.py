"""What only the embedded store promises: the file outlives the process, and
writes are group-committed (many appends, few fsynced transactions)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from pathlib import Path

import pytest

from parley.server.core.model import Author, Draft, User, UserId
from parley.server.store.base import StoreUnavailable
from parley.server.store.sqlite import SqliteStore

ROOM = "listing:l1"
ALICE = Author(UserId("alice"), "Alice")


def comment(text: str, cmid: str | None = None) -> Draft:
    return Draft("comment", text, 1, ALICE, client_msg_id=cmid)


@asynccontextmanager
async def opened(path: Path | str, **options: int) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(str(path), **options)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def test_reopening_the_file_keeps_the_log_and_its_epoch(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    async with opened(path) as store:
        for i in range(3):
            await store.append(ROOM, comment(f"m{i}", cmid=f"c{i}"))
        await store.put_user(User(UserId("alice"), "alice", "fr-CA", "a@example.com"))
        before = await store.head(ROOM)
        empty_before = await store.head("listing:never")

    async with opened(path) as store:
        assert await store.head(ROOM) == before
        assert await store.head("listing:never") == empty_before
        assert [e.text for e in await store.entries_after(ROOM, 0, 10)] == ["m0", "m1", "m2"]
        assert (await store.append(ROOM, comment("m3"))).entry.seq == 4
        retry = await store.append(ROOM, comment("m0", cmid="c0"))
        assert retry.duplicate and retry.entry.seq == 1
        assert await store.get_user(UserId("alice")) == User(
            UserId("alice"), "alice", "fr-CA", "a@example.com"
        )


async def test_a_fresh_file_gives_other_epochs(tmp_path: Path) -> None:
    async with opened(tmp_path / "a.sqlite3") as a, opened(tmp_path / "b.sqlite3") as b:
        await a.append(ROOM, comment("hi"))
        await b.append(ROOM, comment("hi"))
        assert (await a.head(ROOM)).epoch != (await b.head(ROOM)).epoch
        assert (await a.head("listing:never")).epoch != (await b.head("listing:never")).epoch


async def test_relative_path_and_missing_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with opened("data/deeper/parley.sqlite3") as store:
        await store.append(ROOM, comment("hi"))
    assert (tmp_path / "data" / "deeper" / "parley.sqlite3").is_file()


async def test_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    async with opened(path) as store:
        await store.append(ROOM, comment("hi"))
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_concurrent_appends_share_transactions(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    async with opened(path, batch_max=256) as store:
        # Hold the write lock from outside so that every append is queued while
        # the writer waits: the outcome then does not depend on thread timing.
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        commits_before = store.commits
        appends = [asyncio.ensure_future(store.append(ROOM, comment(f"m{i}"))) for i in range(500)]
        await asyncio.sleep(0)  # let every append reach the writer's queue
        blocker.execute("COMMIT")
        blocker.close()
        results = await asyncio.gather(*appends)

        assert sorted(r.entry.seq for r in results) == list(range(1, 501))
        # At most one batch taken before the lock was released, then 256 + 244.
        assert store.commits - commits_before <= 3


async def test_a_failed_batch_leaves_no_gap(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    async with opened(path) as store:
        await store.append(ROOM, comment("one"))
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.text = 'boom'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        with pytest.raises(StoreUnavailable):
            await store.append(ROOM, comment("boom"))
        assert (await store.head(ROOM)).seq == 1
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute("DROP TRIGGER refuse")
        assert (await store.append(ROOM, comment("two"))).entry.seq == 2
        assert [e.seq for e in await store.entries_after(ROOM, 0, 10)] == [1, 2]


async def test_a_failed_batch_fails_every_request_in_it(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    async with opened(path) as store:
        with closing(sqlite3.connect(path, isolation_level=None)) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON entries WHEN NEW.text = 'boom'"
                " BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        drafts = [comment("fine"), comment("boom"), comment("fine too")]
        appends = [asyncio.ensure_future(store.append("order:o1", d)) for d in drafts]
        await asyncio.sleep(0)
        blocker.execute("COMMIT")
        blocker.close()
        outcomes = await asyncio.gather(*appends, return_exceptions=True)
        # Whether "fine" shared the failed batch depends on when the writer took
        # it; what was acknowledged is stored, gap-free from 1.
        assert isinstance(outcomes[1], StoreUnavailable)
        stored = await store.entries_after("order:o1", 0, 10)
        acknowledged = [o.entry for o in outcomes if not isinstance(o, BaseException)]
        assert stored == acknowledged
        assert [e.seq for e in stored] == list(range(1, len(stored) + 1))


async def test_close_finishes_pending_writes(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    store = SqliteStore(str(path))
    await store.open()
    appends = [asyncio.ensure_future(store.append(ROOM, comment(f"m{i}"))) for i in range(50)]
    await asyncio.sleep(0)  # queued, not yet acknowledged
    await store.close()
    assert all(a.done() and not a.exception() for a in appends)
    async with opened(path) as reopened:
        assert (await reopened.head(ROOM)).seq == 50


async def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "parley.sqlite3"))
    with pytest.raises(StoreUnavailable):
        await store.append(ROOM, comment("too early"))
    await store.open()
    await store.close()
    await store.close()  # closing twice is harmless
    with pytest.raises(StoreUnavailable):
        await store.append(ROOM, comment("too late"))
    with pytest.raises(StoreUnavailable):
        await store.head(ROOM)
    with pytest.raises(StoreUnavailable):
        await store.check()


async def test_a_file_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-db").write_bytes(b"this is not an SQLite file, just text" * 100)
    store = SqliteStore(str(tmp_path / "not-a-db"))
    with pytest.raises(StoreUnavailable):
        await store.open()
    with pytest.raises(StoreUnavailable):
        await store.check()
