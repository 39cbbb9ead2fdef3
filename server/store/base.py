"""The store: what the hub keeps, behind one small async interface.

Two implementations pass the same contract suite (``tests/store/``):
``embedded`` (one SQLite file, in-process fan-out; the default) and ``redis``
(shared by many hub processes, pub/sub fan-out). ``server.store.open_store(url)``
picks one by URL scheme.

A store also owns the fan-out of the entries it appends, because only the
store can make "stored" and "announced" one step: the embedded store announces
in commit order on the event loop, the Redis store publishes inside the same
script that appends. Hubs ``follow`` the rooms their members watch and get each
entry through the listener; a lost announcement is never a lost entry, since
``RoomFeed`` notices the gap and the hub fills it from ``entries_after``.
Ephemeral events (typing, presence) travel the same way but are never stored
and have no ``seq``: one lost is simply lost.

Errors: every method raises ``StoreUnavailable`` (code ``unavailable``) when
the store cannot answer now, translated once at the store's edge. Nothing else
leaks from the engine underneath.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass
from typing import Any, Final, Literal

from parley.protocol.errors import ErrorCode, ParleyError
from parley.server.core.buckets import Buckets
from parley.server.core.model import (
    AppendResult,
    Draft,
    Entry,
    Listing,
    ListingId,
    Order,
    OrderId,
    RoomHead,
    User,
    UserId,
)
from parley.server.core.offers import Negotiation
from parley.server.core.reports import Filed, Flag, Report
from parley.server.core.restrictions import Restriction

EntryListener = Callable[[Entry, str], None]
"""Called on the event loop with each announced entry and its room's epoch."""

ResyncListener = Callable[[], None]
"""Called when announcements may have been lost (a reconnect): re-check rooms."""

EphemeralListener = Callable[[str, dict[str, Any]], None]
"""Called on the event loop with a room and an ephemeral event published to it."""

ErasureState = Literal["erasing", "erased"]

COUNTED_ROOMS: Final = ("listing:",)  # public rooms: presence says how many, never who

OrderRole = Literal["buyer", "seller"]

WRITE_BOUNDS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5)  # s, write_seconds
UNREAD_CAP: Final = 999  # unread counts stop here: a badge shows "999+", a count stays cheap


class StoreUnavailable(ParleyError):
    def __init__(self, message: str = "the store is unavailable; retry later") -> None:
        super().__init__(ErrorCode.unavailable, message)


class Fanout(abc.ABC):
    """Announcements of appended entries, for the rooms a hub follows."""

    def __init__(self) -> None:
        self.listener: EntryListener | None = None
        self.on_resync: ResyncListener | None = None
        self.ephemeral_listener: EphemeralListener | None = None

    @abc.abstractmethod
    async def follow(self, room: str) -> None:
        """Start receiving ``room``'s entries (the hub's first watcher joined)."""

    @abc.abstractmethod
    async def unfollow(self, room: str) -> None:
        """Stop receiving ``room``'s entries (its last watcher left)."""

    @abc.abstractmethod
    async def publish_ephemeral(self, room: str, event: dict[str, Any]) -> None:
        """Pass ``event`` to ``ephemeral_listener`` on every hub following ``room``,
        this one included, in order with the room's entries; never stored.

        At most once: a hub whose fan-out is reconnecting never hears it, and
        no resync brings it back.
        """


@dataclass(frozen=True, slots=True)
class ReadState:
    """A member's inbox: read up to ``up_to``; ``unread`` notifications after it."""

    up_to: int
    unread: int


@dataclass(frozen=True, slots=True)
class Erasure:
    """A member's erasure: ``erasing`` until every step is done, then ``erased``; ``ts``
    is when it reached that state (ms)."""

    state: ErasureState
    ts: int


@dataclass(frozen=True, slots=True)
class Like:
    """A member who favourited a listing, and when (ms): the source of R6's likers."""

    user_id: UserId
    ts: int


