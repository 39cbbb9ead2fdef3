"""A bounded soak of one hub: many members connected, steady posting, reconnect churn.

    .venv/bin/python scripts/soak.py --minutes 10 --connections 2000
    .venv/bin/python scripts/soak.py --minutes 1 --connections 2000 --redis
    .venv/bin/python scripts/soak.py --minutes 1 --connections 2000 --cluster

It starts its own ``parley serve`` (SQLite in a temporary directory,
``--redis``: a ``redis-server`` of its own on a free loopback port, or
``--cluster``: a Redis Cluster of its own, three masters and three replicas, as
the tests start it: ``tests/support/redis_cluster.py``), registers
listings and orders through the internal API, and connects N members with the
Python client (one process, one event loop). Member ``m<i>`` watches one listing
room shared by ``--listing-members`` members and one order room of two (it is
buyer or seller), besides its inbox. Then, for ``--minutes``:

- ``--rate`` posts per second, into listing and order rooms, each retried with
  its ``client_msg_id`` after a dropped connection (at most ``POST_ATTEMPTS``);
- every second ``--churn`` percent of the connections are aborted (TCP gone,
  no close frame) and the client reconnects and resumes with ``since``;
- the hub's memory (``VmRSS``, ``RssAnon``, ``RssFile``) and open file
  descriptors (``/proc/<pid>``) are sampled after connecting, every minute, when
  posting stops, and at the end (after the read-back).

At the end it reads every room back (``history``, each inbox's ``seq``) and
checks: every acknowledged post is stored under its seq with its text; each
member got every entry of its rooms once, in order, with no gap; the hub
logged nothing at WARNING or above (slow-consumer closes are listed apart);
fds grew at most ``FD_TOLERANCE`` from the baseline (the sample after the first
minute, or after connecting when the run is shorter than two minutes), and
memory held up: from the baseline to when posting stopped, ``RssAnon`` grew at
most ``ANON_TOLERANCE``, and, in a run of ``LEVEL_MINUTES`` or more, at most
``LEVEL_TOLERANCE`` (of the baseline) over the second half of the posting time.
It prints a table and exits 1 if a check failed.

Memory is judged on ``RssAnon``, the hub's own heap (Python objects, malloc
arenas, SQLite's caches, thread stacks), not on ``VmRSS``: ``RssFile`` is
file-backed pages, shared libraries paged in as code paths are first run, and
the database file's pages if the store ever maps it (``PRAGMA mmap_size``); the
kernel can drop those, and they grow with the file, not with a leak. It is
judged when posting stops, not at the end: the read-back after it is one large
burst of reads that is part of no steady state. And a growth that goes on at the
same pace through the second half is a leak even under ``ANON_TOLERANCE`` (a
cache filling up to its cap levels off). Both figures, and ``VmRSS``, are in the
table.

Everything is on loopback, and every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from parley.client import ConnectionLost, ParleyClient, ParleyError  # noqa: E402

API_KEY = "soak-api-key"
JWT_SECRET = "soak-secret-that-is-at-least-32-bytes-long"
ANON_TOLERANCE = 0.20  # RssAnon may grow this much from the baseline to when posting stops
LEVEL_TOLERANCE = 0.05  # ... and this much (of the baseline) over the second half of posting
LEVEL_MINUTES = 4.0  # runs this long or longer check the second half
FD_TOLERANCE = 50  # open fds may grow this much from the baseline
POST_ATTEMPTS = 5  # sends of one post (same client_msg_id) before it counts as unacknowledged
RECONNECT_WAIT = 15.0  # seconds a post waits for its member to be connected again
CONNECT_CONCURRENCY = 100  # handshakes in flight while connecting
SETTLE_TIMEOUT = 60.0  # seconds the end phase waits for posts, reconnects and deliveries
PAGE = 100  # history page (the protocol's maximum)
LOG_LEVEL = re.compile(r"^\S+ \S+ (WARNING|ERROR|CRITICAL) ")
EXPECTED_WARNING = "slow consumer closed"  # a 4008 close: listed apart, not an error
POSTING_END = "posting end"  # the sample taken when posting and churn stop


# The hub and its store.


READY_RE = re.compile(rb"^parley ready ws_port=(\d+) api_port=(\d+)$", re.MULTILINE)


def free_port() -> int:
    """For redis-server, which cannot bind port 0 and say which port it got."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def memory_kb(pid: int) -> dict[str, int]:
    """``VmRSS``, ``RssAnon`` and ``RssFile`` of ``/proc/<pid>/status``, in kB (KiB)."""
    wanted = {"VmRSS": "rss_kb", "RssAnon": "rss_anon_kb", "RssFile": "rss_file_kb"}
    out = dict.fromkeys(wanted.values(), 0)
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in wanted:
                out[wanted[key]] = int(value.split()[0])
    return out


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Hub:
    """``parley serve`` (and its ``redis-server`` with ``--redis``) in a temporary directory."""

    def __init__(self, redis: bool, cluster: bool = False) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="parley-soak-"))
        self.ws_port = self.api_port = 0  # the hub binds port 0 and says which it got
        self.redis_port = free_port() if redis else None
        self.cluster: Any = None
        if cluster:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.support.redis_cluster import RedisCluster

            self.cluster = RedisCluster(self.dir / "cluster")
        self.log_path = self.dir / "hub.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.redis: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        if self.redis_port is not None:
            self._start_redis(self.redis_port)
            store = f"redis://127.0.0.1:{self.redis_port}/0"
        elif self.cluster is not None:
            self.cluster.start()
            store = self.cluster.url
        else:
            store = f"sqlite:///{self.dir}/parley.sqlite3"
        config = {
            "ws_host": "127.0.0.1",
            "ws_port": self.ws_port,
            "api_host": "127.0.0.1",
            "api_port": self.api_port,
            "api_key": API_KEY,
            "jwt_secret": JWT_SECRET,
            "store": store,
            "log_level": "INFO",
            "max_connections_per_ip": 0,  # every member comes from 127.0.0.1
            "drain_window": 0.0,  # the end of the soak needs no staggered drain
            "mail_dir": str(self.dir / "mail"),
        }
        path = self.dir / "config.yaml"
        path.write_text(yaml.safe_dump(config))
        parley = Path(sys.executable).with_name("parley")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(parley), "serve", "--config", str(path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + 30
        while (ready := READY_RE.search(self.log_path.read_bytes())) is None:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the hub did not start:\n{self.log_path.read_text()}")
            time.sleep(0.05)
        self.ws_port, self.api_port = int(ready[1]), int(ready[2])

    def _start_redis(self, port: int) -> None:
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.dir)]
        self.redis = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> int | None:
        """SIGTERM the hub (SIGKILL after 30 s), then Redis; the hub's exit code."""
        code = None
        for proc in (self.proc, self.redis):
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        if self.proc is not None:
            code = self.proc.returncode
        if self.cluster is not None:
            self.cluster.kill_all()
        return code

    def log_lines(self) -> tuple[list[str], list[str]]:
        """Lines at WARNING or above (and tracebacks): (errors, expected slow-consumer lines)."""
        errors: list[str] = []
        expected: list[str] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if LOG_LEVEL.match(line) or line.startswith("Traceback"):
                (expected if EXPECTED_WARNING in line else errors).append(line)
        return errors, expected

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


