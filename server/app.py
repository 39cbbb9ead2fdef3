"""One hub process: the store, the WebSocket hub and the internal API, wired.

``App`` is what ``parley serve`` runs and what the tests start in-process on
port 0. ``run`` adds the signals: SIGTERM stops accepting, closes clients with
1012 spread over ``drain_window`` so they reconnect elsewhere without arriving
all at once, finishes pending writes and returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from parley.server.api import InternalApi
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import UserId
from parley.server.core.rooms import user_room
from parley.server.data_rights_api import data_rights_routes
from parley.server.hub import Hub
from parley.server.mail.outbox import MailSender
from parley.server.mail.transports import open_transport
from parley.server.member_erasure import MemberErasures
from parley.server.member_export import member_sections
from parley.server.metrics import Metrics
from parley.server.moderation_api import moderation_routes
from parley.server.negotiations import Negotiations, stop_sweeper
from parley.server.notify import Notifier
from parley.server.push_api import push_routes
from parley.server.retention import RoomRetention
from parley.server.runtime import SlowLog, raise_open_files_limit, tune_gc
from parley.server.store import Store, open_store
from parley.server.store.outbox import PushItem, open_outbox

log = logging.getLogger("parley.app")


class SystemClock:
    def now(self) -> float:
        return time.time()


class App:
    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        store: Store | None = None,
        reuse_port: bool = False,
    ):
        self.config = config
        self.clock: Clock = clock or SystemClock()
        # Injected like the clock: a store of the caller's (opened by ``start``).
        self.store: Store = store or open_store(config.store)
        self.store.slow_commit_s = config.slow_log_ms / 1000
        self.outbox = open_outbox(
            self.store,
            clock=self.clock,
            is_read=self._is_read,
            visibility_timeout=config.push_visibility_timeout,
            max_items=config.push_max_items,
            render=self._render_push,
        )
        self.notifier = Notifier(config, self.store, self.clock, self.outbox)
        self.negotiations = Negotiations(config, self.store, self.clock, self.notifier)
        self.hub = Hub(config, self.store, self.clock, self.notifier, self.negotiations)
        self.erasures = MemberErasures(self.store, self.clock, self.outbox)
        self.retention = RoomRetention(config, self.store, self.clock)
        self.api = InternalApi(config, self.store, self.clock, self.notifier, self.negotiations)
        self.api.retention = self.retention
        self.api.extra_routes = [
            *push_routes(self.outbox),
            *moderation_routes(config, self.store, self.clock, self.notifier),
            *data_rights_routes(
                self.store,
                self.clock,
                self.erasures,
                member_sections(
                    self.store,
                    lambda: to_ms(self.clock.now()),
                    config.max_blocks,
                    config.max_mutes,
                ),
            ),
        ]
        self.mail = MailSender(config, self.store, self.clock, open_transport(config))
        self.api.on_mail_queued = self.mail.wake
        self.api.draining = lambda: self.hub.draining
        self.api.metrics = Metrics(self.store, hub=self.hub, outbox=self.outbox, mail=self.mail)
        self.reuse_port = reuse_port
        self.sweeper: asyncio.Task[None] | None = None
        self.ws_port = 0
        self.api_port = 0

    async def _render_push(self, item: PushItem) -> PushItem | None:
        """A push item as its notification reads when a gateway takes it (None: withdrawn)."""
        return await self.notifier.current_push(item)

    async def _is_read(self, user_id: UserId, seq: int) -> bool:
        """Whether the member read this notification in the app (push gateways skip it)."""
        return seq <= (await self.store.read_state(user_room(user_id))).up_to

    async def start(self) -> None:
        await self.store.open()
        await self.outbox.open()
        self.ws_port = await self.hub.start(
            self.config.ws_host, self.config.ws_port, reuse_port=self.reuse_port
        )
        self.api_port = await self.api.start(
            self.config.api_host, self.config.api_port, reuse_port=self.reuse_port
        )
        # Deadlines that passed while no hub ran are swept at once.
        self.sweeper = asyncio.ensure_future(self.negotiations.run_sweeper())
        self.mail.start()  # in the background: a slow mail server never holds the hub
        self.retention.start()  # only with a retention setting on

    async def stop(self) -> None:
        await stop_sweeper(self.sweeper)
        await self.mail.stop()
        await self.hub.shutdown()
        await self.erasures.stop()  # a later DELETE resumes what was cut short
        await self.retention.stop()
        await self.outbox.close()  # ends gateways' long-polls now; aiohttp would wait for them
        await self.api.stop()
        await self.store.close()
        log.info("stopped")


async def run(config: Config, *, reuse_port: bool = False) -> None:
    app = App(config, reuse_port=reuse_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    raise_open_files_limit()
    await app.start()
    tune_gc()
    slow = SlowLog(config.slow_log_ms)
    if config.slow_log_ms:
        slow.install()
    print(f"parley ready ws_port={app.ws_port} api_port={app.api_port}", flush=True)
    await stop.wait()
    log.info("shutting down")
    await app.stop()
