"""The change feed's state: held updates, hot keys and subscriber budgets. No I/O.

Plain objects with no asyncio and no store: `feed.py` does the waiting, the store
reads and the queueing, and asks these what to send and when (aiokafka keeps its
subscription state apart from its fetcher the same way). The injected clock is the
only source of time, so tests move it instead of sleeping.

- `HeldUpdates`: updates and deletes held for lazy propagation (C2 in DESIGN.md),
  coalesced per key so only the newest version is sent, each due `delay_s` after the
  commit of the key's first held write (minus `FLUSH_MARGIN_S` for the trip), and
  the resume point `safe_seq` that follows from what is held.
- `HotKeys`: the keys each region reported hot; a flush carries their values.
- `Backlog`: one subscriber's queued-but-unread changes against its `Budget`.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from central.changefeed.batches import batch_bytes
from kvcore.clock import Clock
from kvcore.model import Change, ChangeKind

# Flush a held update this long before its deadline, for the trip to the replica.
FLUSH_MARGIN_S = 0.25

KeyRef = tuple[str, str]  # (namespace_id, key)


def key_ref(change: Change) -> KeyRef:
    return (change.namespace_id, change.key)


@dataclass(slots=True)
class _Held:
    change: Change  # the newest write of the key
    first_seq: int  # the first write held since the last flush: it set the deadline
    deadline_s: float  # clock.monotonic() by which the change must have been sent


class HeldUpdates:
    """Updates and deletes waiting for their flush, one per key, and `committed_seq`,
    the highest seq taken in. `delay_s` 0 holds nothing: every change goes at once."""

    def __init__(self, clock: Clock, delay_s: float) -> None:
        self._clock = clock
        self.delay_s = delay_s
        self.committed_seq = 0
        self._held: dict[KeyRef, _Held] = {}
        # Min-heaps, pruned lazily: an entry is live while its key still holds it.
        self._by_seq: list[tuple[int, KeyRef]] = []
        self._by_deadline: list[tuple[float, int, KeyRef]] = []

    def __len__(self) -> int:
        return len(self._held)

    def take_in(self, changes: Iterable[Change]) -> tuple[list[Change], int]:
        """Hold the updates and deletes among `changes` (ascending seq). Returns the
        changes to push at once (creates, namespaces, tokens: C1) and how many held
        changes a newer write of the same key superseded (coalesced)."""
        now_s = self._clock.monotonic()
        immediate: list[Change] = []
        coalesced = 0
        for change in changes:
            self.committed_seq = max(self.committed_seq, change.seq)
            if not (change.kind.is_lazy and self.delay_s > 0):
                immediate.append(change)
                continue
            ref = key_ref(change)
            held = self._held.get(ref)
            if held is None:
                # The delay counts from commit time, which on a shared store may be
                # another central's commit a moment ago (wall clocks of centrals agree
                # to well under the delay; a skewed one only shifts this flush).
                age_s = min(max(0.0, self._clock.now() - change.commit_time), self.delay_s)
                deadline_s = now_s + self.delay_s - age_s
                self._held[ref] = _Held(change, change.seq, deadline_s)
                heapq.heappush(self._by_deadline, (deadline_s, change.seq, ref))
            else:
                # Coalesce: keep the first write's deadline, send only the newest.
                held.change = change
                coalesced += 1
            heapq.heappush(self._by_seq, (change.seq, ref))
        return immediate, coalesced

    def wait_s(self) -> float | None:
        """Seconds until the earliest held change is due (<= 0: due now), or None
        when nothing is held."""
        first = self._earliest()
        if first is None:
            return None
        return first[1].deadline_s - FLUSH_MARGIN_S - self._clock.monotonic()

    def take_due(self) -> list[Change]:
        """Remove and return, in seq order, every held change that is due."""
        horizon_s = self._clock.monotonic() + FLUSH_MARGIN_S
        due: list[Change] = []
        while (first := self._earliest()) is not None and first[1].deadline_s <= horizon_s:
            heapq.heappop(self._by_deadline)
            del self._held[first[0]]
            due.append(first[1].change)
        due.sort(key=lambda c: c.seq)
        return due

    def find(self, ref: KeyRef) -> tuple[Change, float] | None:
        """The change held for `ref` and the seconds until it is flushed (>= 0), or
        None when nothing is held for it."""
        held = self._held.get(ref)
        if held is None:
            return None
        return held.change, max(0.0, held.deadline_s - FLUSH_MARGIN_S - self._clock.monotonic())

    def safe_seq(self, floor: int = 0, cap: int | None = None) -> int:
        """The resume point of a subscriber: every change <= it has been sent to it.

        Held changes are older than creates pushed past them, so it is just below the
        oldest held change (else `committed_seq`), and never below `floor` (what the
        subscriber's catch-up or reset covered). `cap` bounds a message whose group
        continues in later messages (batches.messages)."""
        safe = max(floor, self._oldest_held_seq() - 1)
        return safe if cap is None else min(safe, max(cap, floor))

    def _oldest_held_seq(self) -> int:
        while self._by_seq:
            seq, ref = self._by_seq[0]
            held = self._held.get(ref)
            if held is not None and held.change.seq == seq:
                return seq
            heapq.heappop(self._by_seq)  # superseded or flushed
        return self.committed_seq + 1

    def _earliest(self) -> tuple[KeyRef, _Held] | None:
        while self._by_deadline:
            _, first_seq, ref = self._by_deadline[0]
            held = self._held.get(ref)
            if held is not None and held.first_seq == first_seq:
                return ref, held
            heapq.heappop(self._by_deadline)  # flushed (and perhaps held again since)
        return None


class HotKeys:
    """The keys each region last reported hot. A flushed update of such a key carries
    its value to that region, so the edge stays warm; elsewhere it invalidates."""

    def __init__(self) -> None:
        self._by_region: dict[str, set[KeyRef]] = {}

    def report(self, region: str, keys: set[KeyRef]) -> None:
        self._by_region[region] = keys

    def wanted(self, due: Sequence[Change], regions: Iterable[str]) -> list[Change]:
        """The updates among `due` that some of `regions` holds hot."""
        hot = set().union(*(self._by_region.get(r, set()) for r in regions))
        return [c for c in due if c.kind is ChangeKind.KEY_UPDATE and key_ref(c) in hot]

    def carry(self, due: Sequence[Change], region: str, valued: Mapping[int, Change]) -> list[Change]:
        """`due` as `region` receives it: its hot updates replaced by their valued
        copy (by seq) where there is one."""
        hot = self._by_region.get(region, set())
        return [
            valued.get(c.seq, c) if c.kind is ChangeKind.KEY_UPDATE and key_ref(c) in hot else c for c in due
        ]


@dataclass(frozen=True, slots=True)
class Budget:
    """How far one subscriber may fall behind before it is reset."""

    changes: int
    bytes: int  # values plus batches.CHANGE_OVERHEAD_BYTES per change


class Admission(enum.Enum):
    QUEUE = "queue"  # counted: queue the message
    OVERFLOW = "overflow"  # this message went over: drop the queue, reset the subscriber
    DROP = "drop"  # overflowed earlier and not yet reset: the reset's snapshot covers it


@dataclass(slots=True)
class Backlog:
    """What one subscriber has queued and not yet read, against its budget."""

    budget: Budget
    changes: int = 0
    bytes: int = 0
    overflowed: bool = False

    def admit(self, batch: list[Change]) -> Admission:
        if self.overflowed:
            return Admission.DROP
        size = batch_bytes(batch)
        if self.changes + len(batch) > self.budget.changes or self.bytes + size > self.budget.bytes:
            self.changes = self.bytes = 0  # the caller drops the queue
            self.overflowed = True
            return Admission.OVERFLOW
        self.changes += len(batch)
        self.bytes += size
        return Admission.QUEUE

    def taken(self, batch: list[Change]) -> None:
        """The subscriber read a queued message."""
        self.changes -= len(batch)
        self.bytes -= batch_bytes(batch)

    def restart(self) -> None:
        """The subscriber was sent its reset: count from nothing again."""
        self.overflowed = False