# Members and what each one saw.


@dataclass
class Member:
    """One connection and the checker of its rooms: room -> last seq seen."""

    id: str
    listing: str
    order: str | None  # None for a last member without a partner
    client: ParleyClient | None = None
    start: dict[str, int] = field(default_factory=dict)
    last: dict[str, int] = field(default_factory=dict)
    received: int = 0
    gaps: int = 0  # seqs skipped
    repeats: int = 0  # a seq seen again or out of order
    reloads: int = 0
    resumes: int = 0

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client._ws is not None

    @property
    def back(self) -> bool:
        """Connected, and every room resumed: no reconnect under way."""
        return self.connected and self.client is not None and self.client._resuming is None

    def see(self, event: dict[str, Any]) -> None:
        kind, room, seq = event.get("event"), event.get("room"), event.get("seq")
        if kind == "resumed":
            self.resumes += 1
        elif kind == "reload":
            self.reloads += 1
        if not isinstance(seq, int) or room not in self.last:
            return  # typing, presence, markers
        last = self.last[room]
        if seq <= last:
            self.repeats += 1
            return
        self.gaps += seq - last - 1
        self.received += 1
        self.last[room] = seq

    async def consume(self) -> None:
        assert self.client is not None
        async for event in self.client.events():
            self.see(event)


