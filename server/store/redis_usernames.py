"""The Redis username index (``parley:usernames``: username key -> user id) kept in step
with ``username_key``.

Keys became confusable skeletons (TR 39) in index version 2: a data set written before
is indexed again when a hub opens it. Each member's name is keyed again; when two names
now look alike, the first holder by id keeps the key and the other is left out of the
index (still a member, no longer found by that name). The steps, each safe to run again
and to run from two hubs at once:

1. read the index (``HSCAN``) and each member's name;
2. one script on the index's slot sets the new keys and removes the old ones, each only
   while it still names the member it named when read, so a name claimed meanwhile by a
   hub that runs this version stays;
3. each member's hash records its new key (``name_key``), so that a rename frees it;
4. the marker ``parley:usernames:version`` is set last: until then every opening hub
   runs the steps again.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from redis.asyncio import Redis

from parley.server.core.mentions import username_key
from parley.server.store.redis_wire import as_text

log = logging.getLogger("parley.store.redis")

INDEX_VERSION: Final = "2"
_BATCH: Final = 500

# KEYS usernames; ARGV n, then n (key, id) pairs to set, then (key, id) pairs to remove.
# A key is set unless another member holds it now, and removed only if it still names
# the member it named when read.
_REINDEX_LUA: Final = """
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  local owner = redis.call('HGET', KEYS[1], ARGV[i])
  if not owner or owner == ARGV[i + 1] or ARGV[i + 1] < owner then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
for i = 2 * n + 2, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""


async def index_usernames(client: Redis, prefix: str) -> None:
    """Bring the username index to ``INDEX_VERSION``; see the module's steps."""
    marker = f"{prefix}:usernames:version"
    if await client.get(marker) == INDEX_VERSION.encode():
        return
    usernames = f"{prefix}:usernames"
    index: dict[str, str] = {}
    async for field, user_id in client.hscan_iter(usernames, count=1000):
        index[as_text(field)] = as_text(user_id)
    members = sorted(set(index.values()))
    names = await _names(client, prefix, members)
    kept: dict[str, str] = {}
    for user_id in members:
        name = names.get(user_id)
        if name is not None:
            kept.setdefault(username_key(name), user_id)  # by id: the first holder keeps it
    stale = [(field, uid) for field, uid in index.items() if kept.get(field) != uid]
    args: list[Any] = [len(kept), *(x for pair in kept.items() for x in pair)]
    args += [x for pair in stale for x in pair]
    await client.register_script(_REINDEX_LUA)(keys=[usernames], args=args)
    key_of = {user_id: key for key, user_id in kept.items()}
    for start in range(0, len(members), _BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for user_id in members[start : start + _BATCH]:
                user = f"{prefix}:user:{user_id}"
                if user_id in key_of:
                    pipe.hset(user, "name_key", key_of[user_id])
                elif user_id in names:
                    pipe.hdel(user, "name_key")
                    log.warning("username of user %s looks like another's: not indexed", user_id)
            await pipe.execute()
    await client.set(marker, INDEX_VERSION)
    log.info("username index at version %s: %d members", INDEX_VERSION, len(members))


async def _names(client: Redis, prefix: str, members: list[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    for start in range(0, len(members), _BATCH):
        batch = members[start : start + _BATCH]
        async with client.pipeline(transaction=False) as pipe:
            for user_id in batch:
                pipe.hget(f"{prefix}:user:{user_id}", "name")
            found = await pipe.execute()
        names.update({uid: as_text(n) for uid, n in zip(batch, found, strict=True) if n})
    return names
