"""Leases on Redis (``RedisLeases``, mixed into ``RedisStore``): one holder among hubs.

Key: ``parley:lease:<name>`` holds the holder's id with a ``PX`` expiry. Taking
is ``SET NX PX``; renewing is a compare-and-expire by the holder, in one script
so that a lease that just passed to another hub is never extended by the old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from parley.server.store.redis_wire import edge

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

# KEYS lease; ARGV holder, ttl ms. Returns 1 when the holder holds it now.
_TRY_LEASE_LUA: Final = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS lease; ARGV holder.
_RELEASE_LEASE_LUA: Final = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLeases:
    """``try_lease`` and ``release_lease`` of the store contract, on Redis."""

    _client: Redis
    _prefix: str
    _lease_scripts: tuple[AsyncScript, AsyncScript]

    def _leases(self) -> tuple[AsyncScript, AsyncScript]:
        try:
            return self._lease_scripts
        except AttributeError:  # registered on first use: the store's __init__ stays its own
            register = self._client.register_script
            self._lease_scripts = (register(_TRY_LEASE_LUA), register(_RELEASE_LEASE_LUA))
            return self._lease_scripts

    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        take, _ = self._leases()
        with edge():
            held = await take(keys=[f"{self._prefix}:lease:{name}"], args=[holder, ttl_ms])
        return bool(held)

    async def release_lease(self, name: str, holder: str) -> None:
        _, release = self._leases()
        with edge():
            await release(keys=[f"{self._prefix}:lease:{name}"], args=[holder])
