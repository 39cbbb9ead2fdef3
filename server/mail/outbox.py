"""The mail outbox: jobs in a log room, sent in order by one sender among the hubs.

Queueing needs no new infrastructure: a job is an ``event`` entry of the room
``mail:outbox`` whose ``client_msg_id`` is the job's key
(``order_confirmation:<order>:<member>``). The store's idempotent append
stores a key once, so a retried order, or two hubs reporting it, queue nothing
more: each member gets one e-mail per order.

Sending: every hub runs a ``MailSender``; the one holding the store lease
``mail-sender`` (renewed while it works, released when it stops) reads the
jobs after its cursor, composes and sends each, then moves the cursor by
appending a ``read`` entry (``target`` = the job's seq), which
``store.read_state`` reads back. A send that fails is tried again with
exponential backoff and jitter, up to ``mail_max_attempts``, then logged as
failed and skipped; a server's permanent refusal (5xx) is not tried again.

With ``unread_reminder_minutes`` on, the same sender first turns the due
candidates of ``mail:reminders`` into ``unread_reminder`` jobs (``reminders``),
with a cursor of their own kept the same way.

Delivery is at least once around a crash: a hub that dies (or loses its lease)
after the mail left but before its cursor moved sends that one job again. The
files backend then rewrites the same file; over SMTP the copy has the same
``Message-ID``, which mail systems use to drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import hashlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final

from parley.protocol.errors import ParleyError
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.mail_words import MailKind, Role, mail_locale
from parley.server.core.model import Draft, Entry, Order, OrderId, UserId
from parley.server.core.rooms import order_room
from parley.server.links import Links
from parley.server.mail.compose import compose_order_mail
from parley.server.mail.reminders import REMINDER_ROOM, ReminderCandidate
from parley.server.mail.transports import MailError, MailRefused, MailTransport
from parley.server.store.base import Store
from parley.server.store.redis_wire import cancel_firmly

log = logging.getLogger("parley.mail")

MAIL_ROOM: Final = "mail:outbox"
LEASE_NAME: Final = "mail-sender"
LEASE_MS: Final = 15_000  # a sender that stops renewing hands over after this long
POLL_INTERVAL: Final = 1.0  # seconds between looks for jobs queued by other hubs
READ_BATCH: Final = 100  # log entries read at once
SKIP_ADVANCE: Final = 100  # cursor entries left behind before the cursor moves past them
RETRY_BASE: Final = 2.0  # seconds before the second attempt; doubles each time
RETRY_CAP: Final = 300.0  # the longest wait between two attempts

ORDER_CONFIRMATION: Final = "order_confirmation"
UNREAD_REMINDER: Final = "unread_reminder"
_KINDS: Final[tuple[MailKind, ...]] = (ORDER_CONFIRMATION, UNREAD_REMINDER)

Handle = Callable[[Entry], Awaitable[bool]]
"""Handles one job entry; ``False``: not yet (the entry and those after it wait)."""


@dataclass(frozen=True, slots=True)
class MailJob:
    kind: MailKind
    order_id: OrderId
    user_id: UserId
    mark: int | None = None  # a reminder: the member's read mark when it fell due

    @property
    def key(self) -> str:
        key = f"{self.kind}:{self.order_id}:{self.user_id}"
        return key if self.mark is None else f"{key}:{self.mark}"

    def to_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind, "order_id": self.order_id}
        data["user_id"] = self.user_id
        if self.mark is not None:
            data["mark"] = self.mark
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any] | None) -> MailJob | None:
        """The job an entry holds; ``None`` for one this version cannot read."""
        data = data or {}
        kind = next((k for k in _KINDS if k == data.get("type")), None)
        order_id, user_id, mark = data.get("order_id"), data.get("user_id"), data.get("mark")
        if kind is None or not isinstance(order_id, str) or not isinstance(user_id, str):
            return None
        if mark is not None and type(mark) is not int:
            return None
        return cls(kind, OrderId(order_id), UserId(user_id), mark)


async def queue_job(store: Store, job: MailJob, ts: int) -> bool:
    """Queue ``job`` once; ``False`` when its key was queued before."""
    draft = Draft(kind="event", text="", ts=ts, client_msg_id=job.key, data=job.to_data())
    return not (await store.append(MAIL_ROOM, draft)).duplicate


async def queue_order_confirmation(store: Store, order: Order, ts: int) -> int:
    """Queue the confirmation e-mail of both parties; return how many jobs are new."""
    # Together: one write batch (one commit) on the embedded store, one round trip on Redis.
    queued = await asyncio.gather(
        *(
            queue_job(store, MailJob(ORDER_CONFIRMATION, order.id, user_id), ts)
            for user_id in (order.buyer_id, order.seller_id)
        )
    )
    return sum(queued)


class MailSender:
    """Sends the outbox's jobs while this hub holds the lease; started and stopped by the app."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        transport: MailTransport,
        *,
        holder: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.transport = transport
        self.links = Links(config, clock)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.poll_interval = POLL_INTERVAL
        self.retry_base = RETRY_BASE
        self.retry_cap = RETRY_CAP
        self.lease_ms = LEASE_MS
        self.reminder_ms = int(config.unread_reminder_minutes * 60_000)  # 0: off
        self.sent = 0  # e-mails handed over by this sender (operators, tests)
        address = email.utils.parseaddr(config.mail_from)[1]
        self._domain = address.rpartition("@")[2] or "parley.invalid"
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    # Life cycle.

    def start(self) -> None:
        self._task = asyncio.ensure_future(self.run())

    async def stop(self) -> None:
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            # redis-py can swallow a cancellation landing inside a command: the
            # loop also checks the flag, and the cancel is repeated until it lands.
            await cancel_firmly(task)
        with contextlib.suppress(ParleyError):  # else the lease simply runs out
            await self.store.release_lease(LEASE_NAME, self.holder)

    def wake(self) -> None:
        """Look at the outbox now: a job was queued on this hub."""
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                if await self.store.try_lease(LEASE_NAME, self.holder, self.lease_ms):
                    await self._drain_holding()
            except ParleyError as exc:
                log.warning("mail outbox unavailable: %s", exc.message)
            except Exception:
                # The edge of a background task: a bug is logged, the outbox goes on.
                log.exception("mail sender failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_interval):
                    await self._wake.wait()

    async def _drain_holding(self) -> None:
        """Drain while the lease is renewed beside it; losing the lease stops the drain."""
        drain = asyncio.ensure_future(self.drain())
        keeper = asyncio.ensure_future(self._keep_lease())
        try:
            await asyncio.wait({drain, keeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (drain, keeper):
                task.cancel()
            results = await asyncio.gather(drain, keeper, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):  # a cancelled task's CancelledError is not
                raise result

    async def _keep_lease(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.lease_ms / 3000)
            if not await self.store.try_lease(LEASE_NAME, self.holder, self.lease_ms):
                log.warning("mail sender lease lost holder=%s", self.holder)
                return

    # The logs.

    async def drain(self) -> None:
        """Queue the reminders now due, then send every job, in order."""
        if self.reminder_ms > 0:
            await self._consume(REMINDER_ROOM, self._remind)
        await self._consume(MAIL_ROOM, self._deliver)

    async def _consume(self, room: str, handle: Handle) -> None:
        """Handle the jobs of ``room`` after its cursor, moving the cursor durably.

        The cursor moves right after each e-mail handed to the transport, so a
        crash sends at most that one again. Jobs that sent nothing (a member
        without an address, a reminder queued by its idempotent key) move it
        once per batch: a burst of thousands of orders costs a few writes, not
        one per job, and redoing them after a crash is harmless.
        """
        cursor = (await self.store.read_state(room)).up_to
        scan = done = cursor
        stop = False
        while not stop:
            entries = await self.store.entries_after(room, scan, READ_BATCH)
            if not entries:
                break
            for entry in entries:
                if entry.kind == "event":  # not one of the cursor's own entries
                    sent = self.sent
                    if not await handle(entry):
                        stop = True
                        break
                    done = entry.seq
                    if self.sent != sent:
                        await self._advance(room, done)
                        cursor = done
                scan = entry.seq
            if done > cursor:
                await self._advance(room, done)
                cursor = done
        # The cursor's entries pile up behind the last job; past a few, skip them for good.
        if not stop and scan - cursor >= SKIP_ADVANCE:
            await self._advance(room, scan)

    async def _advance(self, room: str, seq: int) -> None:
        draft = Draft(kind="read", text="", ts=to_ms(self.clock.now()), target=seq)
        await self.store.append(room, draft)

    # Reminders.

    async def _remind(self, entry: Entry) -> bool:
        """A candidate that is due: queue its reminder if the message is still unread."""
        if to_ms(self.clock.now()) < entry.ts + self.reminder_ms:
            return False  # candidates are in time order: the next ones are not due either
        candidate = ReminderCandidate.from_entry(entry)
        if candidate is None:
            log.error("reminder seq=%d not understood: skipped", entry.seq)
            return True
        marks = await self.store.read_marks(order_room(candidate.order_id))
        mark = marks.get(candidate.user_id, 0)
        if mark >= candidate.seq:
            return True  # read in time
        job = MailJob(UNREAD_REMINDER, candidate.order_id, candidate.user_id, mark)
        if await queue_job(self.store, job, to_ms(self.clock.now())):
            log.info("reminder queued job=%s", job.key)
        return True

    # Sending.

    async def _deliver(self, entry: Entry) -> bool:
        """Compose and send one job, retrying; a mail failure never stops the outbox."""
        job = MailJob.from_data(entry.data)
        if job is None:
            log.error("mail job seq=%d not understood: skipped", entry.seq)
            return True
        message = await self._compose(job)
        if message is None:
            return True
        name = f"{entry.seq:08d}-{job.kind}-{job.order_id}-{job.user_id}"
        attempts = self.config.mail_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                await self.transport.send(message, name)
            except MailRefused as exc:
                log.error("mail refused job=%s: %s; skipped", job.key, exc)
                return True
            except MailError as exc:
                if attempt >= attempts:
                    log.error("mail failed job=%s attempts=%d: %s; skipped", job.key, attempt, exc)
                    return True
                delay = min(self.retry_base * 2 ** (attempt - 1), self.retry_cap)
                delay *= 0.5 + random.random()  # jitter: senders don't retry in step
                log.warning(
                    "mail attempt %d failed job=%s: %s; again in %.1fs",
                    attempt,
                    job.key,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
            else:
                self.sent += 1
                log.info("mail sent job=%s attempt=%d", job.key, attempt)
                return True
        return True

    async def _compose(self, job: MailJob) -> EmailMessage | None:
        """The job's e-mail as the store knows things now; ``None`` when there is none to send."""
        order = await self.store.get_order(job.order_id)
        if order is None or not order.is_party(job.user_id):
            log.error("mail job=%s: no such order or party; skipped", job.key)
            return None
        member = await self.store.get_user(job.user_id)
        if member is None or not member.email:
            log.info("mail skipped job=%s: the member has no e-mail address", job.key)
            return None
        role: Role = "buyer" if job.user_id == order.buyer_id else "seller"
        counterpart = await self.store.get_user(
            order.seller_id if role == "buyer" else order.buyer_id
        )
        listing = await self.store.get_listing(order.listing_id)
        digest = hashlib.sha256(job.key.encode()).hexdigest()[:32]
        try:
            return compose_order_mail(
                kind=job.kind,
                locale=mail_locale(member.locale, self.config.mail_default_locale),
                role=role,
                order=order,
                listing=listing,
                member=member,
                to=member.email,
                counterpart=counterpart,
                link=self.links.url(order.id, member.id),
                sender=self.config.mail_from,
                message_id=f"<{job.kind}.{digest}@{self._domain}>",
                now=self.clock.now(),
            )
        except ValueError as exc:  # an address the e-mail package refuses (said by type only)
            log.error("mail not composed job=%s: %s; skipped", job.key, type(exc).__name__)
            return None
