"""The Redis store on a Redis Cluster: the client, the write acknowledgement, the fan-out.

``redis+cluster://host:port,host:port/`` names some nodes of the cluster (any of
them; the client learns the rest). Every key of one room carries the room as its
hash tag, so a room lives on one slot, and every script touches one slot.

The fan-out holds one pub/sub connection per shard (``ShardLink``, the single-Redis
``RedisFanout`` bound to one node) for the shards that own a room this hub
follows, never one per room. A shard's connection that drops, a subscription
refused with ``MOVED``, or one the server ends because its slot moved
(``sunsubscribe``) sends the hub back to the cluster's topology: each room is
re-subscribed on the shard that owns it now, then the hub resyncs from the logs,
so what was missed meanwhile is read back, never skipped.

``wait_replicas`` (a query parameter of the URL; 1 by default on a cluster): an
append is acknowledged only once that many replicas of its shard have it
(``WAIT``). A master that fails right after a write cannot take the
acknowledged write with it: the promoted replica has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, cast

import msgpack
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import AskError, MovedError, RedisError

from parley.server.store.base import Fanout, StoreUnavailable
from parley.server.store.redis_fanout import CANARY_ROOM, RedisFanout
from parley.server.store.redis_url import parse_cluster_url
from parley.server.store.redis_wire import DOWN, ResetAwareConnection, cancel_firmly, edge

if TYPE_CHECKING:
    from parley.server.store.redis import RedisStore

log = logging.getLogger("parley.store.redis")

REROUTE_INTERVAL: Final = 0.25  # seconds between topology checks while a shard is down


_HOLDING: ContextVar[bool] = ContextVar("parley_cluster_holding", default=False)


class BoundedCluster(RedisCluster):
    """A ``RedisCluster`` whose commands and pipelines wait for a turn.

    redis-py's cluster client refuses a command at once (``MaxConnectionsError``)
    when a node's pool is used up, where the single-Redis pool waits: a burst of
    thousands of members connecting at once would be answered ``unavailable``.
    Here at most ``in_flight`` commands and pipelines run at a time; the rest wait
    their turn. A command run from within one (a pipeline's redirection) does not
    wait again, so a turn never waits on another.
    """

    def __init__(self, *args: Any, in_flight: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turns = asyncio.Semaphore(in_flight)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if _HOLDING.get():
            return await super().execute_command(*args, **kwargs)
        async with self._turns:
            token = _HOLDING.set(True)
            try:
                return await super().execute_command(*args, **kwargs)
            finally:
                _HOLDING.reset(token)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)  # redis-py says why not
        return BoundedPipeline(self, transaction)  # type: ignore[abstract]  # as redis-py does


class BoundedPipeline(ClusterPipeline):
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        turns = cast(BoundedCluster, self.cluster_client)._turns
        if _HOLDING.get():
            return await super().execute(*args, **kwargs)
        async with turns:
            token = _HOLDING.set(True)
            try:
                return await super().execute(*args, **kwargs)
            finally:
                _HOLDING.reset(token)


def cluster_client(
    url: str, *, max_connections: int, socket_timeout: float, connect_timeout: float
) -> Redis:
    """A ``RedisCluster`` for the store.

    No silent retries of a command that may have run (as on one Redis); redirections
    (``MOVED``, ``ASK``) are followed, since the command did not run where it was sent.
    After a connection error the client rereads the cluster's topology before its
    next command. Typed as ``Redis``: the store sends the commands both have.
    """
    nodes, options = parse_cluster_url(url)
    client = BoundedCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in nodes],
        in_flight=max_connections,
        # A pipeline takes one connection per node it writes to: every turn may
        # need one on the same node, and a redirection one more.
        max_connections=2 * max_connections,
        retry=Retry(NoBackoff(), 0),
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        socket_keepalive=True,
        client_name="parley",
        **options,
    )
    if not options["ssl"]:
        client.nodes_manager.connection_kwargs["connection_class"] = ResetAwareConnection
    return cast(Redis, client)


def as_cluster(client: Redis) -> RedisCluster:
    return cast(RedisCluster, client)


def shard_name(node: ClusterNode) -> str:
    return str(node.name)


def describe_slots(client: RedisCluster, node: ClusterNode) -> str:
    """``slots 0-5460`` for the master ``node``, from the client's topology."""
    ranges: list[list[int]] = []
    for slot in sorted(
        slot
        for slot, owners in client.nodes_manager.slots_cache.items()
        if owners and owners[0].name == node.name
    ):
        if ranges and ranges[-1][1] == slot - 1:
            ranges[-1][1] = slot
        else:
            ranges.append([slot, slot])
    return "slots " + (",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges) or "none")


class ShardLink(RedisFanout):
    """The single-Redis fan-out, on one shard's master, reporting what the cluster moved."""

    def __init__(
        self,
        store: RedisStore,
        node: ClusterNode,
        on_moved: Callable[[MovedError | None], None],
        **options: Any,
    ) -> None:
        super().__init__(store, **options)
        self.node_name = shard_name(node)
        self._node_kwargs = {**node.connection_kwargs, "client_name": "parley-fanout"}
        self._node_class: type[Connection] = node.connection_class
        self._on_moved = on_moved

    def new_connection(self) -> AbstractConnection:
        return self._node_class(**self._node_kwargs)

    def rooms(self) -> list[str]:
        return list(self._rooms.values())

    def refused(self, error: RedisError) -> None:
        # MOVED or ASK: the slot of a room subscribed here is served elsewhere. redis-py
        # parses them into a ``MovedError`` (an ``AskError``) or an ``AskError``, whose
        # text no longer starts with "MOVED" or "ASK". Only a MOVED says where the slot
        # lives from now on.
        if isinstance(error, AskError):
            if not error.host:  # "MOVED 3999 :6381": on the host of the node that said it
                error.host = self._node_kwargs["host"]
                error.node_addr = error.host, error.port
            for channel in [c for c in self._rooms if key_slot(c) == error.slot_id]:
                self._let_go(channel)
        log.info("fan-out: shard %s refused a subscription (%s)", self.node_name, error)
        self._on_moved(error if isinstance(error, MovedError) else None)

    def ended(self, channel: bytes) -> None:
        # The server ends a shard channel's subscription when its slot moves away.
        if channel in self._rooms:
            self._let_go(channel)
            log.info("fan-out: shard %s ended a subscription (slot moved)", self.node_name)
            self._on_moved(None)

    def lost(self) -> None:
        self._on_moved(None)

    async def release(self, room: str) -> None:
        """Stop hearing ``room`` here, to hear it on another shard: unlike ``unfollow``,
        what the store knows of the room's log is kept."""
        channel = self._store._key(room, "ch").encode()
        if channel not in self._rooms:
            return
        self._let_go(channel)
        await self._unsubscribe(channel)

    def _let_go(self, channel: bytes) -> None:
        self._rooms.pop(channel, None)
        self._heard.pop(channel, None)
        for _, _, echo in self._echoes.pop(channel, []):
            if not echo.done():
                echo.set_result(None)
        confirmed = self._confirms.pop(channel, None)
        if confirmed is not None and not confirmed.done():
            confirmed.set_result(None)  # follow() returns; the reroute subscribes it again
        if channel in self._unconfirmed:
            self._unconfirmed.discard(channel)
            self._maybe_resync()


class ClusterFanout(Fanout):
    """One ``ShardLink`` per shard owning a followed room; rooms follow their slots."""

    def __init__(self, store: RedisStore, **link_options: Any) -> None:
        super().__init__()
        self._store = store
        self._options = link_options
        self._links: dict[str, ShardLink] = {}
        self._starting: dict[str, asyncio.Task[None]] = {}
        self._room_shard: dict[str, str] = {}
        self._stopping = False
        self._reroute_task: asyncio.Task[None] | None = None
        self._canary_rooms: dict[str, str] = {}  # shard -> a canary room on one of its slots
        self._hub_tag = random.getrandbits(48)
        self._past_reconnects = 0
        self._dirty = False  # something moved since the reroute's pass began
        self._redirects: list[MovedError] = []  # what shards answered, for the next pass

    @property
    def _cluster(self) -> RedisCluster:
        return as_cluster(self._store._client)

    @property
    def reconnects(self) -> int:
        """Reconnections of the shards' links, those since dropped included (metrics)."""
        return self._past_reconnects + sum(link.reconnects for link in self._links.values())

    @property
    def live(self) -> bool:
        return all(link.live for link in self._links.values()) and not self._rerouting()

    def _rerouting(self) -> bool:
        return self._reroute_task is not None and not self._reroute_task.done()

    def follows(self, room: str) -> bool:
        return room in self._room_shard

    async def start(self) -> None:
        with edge():
            await self._cluster.initialize()

    async def stop(self) -> None:
        self._stopping = True
        if self._reroute_task is not None:
            await cancel_firmly(self._reroute_task)
        for link in list(self._links.values()):
            await link.stop()
        self._links.clear()

    def _owner(self, room: str) -> ClusterNode:
        channel = self._store._key(room, "ch").encode()
        return self._cluster.nodes_manager.get_node_from_slot(key_slot(channel))

    async def _link(self, node: ClusterNode) -> ShardLink:
        name = shard_name(node)
        link = self._links.get(name)
        if link is None:
            link = self._links[name] = ShardLink(self._store, node, self._moved, **self._options)
            link.listener = self._deliver
            link.ephemeral_listener = self._deliver_ephemeral
            link.on_resync = self._resync
            self._starting[name] = asyncio.ensure_future(self._start_link(link))
        starting = self._starting.get(name)
        if starting is not None:
            await asyncio.shield(starting)
        return link

    async def _start_link(self, link: ShardLink) -> None:
        try:
            await link.start()
        except DOWN as exc:
            # Keeps trying in the background; the resync after it connects covers the gap.
            log.warning("fan-out: shard %s unreachable (%s)", link.node_name, exc)
            link.start_in_background()
            self._moved(None)
        finally:
            self._starting.pop(link.node_name, None)

    async def follow(self, room: str) -> None:
        if room in self._room_shard:
            return
        link = await self._link(self._owner(room))
        self._room_shard[room] = link.node_name
        await link.follow(room)

    async def unfollow(self, room: str) -> None:
        name = self._room_shard.pop(room, None)
        link = self._links.get(name or "")
        if link is None:
            return
        await link.unfollow(room)
        if not link.rooms():
            await self._drop_link(link)

    async def _drop_link(self, link: ShardLink) -> None:
        if self._links.get(link.node_name) is link:
            del self._links[link.node_name]
        self._past_reconnects += link.reconnects
        await link.stop()

    async def wait_echo(self, room: str, epoch: str, seq: int, timeout: float) -> None:
        link = self._links.get(self._room_shard.get(room, ""))
        if link is not None:
            await link.wait_echo(room, epoch, seq, timeout)

    async def publish_ephemeral(self, room: str, event: dict[str, Any]) -> None:
        payload = msgpack.packb(event)  # a map: never taken for an entry
        with edge():  # SPUBLISH goes to the shard that owns the room's slot
            await self._cluster.spublish(self._store._key(room, "ch"), payload)

    async def canary(self, timeout: float) -> None:
        """A canary through every shard this hub listens to (at least one)."""
        shards = list(self._links) or [shard_name(self._cluster.get_primaries()[0])]
        for name in shards:
            node = self._cluster.get_node(node_name=name)
            if node is None:
                raise StoreUnavailable(f"shard {name} left the cluster's topology")
            room = self._canary_room(node)
            link = await self._link(node)
            if not link.follows(room):
                self._room_shard[room] = link.node_name
            try:
                await link.canary(timeout, room=room)
            except StoreUnavailable as exc:
                raise StoreUnavailable(f"shard {name}: {exc}") from None

    def _canary_room(self, node: ClusterNode) -> str:
        """A room whose channel hashes to a slot ``node`` serves, stable while it does."""
        name = shard_name(node)
        room = self._canary_rooms.get(name)
        if room is not None and self._owner(room).name == name:
            return room
        for n in range(16384 * 4):  # bounded: every slot is hit long before
            room = f"{CANARY_ROOM}{self._hub_tag:x}-{n}"
            if self._owner(room).name == name:
                self._canary_rooms[name] = room
                return room
        raise StoreUnavailable(f"shard {name} serves no slot")

    # What the links report.

    def _deliver(self, entry: Any, epoch: str) -> None:
        if self.listener is not None:
            self.listener(entry, epoch)

    def _deliver_ephemeral(self, room: str, event: dict[str, Any]) -> None:
        if self.ephemeral_listener is not None:
            self.ephemeral_listener(room, event)

    def _resync(self) -> None:
        if self.on_resync is not None:
            self.on_resync()

    def _moved(self, redirect: MovedError | None) -> None:
        if self._stopping:
            return
        if redirect is not None:
            self._redirects.append(redirect)
        self._dirty = True
        if not self._rerouting():
            self._reroute_task = asyncio.ensure_future(self._reroute())

    async def _reroute(self) -> None:
        """Until a pass finds every followed room subscribed on its slot's master, every
        link live and nothing moved meanwhile: reread the topology and place the rooms.
        Then resync the hub, which reads back what the moves made it miss."""
        moved_any = False
        while not self._stopping:
            self._dirty = False
            settled = False
            with contextlib.suppress(*DOWN, RedisError):
                await self._cluster.initialize()
                await self._learn_redirects()
                moved_any |= await self._place_rooms()
                settled = not self._dirty and all(link.live for link in self._links.values())
            if settled:
                break
            await asyncio.sleep(REROUTE_INTERVAL)
        if moved_any and not self._stopping:
            log.info("fan-out: rooms moved to the shards that own them now; resyncing")
            self._resync()

    async def _learn_redirects(self) -> None:
        """Point each slot a shard answered ``MOVED`` for at the node it named.

        The client rereads the whole topology only after its own commands fail
        (``initialize`` does nothing otherwise): a slot move seen only by the
        fan-out would leave its rooms subscribed where the slot was, refused again
        at every pass. redis-py patches its topology the same way on a ``MOVED``.
        """
        redirects, self._redirects = self._redirects, []
        for redirect in redirects:
            await self._cluster.nodes_manager.move_slot(redirect)

    async def _place_rooms(self) -> bool:
        moved = False
        for room, name in list(self._room_shard.items()):
            owner = self._owner(room)
            link = self._links.get(name)
            if shard_name(owner) == name and link is not None and link.follows(room):
                continue
            moved = True
            if link is not None and shard_name(owner) != name:
                await link.release(room)
                if not link.rooms():
                    await self._drop_link(link)
            link = await self._link(owner)
            self._room_shard[room] = link.node_name
            await link.follow(room)
        return moved


async def check_shards(client: Redis, wait_replicas: int) -> None:
    """Each master answers, with as many replicas as an append waits for; else
    ``StoreUnavailable`` naming each shard that cannot take writes, and why."""
    cluster = as_cluster(client)
    down = []
    for node in cluster.get_primaries():
        where = f"{node.name} ({describe_slots(cluster, node)})"
        try:
            with edge():
                info = await cluster.execute_command("INFO", "replication", target_nodes=node)
        except StoreUnavailable as exc:
            down.append(f"{where} unreachable: {exc}")
            continue
        replicas = int(info.get("connected_slaves", 0)) if isinstance(info, dict) else 0
        if replicas < wait_replicas:
            down.append(
                f"{where} has {replicas} of the {wait_replicas} replica(s) "
                "an append waits for: writes are refused"
            )
    if down:
        raise StoreUnavailable("shard down: " + "; ".join(down))
