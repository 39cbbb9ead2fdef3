"""What Parley reads in a Redis store URL, without redis-py: the configuration checks
a URL when it loads, and the store when it opens.

``redis+cluster://[user:password@]host:port,host:port/`` names nodes of a Redis
Cluster (``rediss+cluster`` for TLS). On either kind of URL, ``wait_replicas``
and ``wait_timeout_ms`` (query parameters) are Parley's: how many replicas must
hold an append before it is acknowledged, and how long to wait for them.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlencode

REDIS_SCHEMES: Final = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
DEFAULT_WAIT_TIMEOUT_MS: Final = 1000
MAX_WAIT_TIMEOUT_MS: Final = 4000  # under the store's 5 s socket timeout


def wait_options(url: str, cluster: bool) -> tuple[int, int, str]:
    """``(wait_replicas, wait_timeout_ms, url without them)`` from the store URL.

    ``?wait_replicas=N`` (default 1 on a cluster, 0 on one Redis) and
    ``?wait_timeout_ms=T`` (default 1000, at most 4000) are Parley's; other
    parameters stay for redis-py.
    """
    base, _, query = url.partition("?")
    rest = []
    replicas, timeout_ms = (1 if cluster else 0), DEFAULT_WAIT_TIMEOUT_MS
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in ("wait_replicas", "wait_timeout_ms"):
            try:
                number = int(value)
            except ValueError:
                raise ValueError(f"store: {name} must be a whole number") from None
            if name == "wait_replicas" and number < 0:
                raise ValueError("store: wait_replicas must be 0 or more")
            if name == "wait_timeout_ms" and not 0 < number <= MAX_WAIT_TIMEOUT_MS:
                raise ValueError(f"store: wait_timeout_ms must be 1 to {MAX_WAIT_TIMEOUT_MS}")
            if name == "wait_replicas":
                replicas = number
            else:
                timeout_ms = number
        else:
            rest.append((name, value))
    return replicas, timeout_ms, base + ("?" + urlencode(rest) if rest else "")


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], dict[str, Any]]:
    """The nodes and the connection options of ``redis+cluster://[user:pw@]h:p,h:p/``."""
    scheme, _, rest = url.partition("://")
    netloc = rest.partition("/")[0].partition("?")[0]
    credentials, _, hosts = netloc.rpartition("@")
    options: dict[str, Any] = {"ssl": scheme.startswith("rediss")}
    if credentials:
        username, _, password = credentials.partition(":")
        options["username"] = unquote(username) or None
        options["password"] = unquote(password) or None
    if not hosts.strip():
        raise ValueError(f"store: {scheme}:// names no node")
    nodes = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"store: {item!r} is not host:port in {scheme}://")
        nodes.append((host.strip("[]"), int(port)))
    return nodes, options