def layout(connections: int, group: int) -> list[Member]:
    """Member 2k sells order k's listing to member 2k+1; listing room j holds ``group`` members."""
    paired = connections - connections % 2
    return [
        Member(f"m{i}", f"listing:l{i // group}", f"order:o{i // 2}" if i < paired else None)
        for i in range(connections)
    ]


def token(user_id: str, ttl: float) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "name": user_id, "iat": now, "exp": now + int(ttl)}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


async def register(hub: Hub, members: list[Member]) -> None:
    """Listings (the shared rooms and one per order), then orders, through the internal API."""
    price = {"amount": 1000, "currency": "CAD"}

    def listing(lid: str, seller: str) -> tuple[str, dict[str, Any]]:
        return f"/v1/listings/{lid}", {"seller_id": seller, "title": lid, "price": price}

    rooms = {m.listing: m.id for m in reversed(members)}  # the group's first member sells
    listings = [listing(room.partition(":")[2], seller) for room, seller in rooms.items()]
    orders = []
    for seller, buyer in zip(members[0::2], members[1::2], strict=False):
        assert seller.order is not None
        oid = seller.order.partition(":")[2]
        listings.append(listing(f"ol{oid}", seller.id))
        body = {"listing_id": f"ol{oid}", "buyer_id": buyer.id, "seller_id": seller.id}
        orders.append((f"/v1/orders/{oid}", body))
    sem = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(
        hub.api, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:

        async def put(path: str, body: dict[str, Any]) -> None:
            async with sem, http.put(path, json=body) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"PUT {path}: HTTP {resp.status} {await resp.text()}")

        await asyncio.gather(*(put(p, b) for p, b in listings))
        await asyncio.gather(*(put(p, b) for p, b in orders))


async def connect(hub: Hub, member: Member, ttl: float) -> None:
    client = await ParleyClient.connect(hub.url, token(member.id, ttl), request_timeout=30.0)
    member.client = client
    # connect() returned without yielding to the loop: no inbox event was read yet.
    member.start[client.inbox] = client.positions[client.inbox][1]
    for room in (member.listing, member.order):
        if room is not None:
            member.start[room] = (await client.subscribe(room))["seq"]
    member.last = dict(member.start)


# Load.


@dataclass
class Posts:
    acked: dict[tuple[str, int], str] = field(default_factory=dict)  # (room, seq) -> text
    double_acks: int = 0  # one (room, seq) acknowledged for two different posts
    duplicates: int = 0  # retries answered duplicate: true (the first send was stored)
    retries: int = 0
    unacked: int = 0
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    skipped: int = 0  # ticks with too many posts in flight
    latencies: list[float] = field(default_factory=list)


async def post_one(member: Member, room: str, n: int, posts: Posts) -> None:
    assert member.client is not None
    text, cmid = f"soak {n}", f"soak-{n}"
    for attempt in range(POST_ATTEMPTS):
        if attempt:
            # The client may not have seen its connection drop yet: give it time to.
            await asyncio.sleep(0.1 * 2**attempt)
        deadline = time.monotonic() + RECONNECT_WAIT
        while not member.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        sent = time.perf_counter()
        try:
            result = await member.client.post(room, text, cmid)
        except (ConnectionLost, TimeoutError):
            posts.retries += 1
            continue
        except ParleyError as exc:
            posts.refused[str(exc.code)] += 1
            return
        key = (room, result["seq"])
        if posts.acked.setdefault(key, text) != text:
            posts.double_acks += 1
        posts.duplicates += bool(result.get("duplicate"))
        posts.latencies.append(time.perf_counter() - sent)  # of the send answered
        return
    posts.unacked += 1


