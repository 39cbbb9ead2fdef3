"""What ``GET /metrics`` shows: counters kept as plain numbers, read at scrape time.

The hub, the store and the fan-out count in place on their hot paths (an int
bumped, a ``Buckets`` histogram observed), with no lock and no Prometheus
object per frame; ``Metrics.collect`` turns them into metric families only
when Prometheus scrapes. The route is behind the API key like the rest of the
internal port (Prometheus sends it as a bearer token). Each family's HELP
text says what it counts.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from parley.protocol.errors import CloseCode, ErrorCode, ParleyError
from parley.protocol.messages import OPS, Connect
from parley.server.core.buckets import Buckets

if TYPE_CHECKING:
    from parley.server.hub import Hub
    from parley.server.mail.outbox import MailSender
    from parley.server.ops import Handler
    from parley.server.store.base import Store
    from parley.server.store.outbox import PushOutbox

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes
RESULTS: Final = ("ok", *(str(code) for code in ErrorCode))  # the ``result`` label's values
RESULT_SLOT: Final[dict[ErrorCode, int]] = {code: i for i, code in enumerate(ErrorCode, 1)}
UNPARSED_OP: Final = "invalid"  # frames that are not a request: undecodable, unknown op...
LAG_BOUNDS: Final = (0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10.0)  # s, parley_fanout_lag_seconds
RELOAD_REASONS: Final = ("too_many", "epoch", "ahead", "reset")
ALWAYS_SHOWN_CLOSES: Final = (CloseCode.slow_consumer, CloseCode.too_many_errors)
OUTBOX_PROBE_GROUP: Final = "metrics"  # the outbox's length is the same for every group


def op_name(kind: type) -> str:
    """``NotificationsRead`` -> ``notifications_read``: the op as it is on the wire."""
    name = re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()
    if name not in OPS:
        raise ValueError(f"{kind.__name__} is not a request type of the protocol")
    return name


class OpCounts:
    """Replies by op and result: one list of ints per op, made once.

    The hub finds an op's handler and its row with the one lookup it made
    anyway (``routes``), then bumps a slot: 0 for ``ok``, ``RESULT_SLOT[code]``
    for an error. Nothing is allocated per frame.
    """

    def __init__(self, handlers: Mapping[type, Handler]) -> None:
        self.rows: dict[str, list[int]] = {}
        self.routes: dict[type, tuple[Handler | None, list[int]]] = {}
        every: dict[type, Handler | None] = {Connect: None, **handlers}  # connect: once, first
        for kind, handler in every.items():
            row = self.rows[op_name(kind)] = [0] * len(RESULTS)
            self.routes[kind] = (handler, row)
        self.unparsed = self.rows[UNPARSED_OP] = [0] * len(RESULTS)


class Metrics:
    """The collector behind ``GET /metrics``; without a hub, the store's alone."""

    def __init__(
        self,
        store: Store,
        *,
        hub: Hub | None = None,
        outbox: PushOutbox | None = None,
        mail: MailSender | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.outbox = outbox
        self.mail = mail
        self._outbox_items: int | None = None  # read by ``scrape`` before collecting
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)  # memory, file descriptors, CPU

    async def scrape(self) -> bytes:
        """The text exposition; reads the one figure that needs the store first."""
        self._outbox_items = None
        if self.outbox is not None:
            # The store down: /readyz says so; this scrape goes without the figure.
            with contextlib.suppress(ParleyError):
                self._outbox_items = (await self.outbox.stats(OUTBOX_PROBE_GROUP))["length"]
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        yield from self._hub()
        store = self.store
        stored = CounterMetricFamily(
            "parley_entries_stored",
            "Entries appended to room logs and acknowledged by the store, from this hub "
            "(messages, edits, deletions, read marks, system messages, notifications); "
            "a retried duplicate is not counted.",
        )
        stored.add_metric([], store.appended)
        yield stored
        yield _histogram(
            "parley_store_write_seconds",
            "Store write latency: each SQLite batch commit, or each Redis append "
            "round trip (one pipeline per event-loop iteration).",
            store.write_seconds,
        )
        reconnects = getattr(store.fanout, "reconnects", None)
        if reconnects is not None:
            family = CounterMetricFamily(
                "parley_redis_fanout_reconnects",
                "Times the Redis pub/sub connection was made again after a drop.",
            )
            family.add_metric([], reconnects)
            yield family
        if self.outbox is not None:
            yield GaugeMetricFamily(
                "parley_push_long_polls",
                "Gateway fetches (GET /v1/push with wait) waiting on this hub for an item now.",
                value=self.outbox.long_polls,
            )
        if self._outbox_items is not None:
            yield GaugeMetricFamily(
                "parley_push_outbox_items",
                "Notifications retained in the push outbox (not yet acknowledged by every "
                "gateway group).",
                value=self._outbox_items,
            )
        if self.mail is not None:
            sent = CounterMetricFamily(
                "parley_mail_sent", "E-mails handed to the mail transport by this hub."
            )
            sent.add_metric([], self.mail.sent)
            yield sent

    def _hub(self) -> Iterator[Metric]:
        hub = self.hub
        if hub is None:
            return
        yield GaugeMetricFamily(
            "parley_connections", "WebSocket connections open and authenticated.", len(hub.conns)
        )
        accepted = CounterMetricFamily(
            "parley_connections_accepted", "WebSocket connections that authenticated."
        )
        accepted.add_metric([], hub.accepted)
        yield accepted
        yield GaugeMetricFamily(
            "parley_rooms_followed", "Rooms this hub follows for its watchers.", len(hub.rooms)
        )
        ops = CounterMetricFamily(
            "parley_ops",
            "Requests answered, by op and result (ok or the error code); op=invalid for "
            "frames that are no request.",
            labels=["op", "result"],
        )
        for op, row in hub.ops.rows.items():
            for result, count in zip(RESULTS, row, strict=True):
                if count or result == "ok":
                    ops.add_metric([op, result], count)
        yield ops
        delivered = CounterMetricFamily(
            "parley_deliveries",
            "Room events queued to watchers' connections (one per watcher per event).",
        )
        delivered.add_metric([], hub.delivered)
        yield delivered
        yield _histogram(
            "parley_fanout_lag_seconds",
            "From an entry's timestamp (taken where it was posted) to its delivery by "
            "this hub; includes the store write and, on Redis, the pub/sub trip.",
            hub.lag,
        )
        closes = CounterMetricFamily(
            "parley_closes",
            "Connections the hub closed after they authenticated, by close code "
            "(4008: slow consumer, 4003: too many bad frames, 1012: drained at shutdown).",
            labels=["code"],
        )
        counts = {int(code): 0 for code in ALWAYS_SHOWN_CLOSES} | hub.closes
        for code, count in sorted(counts.items()):
            closes.add_metric([str(code)], count)
        yield closes
        reloads = CounterMetricFamily(
            "parley_reloads",
            "Connections told to reload a room instead of resuming it, by reason "
            "(too_many: more than resume_max_missed missed; epoch: the client's log was "
            "replaced; ahead: the client knows more than the log; reset: the log "
            "changed under a live room).",
            labels=["reason"],
        )
        for reason in RELOAD_REASONS:
            reloads.add_metric([reason], hub.reloads.get(reason, 0))
        yield reloads


def _histogram(name: str, documentation: str, buckets: Buckets) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation)
    family.add_metric([], buckets.cumulative(), buckets.total)
    return family
