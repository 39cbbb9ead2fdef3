"""What Parley reads in a Redis store URL: a cluster's nodes, the replicas to wait for;
a bad URL stops the configuration with a message naming the setting."""

from __future__ import annotations

import pytest

from parley.server.config import ConfigError, load_config
from parley.server.store.redis_url import parse_cluster_url, wait_options

KEYS = {"jwt_secret": "s" * 32, "api_key": "k"}


def test_a_cluster_url_names_its_nodes_and_credentials() -> None:
    nodes, options = parse_cluster_url("rediss+cluster://app:p%40ss@10.0.0.5:7000,[::1]:7001/")
    assert nodes == [("10.0.0.5", 7000), ("::1", 7001)]
    assert options == {"ssl": True, "username": "app", "password": "p@ss"}
    assert parse_cluster_url("redis+cluster://h:1/?wait_replicas=2")[0] == [("h", 1)]


def test_a_cluster_waits_for_one_replica_and_one_redis_for_none_by_default() -> None:
    assert wait_options("redis+cluster://h:1,h:2/", cluster=True) == (
        1,
        1000,
        "redis+cluster://h:1,h:2/",
    )
    assert wait_options("redis://h:6379/0", cluster=False) == (0, 1000, "redis://h:6379/0")


def test_parleys_parameters_leave_the_url_and_the_others_stay() -> None:
    replicas, timeout_ms, rest = wait_options(
        "redis://h:6379/0?wait_replicas=2&health_check_interval=5&wait_timeout_ms=250",
        cluster=False,
    )
    assert (replicas, timeout_ms, rest) == (2, 250, "redis://h:6379/0?health_check_interval=5")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+cluster:///", "names no node"),
        ("redis+cluster://h/", "not host:port"),
        ("redis+cluster://h:port/", "not host:port"),
        ("redis+cluster://h:1/?wait_replicas=-1", "wait_replicas"),
        ("redis+cluster://h:1/?wait_replicas=one", "wait_replicas"),
        ("redis://h:1/0?wait_timeout_ms=0", "wait_timeout_ms"),
        ("redis://h:1/0?wait_timeout_ms=60000", "wait_timeout_ms"),
        ("memcached://h:1/", "store: must be"),
    ],
)
def test_a_bad_store_url_stops_the_configuration_naming_it(url: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        load_config(None, {}, store=url, **KEYS)


def test_a_good_cluster_url_is_accepted() -> None:
    config = load_config(None, {}, store="redis+cluster://10.0.0.5:7000,10.0.0.6:7000/", **KEYS)
    assert config.store.startswith("redis+cluster://")
