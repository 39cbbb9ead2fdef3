"""Resuming with since: exactly what was missed, across reconnects and hub restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.conftest import RunningHub, start_hub, stop_hub


async def test_resume_with_since_gets_exactly_what_was_missed(hub: RunningHub) -> None:
    await hub.listing("L1")
    poster = await hub.client("u1")
    watcher = await hub.client("u2")
    await watcher.subscribe("listing:L1")
    for i in range(3):
        await poster.post("listing:L1", f"before {i}")
    seen = [await watcher.next_event() for _ in range(3)]
    last_seen = seen[-1]["seq"]
    await watcher.close()

    for i in range(4):
        await poster.post("listing:L1", f"while away {i}")
    await poster.edit("listing:L1", 2, "before 1 (edited)")

    back = await hub.client("u2")
    result = await back.subscribe("listing:L1", since=last_seen)
    assert "reload" not in result
    missed = result["missed"]
    assert [e["seq"] for e in missed] == [4, 5, 6, 7, 8]
    assert [e["text"] for e in missed[:4]] == [f"while away {i}" for i in range(4)]
    assert missed[4]["event"] == "message_edited" and missed[4]["target"] == 2
    assert result["seq"] == 8
    # And live delivery continues from there, with nothing repeated.
    await poster.post("listing:L1", "after")
    queued = [await back.next_event() for _ in range(6)]
    assert [e["seq"] for e in queued] == [4, 5, 6, 7, 8, 9]


async def test_client_reconnects_by_itself_and_resumes(hub: RunningHub) -> None:
    await hub.listing("L1")
    poster = await hub.client("u1")
    watcher = await hub.client("u2", reconnect=True, max_backoff=0.2)
    await watcher.subscribe("listing:L1")
    await poster.post("listing:L1", "one")
    assert (await watcher.next_event())["seq"] == 1
    # Drop the watcher's connection from the hub side, then post while it is gone.
    [conn] = [c for c in hub.app.hub.conns if c.principal.user_id == "u2"]
    conn.transport.abort()
    await poster.post("listing:L1", "two")
    await poster.post("listing:L1", "three")
    events = [await watcher.next_event() for _ in range(3)]
    messages = [e for e in events if e["event"] == "message"]
    assert [e["text"] for e in messages] == ["two", "three"]
    assert {"event": "resumed"} in events


async def test_resume_across_a_hub_restart_on_the_same_sqlite_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'parley.sqlite3'}"
    first = await start_hub(url)
    try:
        await first.listing("L1")
        poster = await first.client("u1")
        watcher = await first.client("u2")
        subscribed = await watcher.subscribe("listing:L1")
        for i in range(3):
            await poster.post("listing:L1", f"m{i}")
        last_seen = (await watcher.next_event())["seq"]
    finally:
        await stop_hub(first)

    second = await start_hub(url)
    try:
        poster = await second.client("u1")
        await poster.post("listing:L1", "after restart")
        back = await second.client("u2")
        result = await back.request(
            "subscribe", room="listing:L1", since=last_seen, epoch=subscribed["epoch"]
        )
        assert result["epoch"] == subscribed["epoch"]
        assert [e["text"] for e in result["missed"]] == ["m1", "m2", "after restart"]
        assert [e["seq"] for e in result["missed"]] == [2, 3, 4]
    finally:
        await stop_hub(second)


@pytest.mark.parametrize("case", ["other_epoch", "future_seq", "too_many_missed"])
async def test_resume_that_cannot_be_exact_says_reload(case: str, sqlite_url: str) -> None:
    hub = await start_hub(sqlite_url, resume_max_missed=5)
    try:
        await hub.listing("L1")
        poster = await hub.client("u1")
        for i in range(10):
            await poster.post("listing:L1", f"m{i}")
        member = await hub.client("u2")
        fields: dict[str, object] = {"room": "listing:L1", "since": 8}
        if case == "other_epoch":
            fields["epoch"] = "an-older-log"
        elif case == "future_seq":
            fields["since"] = 50  # the log was restored from an older copy
        else:
            fields["since"] = 2
        result = await member.request("subscribe", **fields)
        assert result["reload"] is True
        assert result["seq"] == 10
        assert "missed" not in result
        # Still subscribed: live delivery goes on.
        await poster.post("listing:L1", "live")
        event = await member.next_event()
        while event["event"] == "reload":
            event = await member.next_event()
        assert event["seq"] == 11
    finally:
        await stop_hub(hub)
