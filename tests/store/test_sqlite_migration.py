"""A file written by an older schema opens under the current one with everything it held."""

from __future__ import annotations

import sqlite3
import unicodedata
from pathlib import Path

import pytest

from parley.protocol.errors import ParleyError
from parley.server.core.mentions import username_key
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


def old_key(name: str) -> str:
    """The username index's key before schema 3: NFKC, case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


async def test_r4_a_schema_2_file_indexes_usernames_by_skeleton(tmp_path: Path) -> None:
    path = tmp_path / "parley.sqlite3"
    store = SqliteStore(str(path))
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:  # as version 2 left it
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        for user_id, name in (("u1", "marie"), ("u2", "rnarie"), ("u3", "J\u043es\u00e9e")):
            conn.execute(
                "INSERT INTO users (id, name, locale, name_key) VALUES (?, ?, 'en', ?)",
                (user_id, name, old_key(name)),
            )
    store = SqliteStore(str(path))
    await store.open()
    try:
        # "marie" and "rnarie" now look alike: the first holder by id keeps the key.
        found = await store.users_by_name([username_key("marie"), username_key("Jos\u00e9e")])
        assert {key: user.id for key, user in found.items()} == {
            username_key("marie"): "u1",
            username_key("Jos\u00e9e"): "u3",
        }
        assert (await store.get_user(UserId("u2"))) == User(UserId("u2"), "rnarie")
        with pytest.raises(ParleyError):
            await store.put_user(User(UserId("u4"), "Jos\u00e9e"))
        await store.put_user(User(UserId("u2"), "rnarie2"))  # renamed: indexed again
        assert (await store.users_by_name([username_key("rnarie2")]))[
            username_key("rnarie2")
        ].id == "u2"
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        [(version,)] = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    assert version == SCHEMA_VERSION == "4"
