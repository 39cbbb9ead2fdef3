"""A file written by schema 1 opens under schema 2 with everything it held."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from parley.protocol.errors import ParleyError
from parley.server.core.model import Author, Draft, User, UserId
from parley.server.store.sqlite import SCHEMA_VERSION, SqliteStore

SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, locale TEXT NOT NULL, email TEXT);
CREATE TABLE listings (
    id TEXT PRIMARY KEY, seller_id TEXT NOT NULL, title TEXT NOT NULL,
    amount INTEGER NOT NULL, currency TEXT NOT NULL, photo_url TEXT,
    offers_enabled INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE orders (
    id TEXT PRIMARY KEY, listing_id TEXT NOT NULL, buyer_id TEXT NOT NULL,
    seller_id TEXT NOT NULL, status TEXT NOT NULL, created_ts INTEGER NOT NULL);
CREATE TABLE rooms (room TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, epoch TEXT NOT NULL);
CREATE TABLE entries (
    room TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, text TEXT NOT NULL,
    ts INTEGER NOT NULL, author_id TEXT, author_name TEXT, client_msg_id TEXT,
    target INTEGER, data TEXT, edited_ts INTEGER, deleted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (room, seq)) WITHOUT ROWID;
INSERT INTO meta VALUES ('schema_version', '1'), ('store_id', 'abcdef0123456789');
INSERT INTO users VALUES ('u1', 'alice', 'fr-CA', 'alice@example.com');
INSERT INTO users VALUES ('u2', 'ALICE', 'en', NULL);
INSERT INTO rooms VALUES ('listing:L1', 1, 'e1');
INSERT INTO entries VALUES
    ('listing:L1', 1, 'comment', 'Encore disponible ?', 5, 'u1', 'alice', 'c1',
     NULL, NULL, NULL, 0);
"""


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    path = tmp_path / "parley.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA_1)
    return path


async def test_a_schema_1_file_is_migrated_in_place(old_file: Path) -> None:
    store = SqliteStore(str(old_file))
    await store.open()
    try:
        [entry] = await store.history("listing:L1", None, 10)
        assert entry.text == "Encore disponible ?" and entry.mentions == ()
        assert (await store.head("listing:L1")).epoch == "e1"
        assert await store.get_user(UserId("u1")) == User(
            UserId("u1"), "alice", "fr-CA", "alice@example.com"
        )
        # Two members whose names differ only by case: the first keeps the name.
        found = await store.users_by_name(["alice"])
        assert found["alice"].id == "u1"
        with pytest.raises(ParleyError):
            await store.put_user(User(UserId("u3"), "Alice"))
        author = Author(UserId("u1"), "alice")
        appended = await store.append("listing:L1", Draft("comment", "Oui", 6, author))
        assert appended.entry.seq == 2
    finally:
        await store.close()
    with sqlite3.connect(old_file) as conn:
        [(version,)] = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    assert version == SCHEMA_VERSION
