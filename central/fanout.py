"""The fan-out hub: committed changes to every subscribed replica.

Creates, namespace and token changes are pushed as soon as they commit (C1);
updates and deletes are held per key, coalesced so only the newest version of a key
is sent, and flushed before `propagation_delay_s` has passed since the first of them
was committed (C2), by whichever central committed it (on a shared PostgreSQL store
the hub hears every central's changes from the log follower). For keys a region
reported hot, a flush carries the new value so the edge stays warm; for the rest, an
invalidation.

Because held updates are older than the creates pushed past them, the highest seq a
replica has seen is not a safe resume point. Every batch therefore carries
`safe_seq`: all changes up to it have been sent. Replicas persist it and resume from
it; the few changes re-sent after a resume are harmless (replicas compare versions).

Each subscriber has its own queue, filled without ever blocking the writer or other
subscribers. A subscriber that falls `queue_limit` changes behind is reset: its
queue is dropped and it is told to drop its cache and start over from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from kvcore.clock import Clock
from kvcore.metrics import Metrics
from kvcore.model import Change, ChangeBatch, ChangeKind
from kvcore.store.base import Store

log = logging.getLogger("edgekv.central.fanout")

# Flush a held update this long before its deadline, for the trip to the replica.
FLUSH_MARGIN_S = 0.25
# Upper bounds of one stream message: changes, and bytes of carried values (well
# under the 128 MiB gRPC message limit even with metadata and framing).
MAX_BATCH_CHANGES = 1000
MAX_BATCH_VALUE_BYTES = 16 * 1024 * 1024
# Per-change bookkeeping counted against a subscriber's byte budget besides its value.
CHANGE_OVERHEAD_BYTES = 256

KeyRef = tuple[str, str]  # (namespace_id, key)


@dataclass(slots=True)
class _Held:
    change: Change
    deadline: float  # monotonic; from the first write of the key since the last flush


@dataclass(eq=False)
class Subscriber:
    """One replica's stream. `floor`: every change <= floor was sent during catch-up."""

    region: str
    floor: int
    http_url: str = ""  # the replica's advertised HTTP base URL ("" = none), for the dashboard
    queue: asyncio.Queue[ChangeBatch | None] = field(default_factory=asyncio.Queue)
    queued_changes: int = 0
    queued_bytes: int = 0
    needs_reset: bool = False
    id: int = field(default_factory=itertools.count(1).__next__)


