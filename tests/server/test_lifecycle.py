"""The hub as a process: SIGTERM, the CLI, slow consumers."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from parley.client import ConnectionLost, ParleyClient
from parley.protocol.errors import CloseCode
from parley.server.auth import mint_token
from parley.server.config import load_config
from tests.server.conftest import RunningHub, start_hub, stop_hub
from tests.support.closed_port import closed_port
from tests.support.hubproc import API_KEY, SECRET, HubProcess


async def next_close(client: ParleyClient) -> dict[str, Any]:
    """The ``closed`` event, past the events queued before it (bounded)."""
    for _ in range(1000):
        event = await client.next_event(timeout=10)
        if event["event"] == "closed":
            return event
    raise AssertionError("no closed event")


async def test_sigterm_closes_clients_with_1012_after_finishing_writes(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    proc = HubProcess(tmp_path, store)
    proc.start()
    try:
        import aiohttp

        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
            body = {"seller_id": "s1", "title": "Coat", "price": {"amount": 100, "currency": "CAD"}}
            async with http.put(f"{proc.api_url}/v1/listings/L1", json=body) as response:
                assert response.status == 200
        config = load_config(None, {}, jwt_secret=SECRET, api_key=API_KEY)
        client = await ParleyClient.connect(
            proc.ws_url, mint_token(config, "u1", "alice"), reconnect=False
        )
        await client.subscribe("listing:L1")
        acked = [await client.post("listing:L1", f"m{i}") for i in range(20)]
        # The test holds the database's write lock: the late posts reach the
        # hub but cannot be stored before SIGTERM; they must be once it is let go.
        lock = sqlite3.connect(tmp_path / "parley.sqlite3", isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        try:
            in_flight = [
                asyncio.ensure_future(client.post("listing:L1", f"late{i}")) for i in range(20)
            ]
            # The hub reads a connection's frames in order: once the ping is
            # answered, it has taken in every late post.
            await client.request("ping")
            assert proc.proc is not None
            proc.proc.send_signal(signal.SIGTERM)
            closed = await next_close(client)
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert closed["code"] == CloseCode.service_restart
        assert await asyncio.to_thread(proc.proc.wait, 30) == 0
        late = await asyncio.gather(*in_flight, return_exceptions=True)
    finally:
        proc.stop()

    # Every acknowledged post is in the log after a restart on the same file.
    hub = await start_hub(store)
    try:
        reader = await hub.client("u2")
        history = (await reader.history("listing:L1", limit=100))["messages"]
        stored = {m["seq"]: m["text"] for m in history}
        assert {a["seq"]: f"m{i}" for i, a in enumerate(acked)}.items() <= stored.items()
        # Each late post was finished, answered or not (its answer may come
        # after the close), and an answered one is stored under its seq.
        assert sorted(stored.values()) == sorted(
            [f"m{i}" for i in range(20)] + [f"late{i}" for i in range(20)]
        )
        for i, result in enumerate(late):
            if isinstance(result, dict):
                assert stored[result["seq"]] == f"late{i}"
            else:
                assert isinstance(result, ConnectionLost)
    finally:
        await stop_hub(hub)


async def test_a_slow_consumer_is_closed_with_4008_and_others_go_on(sqlite_url: str) -> None:
    hub = await start_hub(
        sqlite_url, send_buffer_bytes=64 * 1024, write_burst=10_000, member_write_burst=10_000
    )
    try:
        await hub.listing("L1")
        poster = await hub.client("u1")
        fast = await hub.client("u2")
        await fast.subscribe("listing:L1")
        # A client that stops reading: its library reads one frame and then
        # lets TCP fill up behind it.
        slow = await connect(hub.ws_url, subprotocols=["parley.v1.json"], max_queue=1)  # type: ignore[list-item]
        await slow.send(f'{{"id":1,"op":"connect","token":"{hub.token("u3")}"}}')
        await slow.recv()
        await slow.send('{"id":2,"op":"subscribe","room":"listing:L1"}')
        await slow.recv()
        [slow_conn] = [c for c in hub.app.hub.conns if c.principal.user_id == "u3"]
        text = "x" * 3900
        for i in range(2000):  # bounded: the slow client is closed long before the end
            await poster.post("listing:L1", f"{i} {text}")
            event = await fast.next_event()
            assert event["seq"] == i + 1
            if slow_conn.closing:
                break
        assert slow_conn.closing, "the slow consumer was never closed"
        # When it reads again, it finds its backlog, then the close code.
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(5000):
                await asyncio.wait_for(slow.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == CloseCode.slow_consumer
        # The fast watcher keeps getting everything.
        last = await poster.post("listing:L1", "after")
        assert (await fast.next_event())["seq"] == last["seq"]
    finally:
        await stop_hub(hub)


def test_cli_token_mints_a_token_the_hub_accepts(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"jwt_secret: {SECRET}\napi_key: k\n")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "parley.server.cli",
            "token",
            "--config",
            str(config),
            "--user",
            "u7",
            "--name",
            "gus",
            "--locale",
            "fr-CA",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    claims = jwt.decode(out, SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["name"], claims["locale"]) == ("u7", "gus", "fr-CA")


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("ws_port", "abc", "ws_port"),
        ("jwt_algorithm", "none", "jwt_algorithm"),
        ("workers", "2", "workers"),
    ],
)
def test_a_bad_config_fails_at_start_naming_the_setting(
    tmp_path: Path, setting: str, value: str, named: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"jwt_secret: {SECRET}\napi_key: k\nstore: sqlite:///{tmp_path}/p.db\n")
    result = subprocess.run(
        [sys.executable, "-m", "parley.server.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", f"PARLEY_{setting.upper()}": value},
    )
    assert result.returncode == 2
    assert named in result.stderr


def test_workers_on_a_port_somebody_holds_fail_at_start_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    with closed_port() as port:
        config.write_text(
            f"jwt_secret: {SECRET}\napi_key: k\nstore: redis://127.0.0.1:{port}/0\n"
            f"workers: 2\nws_host: 127.0.0.1\nws_port: {port}\n"
        )
        result = subprocess.run(
            [sys.executable, "-m", "parley.server.cli", "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            env={"PATH": "/usr/bin:/bin"},
        )
    assert result.returncode == 2
    assert f"cannot bind 127.0.0.1:{port}: Address already in use" in result.stderr


async def test_readyz_and_healthz(hub: RunningHub) -> None:
    async with hub.http.get(hub.api_url + "/healthz") as response:
        assert response.status == 200
    async with hub.http.get(hub.api_url + "/readyz") as response:
        assert response.status == 200
    import aiohttp

    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.put(hub.api_url + "/v1/users/u1", json={"name": "x"}) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"