async def post_steadily(
    members: list[Member], rate: float, order_share: float, until: float, posts: Posts
) -> list[asyncio.Task[None]]:
    """``rate`` posts per second until ``until``, at most ``rate`` x 5 s in flight."""
    tasks: set[asyncio.Task[None]] = set()
    every, owed, n, last = 0.01, 0.0, 0, time.monotonic()
    while time.monotonic() < until:
        await asyncio.sleep(every)
        now = time.monotonic()
        owed += (now - last) * rate
        last = now
        while owed >= 1:
            owed -= 1
            if len(tasks) >= rate * 5:
                posts.skipped += 1
                continue
            member = random.choice(members)
            room = member.order if random.random() < order_share else None
            room = room or member.listing
            n += 1
            task = asyncio.create_task(post_one(member, room, n, posts))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
    return list(tasks)


async def churn(members: list[Member], percent: float, until: float) -> int:
    """Every second abort ``percent`` of the connected members' TCP connections."""
    dropped = 0
    while time.monotonic() < until:
        await asyncio.sleep(1.0)
        live = [m for m in members if m.connected]
        for member in random.sample(live, min(len(live), round(len(members) * percent / 100))):
            assert member.client is not None and member.client._ws is not None
            member.client._ws.transport.abort()
            dropped += 1
    return dropped


@dataclass
class Sample:
    label: str
    at: float  # seconds since the start sample
    rss_kb: int  # VmRSS: RssAnon + RssFile + RssShmem
    rss_anon_kb: int  # the hub's own memory: what the memory checks judge
    rss_file_kb: int  # file-backed: shared libraries (and a mapped database file)
    fds: int
    cpu_s: float  # the hub's CPU seconds since it started
    load_cpu_s: float  # this process's


def sample(label: str, pid: int, t0: float) -> Sample:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    memory = memory_kb(pid)
    return Sample(
        label,
        time.monotonic() - t0,
        memory["rss_kb"],
        memory["rss_anon_kb"],
        memory["rss_file_kb"],
        open_fds(pid),
        cpu_seconds(pid),
        usage.ru_utime + usage.ru_stime,
    )


async def sample_every_minute(pid: int, t0: float, until: float, samples: list[Sample]) -> None:
    minute = 1
    while t0 + 60 * minute < until:
        await asyncio.sleep(t0 + 60 * minute - time.monotonic())
        samples.append(sample(f"minute {minute}", pid, t0))
        minute += 1


# Reading back.


async def read_room(client: ParleyClient, room: str) -> dict[int, str]:
    """Every message of ``room``: seq -> text (a system message's text too)."""
    out: dict[int, str] = {}
    before = None
    for _ in range(100_000):  # bounded: PAGE x this is more than any soak posts
        page = await client.history(room, before=before, limit=PAGE)
        for message in page["messages"]:
            out[message["seq"]] = message["text"]
        if not page["more"] or not page["messages"]:
            break
        before = page["messages"][-1]["seq"]
    return out


async def read_back(members: list[Member]) -> tuple[dict[str, dict[int, str]], dict[str, int]]:
    """Each listing and order room's messages, and each inbox's latest seq."""
    readers: dict[str, Member] = {}
    for member in members:
        for room in (member.listing, member.order):
            if room is not None:
                readers.setdefault(room, member)
    sem = asyncio.Semaphore(50)
    rooms: dict[str, dict[int, str]] = {}
    inboxes: dict[str, int] = {}

    async def room_of(room: str, member: Member) -> None:
        assert member.client is not None
        async with sem:
            rooms[room] = await read_room(member.client, room)

    async def inbox_of(member: Member) -> None:
        assert member.client is not None
        async with sem:
            inboxes[member.client.inbox] = (await member.client.notifications(limit=1))["seq"]

    await asyncio.gather(*(room_of(r, m) for r, m in readers.items()))
    await asyncio.gather(*(inbox_of(m) for m in members))
    return rooms, inboxes


