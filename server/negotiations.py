"""Negotiations as they happen: stored, told, swept (R5-R7).

``server.core.offers`` decides what a change is; this module makes it happen
once. Every change is a compare-and-set on the negotiation's ``version``: of
two answers racing (an accept and a withdraw, two hubs sweeping the same
deadline) exactly one is stored, and only the one stored is told. A change
that lost is decided again on the negotiation as it now is, which gives the
loser a clear refusal (``offer_closed``) rather than a silent overwrite.

What each change tells, after it is stored:

- the party who must answer or learn of it gets a notification (``offer_*``,
  inbox and push), keyed by the negotiation's id and version, so it is never
  sent twice for one change;
- both parties get an ``offer`` entry in their own room with the new state,
  so every open widget of theirs shows it live without polling;
- an accepted negotiation puts an ``offer.accepted`` event into the backend's
  feed (``backend:events``, read with ``GET /v1/events``).

Telling is driven to the end: the store marks each change untold in the same
atomic step that stores it, and the mark goes once every step of the telling is
stored (each step is idempotent by its key). A hub that dies in between leaves
the mark; ``complete`` (run with each sweep, on any hub) tells the change
again from the stored negotiation, so an accepted offer always gets its
``offer.accepted`` event.

The sweeper looks every ``offer_sweep_interval`` seconds for open
negotiations whose deadline passed and expires them, on any number of hubs,
each exactly once. The deadline itself does not wait for the sweep: an answer
at or after it is refused (``offer_expired``) by the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from typing import Any, Final

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.config import Config
from parley.server.core.clock import Clock, to_ms
from parley.server.core.model import Draft, Listing, ListingId, UserId
from parley.server.core.offers import (
    Negotiation,
    OfferState,
    Party,
    actor_of,
    close_item_sold,
    expire,
    is_open_at,
    notice_kind,
    recipients_of,
    to_wire,
)
from parley.server.core.rooms import user_room
from parley.server.notify import Notice, Notifier
from parley.server.stoppoints import stop_point
from parley.server.store.base import Store

log = logging.getLogger("parley.offers")

EVENTS_ROOM: Final = "backend:events"  # the marketplace backend's event feed
SWEEP_BATCH: Final = 100  # negotiations expired per look; the next look takes the rest
CHANGE_ATTEMPTS: Final = 5  # decisions retried after losing a race, before "unavailable"

Decide = Callable[[Negotiation], Negotiation | None]
"""From the negotiation as stored to its next state; ``None``: nothing to do."""


def new_offer_id() -> str:
    return secrets.token_hex(8)


class Negotiations:
    def __init__(self, config: Config, store: Store, clock: Clock, notifier: Notifier) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.notifier = notifier

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    # Changes.

    async def open(self, negotiation: Negotiation, actor_name: str | None) -> Negotiation:
        """Store a new negotiation and tell its parties.

        An open negotiation of the same buyer on the listing whose deadline has
        passed no longer blocks a new one: it is expired (and told) first.
        """
        for _ in range(2):
            try:
                created = await self.store.create_negotiation(negotiation)
            except ParleyError as exc:
                existing_id = (exc.details or {}).get("offer_id")
                if exc.code is not ErrorCode.offer_exists or not isinstance(existing_id, str):
                    raise
                existing = await self.store.get_negotiation(existing_id)
                if existing is not None and existing.id == negotiation.id:
                    created = existing  # stored by an attempt whose answer was lost
                    break
                if existing is None or is_open_at(existing, self.now_ms()):
                    raise
                await self.change(existing_id, lambda n: expire(n, self.now_ms()), None)
                continue
            break
        else:
            raise ParleyError(ErrorCode.unavailable, "the negotiation could not be opened; retry")
        stop_point(f"offer.stored.{created.state}")
        await self._announce_stored(None, created, created.origin, actor_name)
        return created

    async def change(
        self, offer_id: str, decide: Decide, actor_name: str | None, actor: Party | None = None
    ) -> Negotiation | None:
        """Apply ``decide`` to the stored negotiation until a compare-and-set wins.

        ``decide`` raises a ``ParleyError`` to refuse, or returns ``None`` when
        there is nothing to do (already expired by another hub, say). Returns
        the stored result, which has been told.
        """
        for _ in range(CHANGE_ATTEMPTS):
            before = await self.store.get_negotiation(offer_id)
            if before is None:
                raise ParleyError(ErrorCode.not_found, f"no offer {offer_id}")
            after = decide(before)
            if after is None:
                return None
            if await self.store.replace_negotiation(after):
                stop_point(f"offer.stored.{after.state}")
                await self._announce_stored(before, after, actor, actor_name)
                return after
        raise ParleyError(ErrorCode.unavailable, "the offer keeps changing; retry")

    async def sweep(self) -> int:
        """Expire what is due now; return how many this hub expired."""
        now = self.now_ms()
        expired = 0
        for due in await self.store.due_negotiations(now, SWEEP_BATCH):
            done = await self.change(due.id, lambda n: expire(n, now), None)
            expired += done is not None
        if expired:
            log.info("offers expired count=%d", expired)
        return expired

    async def close_for_sale(self, listing_id: ListingId) -> int:
        """The listing sold: close every open negotiation on it as ``item_sold``."""
        closed = 0
        for negotiation in await self.store.open_negotiations(listing_id):
            done = await self.change(
                negotiation.id, lambda n: close_item_sold(n, self.now_ms()), None
            )
            closed += done is not None and done.state is OfferState.item_sold
        return closed

    async def complete(self, before_ms: int) -> int:
        """Tell the changes stored before ``before_ms`` that a hub stopped telling."""
        told = 0
        for negotiation in await self.store.untold_negotiations(before_ms, SWEEP_BATCH):
            actor = actor_of(negotiation)
            actor_name = None
            if actor is not None:
                party = negotiation.buyer_id if actor is Party.buyer else negotiation.seller_id
                user = await self.store.get_user(party)
                actor_name = None if user is None else user.name
            await self.announce(None, negotiation, actor, actor_name)
            told += 1
        if told:
            log.info("offer changes told late count=%d", told)
        return told

    async def run_sweeper(self) -> None:
        """Sweep every ``offer_sweep_interval`` seconds until cancelled; each sweep
        also completes the changes a stopped hub left half-told (notifications
        and their push items, negotiations) once ``completion_grace`` passed."""
        while True:
            try:
                await self.sweep()
                before_ms = self.now_ms() - to_ms(self.config.completion_grace)
                await self.complete(before_ms)
                await self.notifier.complete(before_ms)
            except ParleyError as exc:
                log.warning("offer sweep failed: %s", exc.message)
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # A cancel that came as a store command answered was swallowed on
                # the way (asyncio.wait_for in Python 3.11 can do that): the
                # sweeper is being stopped all the same.
                raise asyncio.CancelledError
            await asyncio.sleep(self.config.offer_sweep_interval)

    # Telling.

    async def _announce_stored(
        self,
        before: Negotiation | None,
        after: Negotiation,
        actor: Party | None,
        actor_name: str | None,
    ) -> None:
        """Tell a change that is stored: a failure now must not read as "not done"."""
        try:
            await self.announce(before, after, actor, actor_name)
        except ParleyError as exc:
            log.error(
                "offer change stored but not told id=%s v=%d: %s",
                after.id,
                after.version,
                exc.message,
            )

    async def announce(
        self,
        before: Negotiation | None,
        after: Negotiation,
        actor: Party | None,
        actor_name: str | None,
    ) -> None:
        kind = notice_kind(after)
        listing = await self.store.get_listing(after.listing_id)
        actor_id = None
        if actor is not None:
            actor_id = after.buyer_id if actor is Party.buyer else after.seller_id
        # Both parties' widgets: the new state, as each of them sees it.
        for party in (after.buyer_id, after.seller_id):
            await self.store.append(
                user_room(party),
                Draft(
                    kind="offer",
                    text="",
                    ts=after.updated_ms,
                    client_msg_id=f"offer:{after.id}:{after.version}",
                    data=to_wire(after, party),
                ),
            )
        notices = [
            Notice(
                member,
                self._payload(kind, after, member, listing, actor_id, actor_name),
                f"{kind}:{after.id}:{after.version}",
            )
            for member in recipients_of(after, actor)
        ]
        await self.notifier.send(notices)
        if after.state is OfferState.accepted:
            await self._accepted_event(after)
        await self.store.mark_told(after.id, after.version)
        log.info("offer %s id=%s listing=%s v=%d", kind, after.id, after.listing_id, after.version)

    def _payload(
        self,
        kind: str,
        negotiation: Negotiation,
        member: UserId,
        listing: Listing | None,
        actor_id: UserId | None,
        actor_name: str | None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "kind": kind,
            "offer_id": negotiation.id,
            "room": f"listing:{negotiation.listing_id}",
            "listing_id": negotiation.listing_id,
            "listing_title": None if listing is None else listing.title,
            "amount": negotiation.prices[-1].amount,
            "currency": negotiation.currency,
            "offer": to_wire(negotiation, member),
        }
        if actor_id is not None:
            payload["author"] = {"id": actor_id, "name": actor_name}
        return payload

    async def _accepted_event(self, negotiation: Negotiation) -> None:
        agreed = negotiation.agreed_price
        await self.store.append(
            EVENTS_ROOM,
            Draft(
                kind="event",
                text="",
                ts=negotiation.updated_ms,
                client_msg_id=f"offer.accepted:{negotiation.id}",
                data={
                    "type": "offer.accepted",
                    "offer_id": negotiation.id,
                    "listing_id": negotiation.listing_id,
                    "buyer_id": negotiation.buyer_id,
                    "seller_id": negotiation.seller_id,
                    "amount": agreed,
                    "currency": negotiation.currency,
                    "accepted_at": negotiation.updated_ms,
                },
            ),
        )


async def stop_sweeper(task: asyncio.Task[None] | None) -> None:
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