class Presence(abc.ABC):
    """Who watches which room, on any hub: decides who gets a push or an order_message.

    The hub calls ``enter`` and ``leave`` once per connection joining and
    leaving a room it tracks (order rooms, members' own rooms, listing rooms);
    ``enter`` returns once other hubs can see it (a counted room's: at once,
    the count follows), ``leave`` never blocks.
    ``present`` and ``watchers`` answer for every hub sharing the store.

    Who is present is shared for order and members' own rooms only. Of a
    public room (``COUNTED_ROOMS``) each hub shares only how many distinct
    members watch it there: ``watchers`` adds these up, so a member watching
    from two hubs counts twice, and nobody can learn who watches a listing.
    """

    def __init__(self) -> None:
        self._count: dict[tuple[str, str], int] = {}
        self._members: dict[str, int] = {}  # counted room -> distinct members here

    def _add(self, room: str, user_id: str, delta: int) -> bool:
        """Count this hub's connections; ``True`` when the member came or went."""
        key = (room, user_id)
        count = self._count.get(key, 0) + delta
        if count > 0:
            self._count[key] = count
        else:
            self._count.pop(key, None)
        changed = count == (1 if delta > 0 else 0)
        if changed and room.startswith(COUNTED_ROOMS):
            members = self._members.get(room, 0) + (1 if delta > 0 else -1)
            if members > 0:
                self._members[room] = members
            else:
                self._members.pop(room, None)
        return changed

    def here(self, room: str, user_id: str) -> bool:
        return (room, user_id) in self._count

    def members_here(self, room: str) -> int:
        """Distinct members watching a counted room on this hub."""
        return self._members.get(room, 0)

    @abc.abstractmethod
    async def start(self) -> None:
        """Begin announcing this hub's presence to the others."""

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def enter(self, room: str, user_id: UserId) -> None: ...

    @abc.abstractmethod
    def leave(self, room: str, user_id: UserId) -> None: ...

    @abc.abstractmethod
    async def present(self, room: str, user_id: UserId) -> bool: ...

    @abc.abstractmethod
    async def watchers(self, room: str) -> int:
        """Members watching a counted room, summed over the live hubs."""

    @abc.abstractmethod
    async def wait_written(self) -> None:
        """Return once other hubs can see this hub's changes so far (bounded)."""