async def scrape(hub: Hub) -> dict[str, float]:
    """The hub's ``/metrics``, Parley's own families only: 'name{labels}' -> value."""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers, timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"{hub.api}/metrics") as resp,
    ):
        text = await resp.text()
    out = {}
    for line in text.splitlines():
        if line.startswith("parley_") and "_bucket{" not in line:
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def wait_until(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
    return True


# The run.


async def soak(args: argparse.Namespace, hub: Hub) -> dict[str, Any]:
    members = layout(args.connections, args.listing_members)
    duration = args.minutes * 60
    t_setup = time.monotonic()
    await register(hub, members)
    sem = asyncio.Semaphore(CONNECT_CONCURRENCY)
    ttl = duration + 3600

    async def connect_one(member: Member) -> None:
        async with sem:
            await connect(hub, member, ttl)

    await asyncio.gather(*(connect_one(m) for m in members))
    consumers = [asyncio.create_task(m.consume()) for m in members]
    setup_s = time.monotonic() - t_setup

    t0 = time.monotonic()
    until = t0 + duration
    samples = [sample("start", hub.pid, t0)]
    posts = Posts()
    sampler = asyncio.create_task(sample_every_minute(hub.pid, t0, until, samples))
    churner = asyncio.create_task(churn(members, args.churn, until))
    in_flight = await post_steadily(members, args.rate, args.order_share, until, posts)
    dropped = await churner
    sampler.cancel()
    samples.append(sample(POSTING_END, hub.pid, t0))  # the steady load's last figures

    # The end: posts answered, everybody back, every entry delivered.
    t_end = time.monotonic()
    if in_flight:
        await asyncio.wait(in_flight, timeout=SETTLE_TIMEOUT)
    # Back: connected with no reconnect under way. (Not one `resumed` per drop:
    # a drop while the client resubscribes is covered by the resume it restarts.)
    reconnected = await wait_until(lambda: all(m.back for m in members), SETTLE_TIMEOUT)
    rooms, inboxes = await read_back(members)
    final = {room: max(entries, default=0) for room, entries in rooms.items()} | inboxes

    def caught_up() -> bool:
        return all(m.last[r] >= final[r] for m in members for r in m.last)

    delivered = await wait_until(caught_up, SETTLE_TIMEOUT)
    settle_s = time.monotonic() - t_end
    samples.append(sample("end", hub.pid, t0))
    metrics = await scrape(hub)
    for task in consumers:
        task.cancel()
    await asyncio.gather(*(m.client.close() for m in members if m.client is not None))

    missing = [k for k, text in posts.acked.items() if rooms.get(k[0], {}).get(k[1]) != text]
    acked_texts = set(posts.acked.values())
    stored_posts = sum(
        1 for entries in rooms.values() for t in entries.values() if t.startswith("soak ")
    )
    stored_unacked = sum(
        1
        for entries in rooms.values()
        for t in entries.values()
        if t.startswith("soak ") and t not in acked_texts
    )
    expected = sum(final[r] - m.start[r] for m in members for r in m.start)
    lat = sorted(posts.latencies) or [0.0]
    return {
        "setup_s": setup_s,
        "settle_s": settle_s,
        "reconnected": reconnected,
        "delivered": delivered,
        "samples": [vars(s) for s in samples],
        "posts": {
            "acked": len(posts.acked),
            "stored": stored_posts,
            "missing": len(missing),
            "stored_unacked": stored_unacked,
            "double_acks": posts.double_acks,
            "unacked": posts.unacked,
            "retries": posts.retries,
            "duplicates": posts.duplicates,
            "refused": dict(posts.refused),
            "skipped": posts.skipped,
            "p50_ms": 1000 * statistics.median(lat),
            "p99_ms": 1000 * lat[int(0.99 * (len(lat) - 1))],
            "max_ms": 1000 * lat[-1],
        },
        "events": {
            "expected": expected,
            "received": sum(m.received for m in members),
            "gaps": sum(m.gaps for m in members),
            "repeats": sum(m.repeats for m in members),
            "reloads": sum(m.reloads for m in members),
        },
        "churn": {"dropped": dropped, "resumed": sum(m.resumes for m in members)},
        "metrics": metrics,
    }


def memory_checks(samples: list[dict[str, Any]], minutes: float) -> list[str]:
    """``RssAnon`` from the baseline to when posting stopped, and over its second half."""
    base = samples[1] if minutes >= 2 and len(samples) > 2 else samples[0]
    last = next((s for s in samples if s["label"] == POSTING_END), samples[-1])
    anon = base["rss_anon_kb"]
    failed = []
    if last["rss_anon_kb"] > anon * (1 + ANON_TOLERANCE):
        growth = last["rss_anon_kb"] / anon - 1
        failed.append(f"RssAnon grew {growth:+.1%} from {base['label']} to {last['label']}")
    if minutes >= LEVEL_MINUTES:
        # The sample nearest the middle of the posting time, but never the baseline.
        middle = min(
            (s for s in samples if s["at"] < last["at"] and s["at"] > base["at"]),
            key=lambda s: abs(s["at"] - minutes * 30),
            default=None,
        )
        if middle is not None:
            grown = last["rss_anon_kb"] - middle["rss_anon_kb"]
            if grown > anon * LEVEL_TOLERANCE:
                failed.append(
                    f"RssAnon did not level off: it grew {grown / 1024:.1f} MiB "
                    f"({grown / anon:+.1%} of {base['label']}'s) from {middle['label']} "
                    f"to {last['label']}"
                )
    return failed


def verdict(result: dict[str, Any], minutes: float) -> list[str]:
    """The checks that failed, in words; empty when the soak passed."""
    samples = result["samples"]
    base = samples[1] if minutes >= 2 and len(samples) > 2 else samples[0]
    end = samples[-1]
    p, e = result["posts"], result["events"]
    failed = memory_checks(samples, minutes)
    if end["fds"] > base["fds"] + FD_TOLERANCE:
        failed.append(f"fds grew by {end['fds'] - base['fds']} from {base['label']}")
    if p["missing"] or p["double_acks"]:
        failed.append(f"{p['missing']} acknowledged posts missing, {p['double_acks']} seqs twice")
    if p["unacked"] or p["refused"]:
        failed.append(f"{p['unacked']} posts never acknowledged, refused: {p['refused']}")
    if e["gaps"] or e["repeats"] or e["reloads"] or e["received"] != e["expected"]:
        failed.append(
            f"events: {e['received']} of {e['expected']}, {e['gaps']} gaps, "
            f"{e['repeats']} repeats, {e['reloads']} reloads"
        )
    if not result["reconnected"] or not result["delivered"]:
        failed.append("members did not all reconnect or catch up within the settle timeout")
    if result["log_errors"]:
        failed.append(f"{len(result['log_errors'])} lines at WARNING or above in the hub's log")
    if result["hub_exit"] != 0:
        failed.append(f"the hub exited with {result['hub_exit']}")
    return failed


def report(args: argparse.Namespace, result: dict[str, Any]) -> str:
    m = result["metrics"]
    p, e, c = result["posts"], result["events"], result["churn"]
    store = "redis" if args.redis else "cluster" if args.cluster else "sqlite"
    lines = [
        f"soak: {args.connections} connections, {args.minutes:g} min, {args.rate:g} posts/s, "
        f"churn {args.churn:g} %/s, store {store}",
        f"setup (register + connect) {result['setup_s']:.1f} s, settle {result['settle_s']:.1f} s",
        "",
        "| sample | at s | hub RSS MiB | RssAnon MiB | RssFile MiB | hub fds | hub CPU s "
        "| load CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in result["samples"]:
        lines.append(
            f"| {s['label']} | {s['at']:.0f} | {s['rss_kb'] / 1024:.1f} "
            f"| {s['rss_anon_kb'] / 1024:.1f} | {s['rss_file_kb'] / 1024:.1f} | {s['fds']} "
            f"| {s['cpu_s']:.1f} | {s['load_cpu_s']:.1f} |"
        )
    post_ok = m.get('parley_ops_total{op="post",result="ok"}', 0)
    op_errors = {
        k: v for k, v in m.items() if k.startswith("parley_ops_total") and "ok" not in k and v
    }
    closes = {k: v for k, v in m.items() if k.startswith("parley_closes_total") and v}
    told = {k.split('"')[1]: v for k, v in m.items() if k.startswith("parley_reloads_total") and v}
    lines += [
        "",
        "| figure | value |",
        "|---|---:|",
        f"| posts acknowledged | {p['acked']} |",
        f"| posts stored (read back) | {p['stored']} |",
        f"| acknowledged and missing | {p['missing']} |",
        f"| stored, never acknowledged | {p['stored_unacked']} |",
        f"| never acknowledged after {POST_ATTEMPTS} sends | {p['unacked']} |",
        f"| refused | {sum(p['refused'].values())} {p['refused'] or ''} |",
        f"| resent after a drop / answered duplicate | {p['retries']} / {p['duplicates']} |",
        f"| ticks skipped (too many in flight) | {p['skipped']} |",
        f"| ack latency (send to reply) p50 / p99 / max ms | {p['p50_ms']:.1f} / "
        f"{p['p99_ms']:.1f} / {p['max_ms']:.1f} |",
        f"| events expected / received | {e['expected']} / {e['received']} |",
        f"| gaps / repeats / reloads | {e['gaps']} / {e['repeats']} / {e['reloads']} |",
        f"| connections dropped / resumed | {c['dropped']} / {c['resumed']} |",
        f"| hub: post ok / entries stored / deliveries | {post_ok:.0f} / "
        f"{m.get('parley_entries_stored_total', 0):.0f} / "
        f"{m.get('parley_deliveries_total', 0):.0f} |",
        f"| hub: connections accepted | {m.get('parley_connections_accepted_total', 0):.0f} |",
        f"| hub: op errors | {op_errors or 0} |",
        f"| hub: closes | {closes or 0} |",
        f"| hub: reloads told, by reason | {told or 0} |",
        f"| hub log: WARNING+ / slow-consumer lines | {len(result['log_errors'])} / "
        f"{result['log_slow_consumers']} |",
        f"| hub exit code | {result['hub_exit']} |",
    ]
    lines += [f"    {line}" for line in result["log_errors"][:10]]
    failed = result["failed"]
    lines += ["", "FAILED: " + "; ".join(failed) if failed else "PASSED"]
    return "\n".join(lines)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="posting and churn time")
    parser.add_argument("--connections", type=int, default=2000, help="members connected")
    parser.add_argument("--rate", type=float, default=200.0, help="posts per second in all")
    parser.add_argument("--churn", type=float, default=2.0, help="%% of connections dropped /s")
    parser.add_argument("--order-share", type=float, default=0.5, help="posts into order rooms")
    parser.add_argument("--listing-members", type=int, default=20, help="members per listing")
    parser.add_argument("--redis", action="store_true", help="a redis-server of its own")
    parser.add_argument("--cluster", action="store_true", help="a Redis Cluster of its own")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the hub's directory and log")
    args = parser.parse_args(argv)
    if args.redis and args.cluster:
        parser.error("--redis or --cluster, not both")
    if not (0 < args.minutes <= 120 and 2 <= args.connections <= 20_000 and args.rate > 0):
        parser.error("bounds: 0 < minutes <= 120, 2 <= connections <= 20000, rate > 0")
    if not (0 <= args.churn <= 50 and 0 <= args.order_share <= 1 and args.listing_members >= 1):
        parser.error("bounds: 0 <= churn <= 50, 0 <= order-share <= 1, listing-members >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the hub inherits it
    if (args.redis or args.cluster) and shutil.which("redis-server") is None:
        print("soak: redis-server is not on PATH (scripts/ensure-redis)", file=sys.stderr)
        return 2
    hub = Hub(args.redis, args.cluster)
    run = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop

        run = uvloop.run
    try:
        hub.start()
        result = run(soak(args, hub))
    finally:
        hub_exit = hub.stop()
    result["hub_exit"] = hub_exit
    result["log_errors"], slow = hub.log_lines()
    result["log_slow_consumers"] = len(slow)
    result["failed"] = verdict(result, args.minutes)
    print(report(args, result))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2))
    if args.keep:
        print(f"hub directory: {hub.dir}")
    else:
        hub.cleanup()
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
