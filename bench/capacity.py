"""How many hubs and Redis shards a peak needs, from measured figures.

``python -m bench.capacity bench/results/<stamp> [more folders] [--members N]
[--posts-per-s N] ...`` reads the medians of a benchmark run (as
``bench.goals`` does: a later folder completes an earlier one) and prints the
sizing of docs/capacity.md, every step with the figure it comes from. Nothing
here is measured: it is arithmetic on what ``bench.run`` measured, with the
assumptions given as options.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from bench.goals import Summaries, fig, load


def _need(s: Summaries, workload: str, server: str, path: str) -> float:
    value = fig(s, workload, server, path)
    if value is None:
        raise SystemExit(f"bench.capacity: no {workload} {path} for {server} in these folders")
    return value


def plan(s: Summaries, a: argparse.Namespace) -> list[str]:
    # Per post, on the hubs: W2's shape (one durable append, two deliveries),
    # measured with every room's two members on two hubs when that run is there.
    two = s.get(("W2", "parley-redis-2hubs"), {})
    split = two.get("status") == "ok" and bool(two.get("kept_up"))  # not from a saturated run
    w2_server = "parley-redis-2hubs" if split else "parley-redis"
    hub_per_delivery = _need(s, "W2", w2_server, "hub_cpu_s_per_1M") / 1e6
    one_hub = _need(s, "W2", "parley-redis", "hub_cpu_s_per_1M") / 1e6
    w1_per_delivery = _need(s, "W1", "parley", "server_cpu_s_per_1M") / 1e6
    hub_per_post = 2 * hub_per_delivery + max(0.0, a.deliveries_per_post - 2) * w1_per_delivery
    hub_cores = a.posts_per_s * hub_per_post
    redis_per_post = 2 * _need(s, "W2", "parley-redis", "store_cpu_s_per_1M") / 1e6
    redis_cores = a.posts_per_s * redis_per_post
    cluster = fig(s, "W2", "parley-cluster", "store_cpu_s_per_1M")
    kb = _need(s, "W3", "parley", "rss_per_conn_kb")
    connect_ms = _need(s, "W3", "parley", "server_cpu_ms_per_connect")
    w3_rss = _need(s, "W3", "parley", "server_rss_mb")
    w3_conns = float(s["W3", "parley"].get("params", {}).get("connections", 10_000))
    base_mb = w3_rss - kb * w3_conns / 1024

    per_hub = a.connections_per_hub
    hubs_for_members = math.ceil(a.members / per_hub)
    hubs_for_cpu = math.ceil(hub_cores / a.hub_cpu_share)
    hubs = max(hubs_for_members, hubs_for_cpu) + a.spare_hubs
    members_per_hub = a.members / (hubs - a.spare_hubs)
    hub_mb = base_mb + kb * members_per_hub / 1024
    post_share = a.posts_per_s / (hubs - a.spare_hubs) * hub_per_post
    lost_hub_connect_s = members_per_hub * connect_ms / 1000 / (hubs - 1)
    everyone_connect_s = a.members * connect_ms / 1000 / hubs
    shards = max(a.min_shards, math.ceil(redis_cores / a.redis_cpu_share))

    def row(what: str, value: str, source: str) -> str:
        return f"| {what} | {value} | {source} |"

    out = [
        f"Peak: {a.members:,} members connected, {a.posts_per_s:,} posts/s, "
        f"{a.deliveries_per_post:g} deliveries per post.",
        "",
        "| step | figure | from |",
        "|---|---:|---|",
        row(
            "hub CPU per delivery, W2 on Redis",
            f"{hub_per_delivery * 1e6:,.1f} µs",
            f"W2 `{w2_server}` hub CPU"
            + (f" (one hub alone: {one_hub * 1e6:,.1f} µs)" if split else ""),
        ),
        row(
            "hub CPU per extra delivery (a room's third watcher on)",
            f"{w1_per_delivery * 1e6:,.1f} µs",
            "W1 `parley`",
        ),
        row(
            "hub CPU per post",
            f"{hub_per_post * 1e6:,.1f} µs",
            "2 W2 deliveries + the extra ones at W1's cost",
        ),
        row(
            "hub CPU at the peak",
            f"{hub_cores:,.2f} cores",
            f"{a.posts_per_s:,} posts/s x the above",
        ),
        row(
            "Redis CPU per post (one Redis)",
            f"{redis_per_post * 1e6:,.1f} µs",
            "W2 `parley-redis` store CPU x 2",
        ),
        row(
            "Redis Cluster CPU per post (3 masters + 3 replicas, all nodes)",
            "not measured" if cluster is None else f"{2 * cluster:,.1f} µs",
            "W2 `parley-cluster` store CPU x 2",
        ),
        row(
            "Redis CPU at the peak",
            f"{redis_cores:,.2f} cores",
            f"{a.posts_per_s:,} posts/s x one Redis's",
        ),
        row("hub memory per idle connection", f"{kb:,.2f} KB", "W3 `parley`"),
        row(
            "hub memory with no connection",
            f"{base_mb:,.0f} MiB",
            f"W3 RSS less {w3_conns:,.0f} connections",
        ),
        row("hub CPU per connect (TLS not included)", f"{connect_ms:,.3f} ms", "W3 `parley`"),
        row(
            "hubs for the members",
            f"{hubs_for_members:,}",
            f"{a.members:,} / {per_hub:,} connections per hub",
        ),
        row(
            "hubs for the posts",
            f"{hubs_for_cpu:,}",
            f"hub CPU / {a.hub_cpu_share:.0%} of a core each",
        ),
        row("hub processes (one core each)", f"{hubs:,}", f"the larger, + {a.spare_hubs} spare"),
        row(
            "each hub's memory at the peak",
            f"{hub_mb:,.0f} MiB",
            f"{members_per_hub:,.0f} connections",
        ),
        row("each hub's CPU for posts at the peak", f"{post_share:.0%} of a core", ""),
        row(
            "a lost hub's members reconnecting",
            f"{lost_hub_connect_s:,.1f} s of CPU per other hub",
            f"{members_per_hub:,.0f} connects over {hubs - 1} hubs",
        ),
        row(
            "every member reconnecting (a full restart)",
            f"{everyone_connect_s:,.1f} s of CPU per hub",
            f"{a.members:,} connects over {hubs} hubs",
        ),
        row(
            "Redis shards (masters, each with a replica)",
            f"{shards}",
            f"Redis CPU / {a.redis_cpu_share:.0%} of a core, at least {a.min_shards}",
        ),
    ]
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.capacity", description=__doc__.split("\n\n")[0]
    )
    add = ap.add_argument
    add("folders", type=Path, nargs="+", help="results folders, bench/results/<stamp>")
    add("--members", type=int, default=1_000_000, help="members connected at the peak")
    add("--posts-per-s", type=int, default=10_000, help="posts per second at the peak")
    add("--deliveries-per-post", type=float, default=3.0, help="watchers an average post reaches")
    add("--connections-per-hub", type=int, default=70_000, help="what one hub process holds")
    add("--hub-cpu-share", type=float, default=0.5, help="of a hub's core, for posts at the peak")
    add("--redis-cpu-share", type=float, default=0.5, help="of a Redis core, at the peak")
    add("--spare-hubs", type=int, default=2, help="hubs beyond what the peak needs")
    add("--min-shards", type=int, default=3, help="masters of the smallest cluster kept")
    args = ap.parse_args(argv)
    summaries, _ = load(args.folders)
    print("\n".join(plan(summaries, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
