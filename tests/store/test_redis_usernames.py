"""A Redis data set whose username index predates look-alike keys is indexed again when a
store opens it, on one Redis and on a Redis Cluster (the index on one slot, the members'
hashes on others)."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest

from parley.protocol.errors import ParleyError
from parley.server.core.mentions import username_key
from parley.server.core.model import User, UserId
from parley.server.store.redis import RedisStore
from parley.server.store.redis_usernames import INDEX_VERSION

OLD = (("u1", "marie"), ("u2", "rnarie"), ("u3", "J\u043es\u00e9e"), ("u4", "alice"))


def old_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).casefold()


@pytest.fixture(params=["redis", "redis-cluster"])
async def server(request: pytest.FixtureRequest) -> Any:
    started = request.getfixturevalue(
        "redis_server" if request.param == "redis" else "redis_cluster"
    )
    await started.flushall()
    return started


async def write_old_index(store: RedisStore) -> None:
    client = store._client
    for user_id, name in OLD:
        await client.hset("parley:usernames", old_key(name), user_id)
        await client.hset(
            f"parley:user:{user_id}",
            mapping={"name": name, "locale": "en", "name_key": old_key(name)},
        )
    await client.delete("parley:usernames:version")


async def test_r4_an_old_username_index_is_keyed_by_skeleton_at_open(server: Any) -> None:
    store = RedisStore(server.url)
    await store.open()
    await write_old_index(store)
    await store.close()

    for _ in range(2):  # a second opening finds it done
        store = RedisStore(server.url)
        await store.open()
        try:
            index = {
                k.decode(): v.decode()
                for k, v in (await store._client.hgetall("parley:usernames")).items()
            }
            assert index == {
                username_key("marie"): "u1",  # "rnarie" looks alike: the first by id keeps it
                username_key("Jos\u00e9e"): "u3",
                username_key("alice"): "u4",
            }
            assert await store._client.get("parley:usernames:version") == INDEX_VERSION.encode()
            u3 = await store._client.hget("parley:user:u3", "name_key")
            assert u3 == username_key("Jos\u00e9e").encode()
            assert await store._client.hget("parley:user:u2", "name_key") is None
            with pytest.raises(ParleyError):
                await store.put_user(User(UserId("u5"), "Jos\u00e9e"))
        finally:
            await store.close()
    store = RedisStore(server.url)
    await store.open()
    try:  # a member renamed frees the key it had, and the new one is indexed
        await store.put_user(User(UserId("u3"), "josette"))
        await store.put_user(User(UserId("u5"), "Jos\u00e9e"))
        found = await store.users_by_name([username_key("Jos\u00e9e"), username_key("josette")])
        assert {k: u.id for k, u in found.items()} == {
            username_key("Jos\u00e9e"): "u5",
            username_key("josette"): "u3",
        }
    finally:
        await store.close()
