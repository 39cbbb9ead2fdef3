"""bench.goals and bench.capacity read a results folder as bench.run writes it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench import capacity, goals


def write_runs(folder: Path, rows: list[dict[str, Any]]) -> Path:
    folder.mkdir()
    (folder / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def w2(server: str, cpu: float, hub: float, store: float, *, ok: bool = True) -> dict[str, Any]:
    return {
        "workload": "W2",
        "server": server,
        "status": "ok" if ok else "incomplete",
        "params": {"connections": 4000, "posts_per_conn": 20, "rate": 5000},
        "target_rate": 5000,
        "deliveries_per_s": 10_000 if ok else 7_000,
        "server_cpu_s_per_1M": cpu,
        "hub_cpu_s_per_1M": hub,
        "store_cpu_s_per_1M": store,
        "latency_ms": {"p99": 10.0},
    }


def other(workload: str, server: str, **figures: Any) -> dict[str, Any]:
    return {"workload": workload, "server": server, "status": "ok", **figures}


def run(tmp_path: Path, name: str, two_hubs_ok: bool) -> Path:
    return write_runs(
        tmp_path / name,
        [
            w2("socketio", 30.0, 30.0, 0.0),
            w2("parley", 60.0, 60.0, 0.0),
            w2("parley-redis", 80.0, 66.0, 14.0),
            w2("parley-redis-2hubs", 150.0, 130.0, 20.0, ok=two_hubs_ok),
            other("W1", "raw", server_cpu_s_per_1M=6.0),
            other("W1", "parley", server_cpu_s_per_1M=2.0),
            other(
                "W3",
                "parley",
                params={"connections": 10_000},
                rss_per_conn_kb=13.0,
                server_rss_mb=200.0,
                server_cpu_ms_per_connect=0.5,
            ),
            other("W3", "raw", rss_per_conn_kb=14.0, server_cpu_ms_per_connect=0.4),
            other("W4", "parley", acked_posts_per_s=21_000.0),
        ],
    )


def test_goals_are_judged_within_the_run_and_unmeasured_ones_say_so(tmp_path: Path) -> None:
    summaries, where = goals.load([run(tmp_path, "a", two_hubs_ok=True)])
    table = goals.table(summaries, where)
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    assert (
        "2.00x" in rows["W2 embedded: CPU per delivery"]
        and "**missed**" in rows["W2 embedded: CPU per delivery"]
    )
    assert "2.20x" in rows["W2 Redis: hub CPU per delivery"]  # the hub alone: 66 / 30
    assert rows["W1: CPU per delivery"].endswith("| met |")
    assert rows["W4 embedded: acked posts/s"].endswith("| met |")
    assert rows["W4 Redis: acked posts/s"].endswith("| not measured |")
    assert rows["W3: 100,000 idle connections"].endswith("| met |")


def test_capacity_uses_two_hubs_only_when_they_kept_up(tmp_path: Path) -> None:
    args = argparse.Namespace(
        members=1_000_000,
        posts_per_s=10_000,
        deliveries_per_post=2.0,
        connections_per_hub=70_000,
        hub_cpu_share=0.5,
        redis_cpu_share=0.5,
        spare_hubs=2,
        min_shards=3,
    )
    kept, _ = goals.load([run(tmp_path, "kept", two_hubs_ok=True)])
    saturated, _ = goals.load([run(tmp_path, "saturated", two_hubs_ok=False)])
    kept_plan = "\n".join(capacity.plan(kept, args))
    saturated_plan = "\n".join(capacity.plan(saturated, args))
    assert "| hub CPU per delivery, W2 on Redis | 130.0 µs |" in kept_plan
    assert "| hub CPU per delivery, W2 on Redis | 66.0 µs |" in saturated_plan
    assert "| hub CPU at the peak | 2.60 cores |" in kept_plan  # 10,000 x 2 x 130 µs
    assert "| hubs for the members | 15 |" in kept_plan
    assert "| Redis shards (masters, each with a replica) | 3 |" in kept_plan