class Hub:
    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        metrics: Metrics,
        propagation_delay_s: float,
        push_value_max_bytes: int,
        queue_limit: int,
        queue_limit_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._store = store
        self._clock = clock
        self._metrics = metrics
        self._delay = propagation_delay_s
        self._push_max = push_value_max_bytes
        self._queue_limit = queue_limit
        self._queue_limit_bytes = queue_limit_bytes
        self._region = metrics.region
        self._held: OrderedDict[KeyRef, _Held] = OrderedDict()
        self._held_seqs: list[tuple[int, KeyRef]] = []  # min-heap, lazily pruned
        self._subscribers: set[Subscriber] = set()
        self._hot: dict[str, set[KeyRef]] = {}
        # region -> the HTTP URL it last announced when subscribing (kept after it leaves).
        self.announced: dict[str, str] = {}
        self._ingested_seq = 0  # read in start(), after the listener is registered
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # Counters exist from the start (at 0), so rate()/increase() see their first event.
        metrics.coalesced.labels(self._region)
        metrics.subscriber_resets.labels(self._region)
        metrics.pending_updates.labels(self._region).set(0)

    # -- lifecycle

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._store.add_listener(self._on_commit)
        # Read after registering: a commit in between is then both counted here and
        # delivered to the listener (ingest takes the max), never neither.
        self._ingested_seq = max(self._ingested_seq, self._store.committed_seq)
        self._flusher = asyncio.create_task(self._flush_loop(), name="fanout-flush")
        self._metrics.committed_seq.labels(self._region).set(self._ingested_seq)

    async def stop(self) -> None:
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)

    # -- state

    @property
    def ingested_seq(self) -> int:
        return self._ingested_seq

    @property
    def pending_count(self) -> int:
        return len(self._held)

    def safe_seq(self) -> int:
        """Every change <= this has been sent to every live subscriber."""
        while self._held_seqs:
            seq, ref = self._held_seqs[0]
            held = self._held.get(ref)
            if held is not None and held.change.seq == seq:
                return seq - 1
            heapq.heappop(self._held_seqs)  # superseded or flushed
        return self._ingested_seq

    def set_hot_keys(self, region: str, keys: set[KeyRef]) -> None:
        self._hot[region] = keys

    # -- subscribers

    def subscribe(self, region: str, http_url: str = "") -> Subscriber:
        """Register before catch-up: live changes queue up while the log is replayed.
        Catch-up must cover (from_seq, sub.floor]."""
        sub = Subscriber(region=region, floor=self._ingested_seq, http_url=http_url)
        if http_url:
            self.announced[region] = http_url
        self._subscribers.add(sub)
        self._metrics.subscribers.labels(self._region).set(len(self._subscribers))
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subscribers.discard(sub)
        self._metrics.subscribers.labels(self._region).set(len(self._subscribers))

    def connected_regions(self) -> dict[str, int]:
        """region -> number of live streams of that region."""
        counts: dict[str, int] = {}
        for sub in self._subscribers:
            counts[sub.region] = counts.get(sub.region, 0) + 1
        return counts

    def held(self, ref: KeyRef) -> tuple[Change, float] | None:
        """The change of `ref` held for lazy propagation and the seconds until it is
        flushed (>= 0), or None when nothing is held for it."""
        held = self._held.get(ref)
        if held is None:
            return None
        return held.change, max(0.0, held.deadline - FLUSH_MARGIN_S - self._clock.monotonic())

    def subscriber_safe_seq(self, sub: Subscriber) -> int:
        return max(sub.floor, self.safe_seq())

    def _enqueue(self, sub: Subscriber, changes: list[Change], upto: int | None = None) -> None:
        """Queue one batch. `upto` caps its safe_seq when later chunks of the same
        group are still to come: a replica that persists this batch's safe_seq and
        then loses the stream must not resume past changes it never received."""
        if sub.needs_reset:
            return
        size = batch_bytes(changes)
        if (
            sub.queued_changes + len(changes) > self._queue_limit
            or sub.queued_bytes + size > self._queue_limit_bytes
        ):
            # Too far behind: drop what it has not read and make it start over.
            while not sub.queue.empty():
                sub.queue.get_nowait()
            sub.queued_changes = sub.queued_bytes = 0
            sub.needs_reset = True
            sub.queue.put_nowait(None)
            self._metrics.subscriber_resets.labels(self._region).inc()
            log.warning("subscriber %s (%s) fell behind; resetting it", sub.id, sub.region)
            return
        safe = self.subscriber_safe_seq(sub)
        if upto is not None:
            safe = min(safe, max(upto, sub.floor))
        sub.queued_changes += len(changes)
        sub.queued_bytes += size
        sub.queue.put_nowait(ChangeBatch(changes=changes, safe_seq=safe, committed_seq=self._ingested_seq))

    def _enqueue_all(self, sub: Subscriber, changes: list[Change]) -> None:
        """Queue `changes` (ascending seq) in bounded chunks, each safe only up to itself."""
        chunks = chunked(changes)
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            self._enqueue(sub, chunk, None if last else chunks[i + 1][0].seq - 1)

    def taken(self, sub: Subscriber, batch: ChangeBatch) -> None:
        sub.queued_changes -= len(batch.changes)
        sub.queued_bytes -= batch_bytes(batch.changes)

    # -- values on the stream

    def with_values(self, changes: Sequence[Change]) -> dict[int, Change]:
        """Creates and updates among `changes` that can carry their value, by seq: the
        key still holds exactly that version and the value is small enough. Values the
        store attached already (PgStore does, for a page of creates) are kept when
        small; the rest are read with one bulk read per namespace, not one per key (on
        a PostgreSQL store each read is a round trip on this event loop)."""
        valued: dict[int, Change] = {}
        groups: dict[tuple[str, str], list[Change]] = {}
        for change in changes:
            if change.kind not in (ChangeKind.KEY_CREATE, ChangeKind.KEY_UPDATE):
                continue
            if change.has_value:
                if change.value is not None and len(change.value) <= self._push_max:
                    valued[change.seq] = change
            else:
                groups.setdefault((change.account_id, change.namespace_id), []).append(change)
        for (account_id, namespace_id), group in groups.items():
            try:
                entries = self._store.bulk_get(account_id, namespace_id, [c.key for c in group])
            except Exception:  # namespace deleted meanwhile: invalidations are right
                continue
            for change, entry in zip(group, entries, strict=True):
                if entry is not None and entry.version == change.seq and len(entry.value) <= self._push_max:
                    valued[change.seq] = replace(change, value=entry.value, has_value=True)
        return valued

    def with_create_values(self, changes: list[Change]) -> list[Change]:
        """Creates carry their value (when small and still current); the rest as they are."""
        valued = self.with_values([c for c in changes if c.kind is ChangeKind.KEY_CREATE])
        return [valued.get(c.seq, _without_value(c)) for c in changes]

    # -- ingest (event loop thread)

    def _on_commit(self, changes: Sequence[Change]) -> None:
        """Store listener, called on the writer thread after the WAL sync."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._ingest, list(changes))

    def _ingest(self, changes: list[Change]) -> None:
        now = self._clock.monotonic()
        immediate: list[Change] = []
        for change in changes:
            self._ingested_seq = max(self._ingested_seq, change.seq)
            if change.kind.is_lazy and self._delay > 0:
                ref = (change.namespace_id, change.key)
                held = self._held.get(ref)
                if held is None:
                    # The delay counts from commit time, which on a shared store may be
                    # another central's commit a moment ago (wall clocks of centrals agree
                    # to well under the delay; a skewed one only shifts this flush).
                    age = min(max(0.0, self._clock.now() - change.commit_time), self._delay)
                    self._held[ref] = _Held(change, now + self._delay - age)
                else:
                    # Coalesce: keep the first write's deadline, send only the newest.
                    held.change = change
                    self._metrics.coalesced.labels(self._region).inc()
                heapq.heappush(self._held_seqs, (change.seq, ref))
            else:
                immediate.append(change)
        self._metrics.committed_seq.labels(self._region).set(self._ingested_seq)
        self._metrics.pending_updates.labels(self._region).set(len(self._held))
        if immediate:
            immediate = self.with_create_values(immediate)
            for sub in self._subscribers:
                self._enqueue_all(sub, immediate)
        self._wake.set()

    # -- lazy flush

    async def _flush_loop(self) -> None:
        while True:
            try:
                await self._flush_step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # Never let one bad flush stop lazy propagation for good (C2).
                log.exception("lazy flush failed; retrying")
                await asyncio.sleep(0.1)

    async def _flush_step(self) -> None:
        """Wait for the earliest held deadline (or new work), then flush what is due."""
        if not self._held:
            self._wake.clear()
            await self._wake.wait()
            return
        first = next(iter(self._held.values()))
        wait = first.deadline - FLUSH_MARGIN_S - self._clock.monotonic()
        if wait > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=min(wait, 1.0))
            return
        self.flush_due()

    def flush_due(self, *, everything: bool = False) -> int:
        """Send every held change whose deadline is near (or all of them)."""
        horizon = self._clock.monotonic() + FLUSH_MARGIN_S
        due: list[Change] = []
        while self._held:
            ref, held = next(iter(self._held.items()))
            if not everything and held.deadline > horizon:
                break
            del self._held[ref]
            due.append(held.change)
        if not due:
            return 0
        due.sort(key=lambda c: c.seq)
        self._metrics.pending_updates.labels(self._region).set(len(self._held))
        valued = self._hot_values(due)
        for sub in self._subscribers:
            hot = self._hot.get(sub.region, set())
            out: list[Change] = []
            for change in due:
                ref = (change.namespace_id, change.key)
                if ref in hot and change.kind is ChangeKind.KEY_UPDATE:
                    out.append(valued.get(ref, change))
                else:
                    out.append(change)
            self._enqueue_all(sub, out)
        return len(due)

    def _hot_values(self, due: list[Change]) -> dict[KeyRef, Change]:
        """The due updates of keys some subscriber's region holds hot, carrying their values."""
        live_regions = {sub.region for sub in self._subscribers}
        hot_anywhere = set().union(*(self._hot.get(r, set()) for r in live_regions))
        hot = [c for c in due if c.kind is ChangeKind.KEY_UPDATE and (c.namespace_id, c.key) in hot_anywhere]
        return {(c.namespace_id, c.key): c for c in self.with_values(hot).values()}


def _without_value(change: Change) -> Change:
    """A change that must travel as an invalidation (a too-big value the store attached)."""
    return replace(change, value=None, has_value=False) if change.has_value else change


def batch_bytes(changes: list[Change]) -> int:
    return sum(CHANGE_OVERHEAD_BYTES + (len(c.value) if c.value is not None else 0) for c in changes)


def chunked(changes: list[Change]) -> list[list[Change]]:
    """Split into stream messages of at most MAX_BATCH_CHANGES changes and about
    MAX_BATCH_VALUE_BYTES of values (a single larger value travels alone)."""
    chunks: list[list[Change]] = []
    current: list[Change] = []
    size = 0
    for change in changes:
        value = len(change.value) if change.value is not None else 0
        if current and (len(current) >= MAX_BATCH_CHANGES or size + value > MAX_BATCH_VALUE_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(change)
        size += value
    chunks.append(current)
    return chunks
