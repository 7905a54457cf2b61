"""The read-through race guard: which keys changed recently, and at which seq.

A read-through is answered by central as of its committed seq `S`. While the answer
travels back, the change stream may apply a newer change of the same key (seq > S).
Installing the older answer afterwards would make the cache go back in time (C4),
or hide a fresh create behind a negative entry (C1). So every key change the
replica applies (from the stream or its own acknowledged writes) is recorded here,
and a result read at `S` is installed only if `newer_than(key, S)` is false.

Bounded in time (`window_s`, far longer than any read-through deadline) and in
keys. What falls out raises `floor`, the highest seq forgotten: a key not found in
the map is treated as changed at `floor`, so forgetting can only make the guard
refuse an install (a cache miss later), never accept a stale one. Expired keys are
forgotten in sweeps, at most every `window_s / PRUNE_SWEEPS_PER_WINDOW`, not on every
record (it runs twice per write a replica forwards); keeping a key a little longer
only keeps `floor` lower for the others, which is as safe as forgetting it. A stream
reset raises `floor` to central's committed seq: changes missed before a reset are
never seen, so nothing read before it may be installed after it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

from kvcore.clock import SYSTEM_CLOCK, Clock

K = TypeVar("K", bound=Hashable)

PRUNE_SWEEPS_PER_WINDOW = 20


class RecentChanges(Generic[K]):
    def __init__(
        self, *, window_s: float = 10.0, max_keys: int = 100_000, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if window_s <= 0 or max_keys < 1:
            raise ValueError("window_s must be > 0 and max_keys >= 1")
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        # key -> (highest seq applied, monotonic time recorded); oldest first.
        self._seqs: OrderedDict[K, tuple[int, float]] = OrderedDict()
        self.floor = 0
        self._sweep_every_s = window_s / PRUNE_SWEEPS_PER_WINDOW
        self._next_sweep = clock.monotonic()

    def record(self, key: K, seq: int) -> None:
        """Note that a change of `key` at `seq` has been applied (or acknowledged)."""
        now = self._clock.monotonic()
        old = self._seqs.pop(key, None)
        if old is not None and old[0] > seq:
            seq = old[0]
        seqs = self._seqs
        seqs[key] = (seq, now)
        if now >= self._next_sweep or len(seqs) > self.max_keys:
            self._prune(now)

    def newer_than(self, key: K, seq: int, *, use_floor: bool = True) -> bool:
        """Whether a change of `key` with a seq above `seq` may have been applied.

        With `use_floor=False` only remembered keys count: for changes of the stream
        itself, which arrive in order except for lazily flushed ones that the caller
        checks against cached versions."""
        item = self._seqs.get(key)
        if item is not None and item[0] > seq:
            return True
        return use_floor and self.floor > seq

    def raise_floor(self, seq: int) -> None:
        """Treat every key as changed at `seq` (after a stream reset)."""
        self.floor = max(self.floor, seq)

    def _prune(self, now: float) -> None:
        self._next_sweep = now + self._sweep_every_s
        horizon = now - self.window_s
        seqs = self._seqs
        while seqs:
            key, (seq, at) = next(iter(seqs.items()))
            if at >= horizon and len(seqs) <= self.max_keys:
                break
            del seqs[key]
            if seq > self.floor:
                self.floor = seq
