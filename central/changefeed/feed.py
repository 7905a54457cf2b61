"""The change feed: committed changes to every subscribed replica, behind one call.

`ChangeFeed.follow(region, from_seq, http_url)` is the whole stream protocol as one
async iterator of `ChangeBatch`: catch-up from the log (or a snapshot, or a reset
when the log was trimmed), then live changes, a heartbeat after each silence of
`heartbeat_s` (kvcore.rpc.liveness), and a reset when the subscriber fell too far
behind.

Creates, namespace and token changes are pushed as soon as they commit (C1);
updates and deletes are held per key, coalesced so only the newest version of a key
is sent, and flushed before `propagation_delay_s` has passed since the first of them
was committed (C2), by whichever central committed it (on a shared PostgreSQL store
the feed hears every central's changes from the log follower). What is held and
when it is due is `state.HeldUpdates`; this module does the waiting and the sending.

Because held updates are older than the creates pushed past them, the highest seq a
replica has seen is not a safe resume point. Every batch therefore carries
`safe_seq`: all changes up to it have been sent. Replicas persist it and resume from
it; the few changes re-sent after a resume are harmless (replicas compare versions).

Each subscriber has its own queue, filled without ever blocking the writer or other
subscribers. A subscriber that falls `subscriber_queue_changes` changes (or
`QUEUE_LIMIT_BYTES`) behind is reset: its queue is dropped and it is told to drop
its cache and start over from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field

from central.changefeed.batches import messages
from central.changefeed.catchup import catch_up, reset_batch, snapshot
from central.changefeed.source import ChangeSource
from central.changefeed.state import Admission, Backlog, Budget, HeldUpdates, HotKeys, KeyRef
from central.changefeed.values import ValueReader
from kvcore.clock import Clock
from kvcore.metrics import Metrics
from kvcore.model import Change, ChangeBatch
from kvcore.rpc.liveness import HEARTBEAT_INTERVAL_S
from kvcore.settings import CentralSettings

log = logging.getLogger("edgekv.central.changefeed")

QUEUE_LIMIT_BYTES = 256 * 1024 * 1024  # per subscriber: values plus per-change overhead


@dataclass(eq=False)
class _Subscriber:
    """One replica's stream. `floor`: every change <= floor was covered at its start
    (catch-up or reset)."""

    region: str
    floor: int
    backlog: Backlog
    queue: asyncio.Queue[ChangeBatch | None] = field(default_factory=asyncio.Queue)
    id: int = field(default_factory=itertools.count(1).__next__)


class ChangeFeed:
    """Central's side of every replication stream. `held` (the updates waiting for
    their flush) and `announced` are read by the dashboard; `start()` on the event
    loop before the first `follow`, `stop()` at shutdown."""

    # Seconds of silence after which a stream gets a heartbeat (kvcore.rpc.liveness).
    heartbeat_s: float = HEARTBEAT_INTERVAL_S

    def __init__(
        self, store: ChangeSource, settings: CentralSettings, *, clock: Clock, metrics: Metrics
    ) -> None:
        self._store = store
        self._values = ValueReader(store, settings.push_value_max_bytes)
        self._budget = Budget(settings.subscriber_queue_changes, QUEUE_LIMIT_BYTES)
        self.held = HeldUpdates(clock, settings.propagation_delay_s)
        self._hot = HotKeys()
        self._subscribers: set[_Subscriber] = set()
        # region -> the HTTP URL it last announced when subscribing (kept after it leaves).
        self.announced: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # Counters exist from the start (at 0), so rate()/increase() see their first event.
        region = metrics.region
        self._coalesced = metrics.coalesced.labels(region)
        self._resets = metrics.subscriber_resets.labels(region)
        self._pending = metrics.pending_updates.labels(region)
        self._pending.set(0)
        self._committed = metrics.committed_seq.labels(region)
        # Not bound here: its series appears with the first subscriber (an alert reads it).
        self._metrics = metrics

    # -- lifecycle

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._store.add_listener(self._on_commit)
        # Read after registering: a commit in between is then both counted here and
        # delivered to the listener (take_in takes the max), never neither.
        self.held.committed_seq = max(self.held.committed_seq, self._store.committed_seq)
        self._flusher = asyncio.create_task(self._flush_loop(), name="changefeed-flush")
        self._committed.set(self.held.committed_seq)

    async def stop(self) -> None:
        """Stop flushing and end every stream (their `follow` returns)."""
        if self._flusher:
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        for sub in list(self._subscribers):
            sub.queue.put_nowait(None)

    # -- what the dashboard and the servicer read

    @property
    def committed_seq(self) -> int:
        """The highest seq this feed has taken in."""
        return self.held.committed_seq

    def connected_regions(self) -> dict[str, int]:
        """region -> number of live streams of that region."""
        counts: dict[str, int] = {}
        for sub in self._subscribers:
            counts[sub.region] = counts.get(sub.region, 0) + 1
        return counts

    def report_hot_keys(self, region: str, keys: set[KeyRef]) -> None:
        self._hot.report(region, keys)

    # -- the stream

    async def follow(
        self, region: str, from_seq: int, http_url: str = ""
    ) -> AsyncGenerator[ChangeBatch, None]:
        """The stream of one replica that persisted `from_seq` (0: it has nothing) and
        serves HTTP at `http_url` ("" = none). Runs until the consumer stops or the
        feed stops; close it (contextlib.aclosing) to unsubscribe at once."""
        # Registered before catch-up: live changes queue up while the log is replayed.
        sub = _Subscriber(region, self.held.committed_seq, Backlog(self._budget))
        self._join(sub, http_url)
        log.info("subscriber %s (%s) from seq %d", sub.id, region, from_seq)
        try:
            async for batch in catch_up(
                self._store, self._values, from_seq, sub.floor, lambda: self.committed_seq
            ):
                yield batch
            while True:
                try:
                    # asyncio.timeout, not wait_for: no task per message (on 3.11 wait_for
                    # wraps the get in a task, a few loop turns later than a plain await).
                    async with asyncio.timeout(self.heartbeat_s):
                        item = await sub.queue.get()
                except TimeoutError:
                    # Quiet: prove we are alive (the queue is empty, so everything up to
                    # the subscriber's safe_seq has been sent).
                    yield self._batch(sub, [], heartbeat=True)
                    continue
                if item is None:
                    if not sub.backlog.overflowed:
                        return  # the feed is stopping
                    yield self._reset(sub)
                    continue
                sub.backlog.taken(item.changes)
                yield item
        finally:
            self._leave(sub)
            log.info("subscriber %s (%s) gone", sub.id, region)

    def _join(self, sub: _Subscriber, http_url: str) -> None:
        if http_url:
            self.announced[sub.region] = http_url
        self._subscribers.add(sub)
        self._count_subscribers()

    def _leave(self, sub: _Subscriber) -> None:
        self._subscribers.discard(sub)
        self._count_subscribers()

    def _count_subscribers(self) -> None:
        self._metrics.subscribers.labels(self._metrics.region).set(len(self._subscribers))

    def _reset(self, sub: _Subscriber) -> ChangeBatch:
        sub.backlog.restart()
        sub.floor = self.committed_seq
        return reset_batch(snapshot(self._store), self.held.safe_seq(sub.floor), self.committed_seq)

    def _batch(
        self, sub: _Subscriber, changes: list[Change], cap: int | None = None, heartbeat: bool = False
    ) -> ChangeBatch:
        return ChangeBatch(
            changes=changes,
            safe_seq=self.held.safe_seq(sub.floor, cap),
            committed_seq=self.committed_seq,
            heartbeat=heartbeat,
        )

    def _send(self, sub: _Subscriber, changes: list[Change]) -> None:
        """Queue `changes` (ascending seq) in bounded messages, or reset `sub` when
        they take it over its budget."""
        for chunk, cap in messages(changes):
            admission = sub.backlog.admit(chunk)
            if admission is Admission.QUEUE:
                sub.queue.put_nowait(self._batch(sub, chunk, cap))
            elif admission is Admission.OVERFLOW:
                # Too far behind: drop what it has not read and make it start over.
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)
                self._resets.inc()
                log.warning("subscriber %s (%s) fell behind; resetting it", sub.id, sub.region)

    # -- ingest (event loop thread)

    def _on_commit(self, changes: Sequence[Change]) -> None:
        """Store listener, called on the writer thread after the WAL sync."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._ingest, list(changes))

    def _ingest(self, changes: list[Change]) -> None:
        immediate, coalesced = self.held.take_in(changes)
        if coalesced:
            self._coalesced.inc(coalesced)
        self._committed.set(self.committed_seq)
        self._pending.set(len(self.held))
        if immediate:
            immediate = self._values.with_create_values(immediate)
            for sub in self._subscribers:
                self._send(sub, immediate)
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
        wait_s = self.held.wait_s()
        if wait_s is not None and wait_s <= 0:
            self.flush_due()
            return
        self._wake.clear()
        timeout_s = None if wait_s is None else min(wait_s, 1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)

    def flush_due(self) -> int:
        """Send every held change that is due; how many were sent."""
        due = self.held.take_due()
        if not due:
            return 0
        self._pending.set(len(self.held))
        valued = self._values.with_values(self._hot.wanted(due, {sub.region for sub in self._subscribers}))
        for sub in self._subscribers:
            self._send(sub, self._hot.carry(due, sub.region, valued))
        return len(due)