class LocalPresence(Presence):
    """Presence within one process: the embedded store serves one hub."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def enter(self, room: str, user_id: UserId) -> None:
        self._add(room, user_id, 1)

    def leave(self, room: str, user_id: UserId) -> None:
        self._add(room, user_id, -1)

    async def present(self, room: str, user_id: UserId) -> bool:
        return self.here(room, user_id)

    async def watchers(self, room: str) -> int:
        return self.members_here(room)

    async def wait_written(self) -> None:
        pass


class Store(abc.ABC):
    fanout: Fanout
    presence: Presence
    slow_commit_s: float = 0.0  # log writes slower than this (0: off)
    # Read by GET /metrics at scrape time; the backends bump them in place.
    appended: int = 0  # entries stored and acknowledged (a retried duplicate is not)
    write_seconds: Buckets  # SQLite: each batch's commit; Redis: each append round trip

    @abc.abstractmethod
    async def open(self) -> None: ...

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish pending writes, then release the engine."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise ``StoreUnavailable`` unless the store answers now (``/readyz``)."""

    # Members, listings and orders, as the marketplace backend reports them.

    @abc.abstractmethod
    async def put_user(self, user: User) -> None:
        """Create or replace a member; the backend owns names, locales and e-mails.

        Usernames are unique case-insensitively (by ``username_key``): a name
        held by another member raises ``ParleyError(conflict)``; a member
        renamed frees the old name.
        """

    @abc.abstractmethod
    async def claim_user(self, user_id: UserId, name: str, locale: str) -> User:
        """The member's record; create it from token claims if the backend has not.

        An existing record is returned unchanged (the backend's word wins). A
        new one whose name another member holds raises ``ParleyError(conflict)``.
        """

    @abc.abstractmethod
    async def get_user(self, user_id: UserId) -> User | None: ...

    @abc.abstractmethod
    async def users_by_name(self, keys: Collection[str]) -> dict[str, User]:
        """The members whose ``username_key`` is among ``keys``, by key."""

    @abc.abstractmethod
    async def put_listing(self, listing: Listing) -> None: ...

    @abc.abstractmethod
    async def get_listing(self, listing_id: ListingId) -> Listing | None: ...

    @abc.abstractmethod
    async def put_order(self, order: Order) -> tuple[Order, bool]:
        """Store an order once; return the stored order and whether it is new.

        Idempotent: the same order again returns ``(stored, False)``. An order
        id reported again with another listing, buyer or seller raises
        ``ParleyError(conflict)``; the status is updated with ``set_order_status``.
        """

    @abc.abstractmethod
    async def set_order_status(self, order_id: OrderId, status: str) -> Order | None:
        """Update the status; ``None`` when there is no such order."""

    @abc.abstractmethod
    async def get_order(self, order_id: OrderId) -> Order | None: ...

    # Room logs.

    @abc.abstractmethod
    async def append(self, room: str, draft: Draft) -> AppendResult:
        """Append durably, give the next ``seq``, announce it; then return.

        With ``draft.client_msg_id`` set, a second append with the same
        ``(room, author id, client_msg_id)`` stores nothing and returns the
        first entry with ``duplicate=True``. An ``edit`` entry replaces its
        target's text and mentions and sets ``edited_ts`` (and its ``data``, when
        the edit has some: a notification that follows its message); a ``delete``
        entry blanks its target's text and data, and those of the edits before it,
        and sets ``deleted``; a deleted notification is no longer unread. The
        caller has checked the target. A ``close`` entry closes the room and
        ``reopen`` opens it again: while closed, members' entries (``MEMBER_KINDS``
        with an author) raise ``ParleyError(not_found)`` and are not stored; an
        author-less ``delete`` (an erasure) is stored.
        """

    @abc.abstractmethod
    async def get_entry(self, room: str, seq: int) -> Entry | None:
        """The entry as it is now (a message shows its latest text)."""

    @abc.abstractmethod
    async def entry_by_key(self, room: str, client_msg_id: str) -> Entry | None:
        """The entry the hub itself (no author) appended with ``client_msg_id``, as it is now:
        a notification found by its idempotency key."""

    @abc.abstractmethod
    async def history(self, room: str, before: int | None, limit: int) -> list[Entry]:
        """Messages (comment and system entries) with ``seq < before``, newest first."""

    @abc.abstractmethod
    async def entries_after(self, room: str, after: int, limit: int) -> list[Entry]:
        """Every entry (all kinds) with ``seq > after``, oldest first, at most ``limit``."""

    @abc.abstractmethod
    async def read_state(self, room: str) -> ReadState:
        """A member's inbox (``user:<id>``): the read mark and notifications after it.

        Appending a ``read`` entry moves the mark to ``max(mark, target)`` and
        stores ``{"up_to", "unread"}`` as the entry's data, in the same step.
        """

    @abc.abstractmethod
    async def room_closed(self, room: str) -> bool:
        """Whether the room's last ``close`` or ``reopen`` entry was a ``close``."""

    @abc.abstractmethod
    async def head(self, room: str) -> RoomHead:
        """The room's last ``seq`` (0 when empty) and its log's ``epoch``.

        The epoch is an opaque id of the room's log, the same for the log's
        whole life; it changes when the log is reset or lost, so that clients
        holding old sequence numbers are told to reload rather than mislead.
        """

    # Likes and negotiations (R5-R7). The rules are ``server.core.offers``; the
    # store keeps the state and makes each change one atomic step.

    @abc.abstractmethod
    async def put_like(self, listing_id: ListingId, user_id: UserId, ts: int) -> bool:
        """Record that the member favourited the listing at ``ts``; ``False`` if
        they already did (the first time is kept: a retry does not reorder)."""

    @abc.abstractmethod
    async def delete_like(self, listing_id: ListingId, user_id: UserId) -> bool:
        """Forget the like; ``False`` if there was none."""

    @abc.abstractmethod
    async def likers(self, listing_id: ListingId, before: int | None, limit: int) -> list[Like]:
        """The listing's likes with ``ts < before``, most recent first (ties: by user id)."""

    @abc.abstractmethod
    async def set_offers_enabled(self, listing_id: ListingId, enabled: bool) -> Listing | None:
        """Switch offers on or off (R5) without touching the rest; ``None`` if unknown."""

    @abc.abstractmethod
    async def create_negotiation(self, negotiation: Negotiation) -> Negotiation:
        """Store a new open negotiation.

        At most one open negotiation per (listing, buyer): while one is stored
        open, this raises ``ParleyError(offer_exists, details={"offer_id": id})``
        and stores nothing, whether or not its deadline passed (the caller
        expires it first with ``replace_negotiation``).
        """

    @abc.abstractmethod
    async def replace_negotiation(self, negotiation: Negotiation) -> bool:
        """Compare-and-set: store ``negotiation`` if the stored one has version
        ``negotiation.version - 1``; ``False`` (and nothing stored) otherwise.

        Of two changes made from the same version, exactly one is stored: this
        is what settles an accept racing a withdraw, and two hubs sweeping.
        """

    @abc.abstractmethod
    async def get_negotiation(self, offer_id: str) -> Negotiation | None: ...

    @abc.abstractmethod
    async def negotiations_of(
        self,
        user_id: UserId,
        *,
        listing_id: ListingId | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[Negotiation]:
        """The member's negotiations as buyer or seller, most recently changed first."""

    @abc.abstractmethod
    async def open_negotiations(self, listing_id: ListingId) -> list[Negotiation]:
        """Every open negotiation on the listing (whatever its deadline)."""

    @abc.abstractmethod
    async def due_negotiations(self, now_ms: int, limit: int) -> list[Negotiation]:
        """Open negotiations whose deadline is at or before ``now_ms``, earliest first."""

    @abc.abstractmethod
    async def next_deadline(self) -> int | None:
        """The earliest deadline of an open negotiation (ms), ``None`` if none is open."""

    @abc.abstractmethod
    async def untold_negotiations(self, before_ms: int, limit: int) -> list[Negotiation]:
        """Every change stored with ``updated_ms < before_ms`` and not told yet, as the
        negotiation was at that version, oldest change first.

        ``create_negotiation`` and ``replace_negotiation`` mark each change untold
        in their own atomic step; ``mark_told`` ends it. A hub that dies between
        storing a change and telling it leaves it here for another to tell, even
        once later versions are stored.
        """

    @abc.abstractmethod
    async def mark_told(self, offer_id: str, version: int) -> None:
        """The change to ``version`` is told; other versions stay as they are."""

    # Read marks in order rooms and "My orders" (R9, R10).

    @abc.abstractmethod
    async def set_read_mark(self, room: str, user_id: UserId, seq: int) -> tuple[int, bool]:
        """Move the member's read mark in ``room`` to ``max(mark, min(seq, last))``, in
        one step; return the mark and whether it moved.

        ``last`` is the seq of the room's last message (an entry ``history``
        returns): reading past it, over a receipt or an edit, moves nothing, so a
        receipt never calls for another. Marks start at 0 and never go back.
        """

    @abc.abstractmethod
    async def read_marks(self, room: str) -> dict[UserId, int]:
        """The members' read marks in ``room``; a member who never read is absent."""

    @abc.abstractmethod
    async def unread_count(self, room: str, user_id: UserId) -> int:
        """Messages (``comment`` and ``system`` entries) after the member's read mark
        that the member did not write, at most ``UNREAD_CAP``."""

    @abc.abstractmethod
    async def orders_of(
        self, user_id: UserId, role: OrderRole, before: int | None, limit: int
    ) -> list[Order]:
        """The member's orders as ``role`` with ``created_ts < before``, newest first
        (ties: by id, descending), at most ``limit``."""

    # Leases: one holder at a time for a background job shared by every hub.

    @abc.abstractmethod
    async def try_lease(self, name: str, holder: str, ttl_ms: int) -> bool:
        """Take the lease ``name`` for ``holder``, or renew it, for ``ttl_ms``.

        ``True`` when ``holder`` holds it now; ``False`` while another holder's
        lease runs. A lease nobody renews ends ``ttl_ms`` after its last renewal,
        so a hub that died gives its job to another one. It is a best effort
        (clocks, pauses): a job run under it stays safe if run twice.
        """

    @abc.abstractmethod
    async def release_lease(self, name: str, holder: str) -> None:
        """End ``holder``'s lease at once (a hub stopping); another holder's stays."""

    # A member's own choices (``server.core.moderation``): blocks and mutes.

    @abc.abstractmethod
    async def block(self, user_id: UserId, other: UserId, ts: int, limit: int) -> bool:
        """Add ``other`` to the member's blocks at ``ts``; ``False`` if already there.

        A list already holding ``limit`` members raises ``ParleyError(limit_reached)``
        and stores nothing; the check and the addition are one step.
        """

    @abc.abstractmethod
    async def unblock(self, user_id: UserId, other: UserId) -> bool:
        """Remove ``other`` from the member's blocks; ``False`` if not there."""

    @abc.abstractmethod
    async def blocks(self, user_id: UserId, limit: int) -> list[tuple[UserId, int]]:
        """The members the member blocks and when (ms), most recent first."""

    @abc.abstractmethod
    async def blocked_between(self, user_id: UserId, others: Collection[UserId]) -> set[UserId]:
        """Those of ``others`` who block the member or whom the member blocks."""

    @abc.abstractmethod
    async def mute(self, user_id: UserId, room: str, ts: int, limit: int) -> bool:
        """Mute ``room`` for the member, as ``block`` does with members."""

    @abc.abstractmethod
    async def unmute(self, user_id: UserId, room: str) -> bool: ...

    @abc.abstractmethod
    async def mutes(self, user_id: UserId, limit: int) -> list[tuple[str, int]]:
        """The rooms the member muted and when (ms), most recent first."""

    @abc.abstractmethod
    async def drop_member_lists(self, user_id: UserId) -> None:
        """Forget the member's own blocks and mutes (their erasure); others' blocks of
        them stay, theirs to keep. Idempotent."""

    @abc.abstractmethod
    async def silencing(
        self, user_id: UserId, author: UserId | None, room: str | None
    ) -> tuple[bool, bool]:
        """Whether the member blocks ``author``, and whether they muted ``room``."""

    # Reports and the review queue (``server.core.reports``).

    @abc.abstractmethod
    async def file_report(
        self,
        report_id: str,
        snapshot: dict[str, Any],
        flag: Flag,
        event: Draft,
    ) -> Filed:
        """File ``flag`` against the message of ``snapshot`` (its room and seq), in one step.

        The message's first report makes a new open queue item ``report_id`` and
        appends ``event`` to the backend's feed (``EVENTS_ROOM``) in the same step; a later one is
        counted in that item (opening it again if resolved); the same reporter
        again stores nothing and answers ``duplicate`` with their first reason.
        """

    @abc.abstractmethod
    async def get_report(self, report_id: str) -> Report | None: ...

    @abc.abstractmethod
    async def reports(self, state: str, after: int, limit: int) -> list[Report]:
        """Queue items in ``state`` whose ``number`` is over ``after``, in queue order."""

    @abc.abstractmethod
    async def resolve_report(self, report_id: str, resolution: dict[str, Any]) -> Report | None:
        """Mark an open item resolved with ``resolution`` (``{action, ...}``), in one step,
        and return it; an item already resolved is returned unchanged, ``None`` if none."""

    @abc.abstractmethod
    def member_reports(self, user_id: UserId) -> AsyncIterator[list[dict[str, Any]]]:
        """The reports the member filed (``core.reports.own_report``), a page at a time."""

    @abc.abstractmethod
    async def forget_reporter(self, user_id: UserId, limit: int) -> int:
        """In up to ``limit`` reports the member filed, one report at a time, stand an
        ``erased_reporter`` placeholder for them and drop their note (their reason
        stays counted); return how many. Nothing left to do: 0."""

    # Restrictions (``server.core.restrictions``): one per member at most.

    @abc.abstractmethod
    async def put_restriction(self, restriction: Restriction) -> None:
        """Store the member's restriction, replacing the one they had."""

    @abc.abstractmethod
    async def delete_restriction(self, user_id: UserId) -> bool:
        """Lift the member's restriction; ``False`` if they had none."""

    @abc.abstractmethod
    async def get_restriction(self, user_id: UserId) -> Restriction | None: ...

    @abc.abstractmethod
    async def restrictions(self, now_ms: int) -> list[Restriction]:
        """Every restriction still in force at ``now_ms`` (a hub loads them all)."""

    # Members' data rights: what a member wrote, for the export and the erasure.

    @abc.abstractmethod
    async def member_entries(
        self, user_id: UserId, after: tuple[str, int] | None, limit: int
    ) -> list[Entry]:
        """Entries the member wrote (comments, edits, deletions, receipts), as they
        are now, ordered by ``(room, seq)`` and after ``after``; at most ``limit``.

        Kept by the append path in the same step as the entry, so a page of it
        never misses an acknowledged entry; a store written before the index
        existed fills it when opened.
        """

    @abc.abstractmethod
    def member_likes(self, user_id: UserId) -> AsyncIterator[list[tuple[ListingId, int]]]:
        """The listings the member favourited and when (ms), a page at a time."""

    @abc.abstractmethod
    def member_negotiations(self, user_id: UserId) -> AsyncIterator[list[Negotiation]]:
        """The member's negotiations as buyer or seller, a page at a time; one that
        changes meanwhile may come twice, one stored throughout comes at least once."""

    @abc.abstractmethod
    async def erasure(self, user_id: UserId) -> Erasure | None:
        """Where the member's erasure stands; ``None`` if it was never asked for."""

    @abc.abstractmethod
    async def set_erasure(self, user_id: UserId, state: ErasureState, ts: int) -> Erasure:
        """Record the erasure's state and return it; an erased member stays erased."""

    @abc.abstractmethod
    async def erase_profile(self, user_id: UserId, placeholder: str) -> None:
        """Make the member's record nameless: ``placeholder`` for a name, no e-mail,
        and their username freed, so that ``users_by_name`` no longer finds them and
        another member may take it. A member with no record gets a nameless one, so
        a token cannot bring the old name back. Idempotent."""

    @abc.abstractmethod
    async def rename_author(
        self, room: str, user_id: UserId, seqs: Collection[int], name: str
    ) -> None:
        """Store ``name`` as the author's name of the entries ``seqs`` of ``room``
        that ``user_id`` wrote; other entries are left alone. Idempotent."""

    @abc.abstractmethod
    async def drop_room_entries(self, room: str) -> None:
        """Remove every entry of ``room`` and its inbox read mark; its ``seq`` goes on
        from where it was, so no number is given twice. For a member's own room
        (``user:<id>``) when the member is erased."""

    @abc.abstractmethod
    async def drop_read_marks(self, user_id: UserId, rooms: Collection[str]) -> None:
        """Forget the member's read marks in ``rooms`` (a store that finds them by
        member forgets all of them)."""

    @abc.abstractmethod
    async def forget_freed(self) -> None:
        """Make what was erased leave the engine's files as soon as the engine allows
        (SQLite: the write-ahead log is checkpointed and truncated; Redis rewrites
        its files by itself)."""
