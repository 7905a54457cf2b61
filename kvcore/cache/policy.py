"""The replica's hot-key cache: W-TinyLFU, byte-bounded (Caffeine's policy).

Every read is counted in a `FrequencySketch` (hit or miss) by `record_read`, which
also refreshes the key's recency when it is cached. After a read-through the
replica `offer`s the value. The cache is three LRU queues sharing one byte budget
(kvcore.cache.segments keeps them; this module decides who enters and who leaves):

- the admission window (1% of the bytes at first): every offered key enters here,
  so a burst of reads to a new key is served from the edge at once;
- the main space, split SLRU-style into probation (20%) and protected (80%): a
  probation entry read again moves to protected, protected overflow is demoted
  back to probation's most recent end.

When the window overflows its least recent entries move to probation as
candidates; while the cache is over its bytes each candidate is compared with
probation's least recent entry (the victim) and the one the sketch says is read
less often is evicted, the victim on a tie... unless the candidate is warm (an
estimate >= 6), when 1 in 128 ties goes to the candidate, so colliding counters
planted by an attacker cannot freeze the cache (Caffeine's hash-flooding guard).
The window's share is sized by a hill climber (kvcore.cache.climber) towards the
best hit ratio: small for a stable Zipf head, large for bursty, shifting or
scanning traffic.

Two edge-specific rules on top of Caffeine's:
- `admit_threshold` (default 2, `--admit-threshold`): a key must have been read
  that many times recently to enter even the window, so a key read once stays
  central and costs the edge nothing (TinyLFU's doorkeeper plays this role);
- writes: `force_put` (read-your-write) installs regardless of frequency and the
  new entry is never the one evicted to make room for itself; `put` replaces a
  cached value in place.

The sketch is aged as TinyLFU prescribes: its counters saturate at 15 and are all
halved every SAMPLE_PER_ENTRY x (entries the cache holds when full) counted reads,
so a popularity shift is forgotten within a few sample periods; time decay
(half-life, injected clock) also ages a quiet replica.

Why not cachetools (or functools.lru_cache): their caches always admit and evict
unconditionally; frequency admission needs the sketch to see every read, cached or
not. Queues are `OrderedDict`s (C move-to-end and pop-oldest), so a hit costs a
sketch increment and one or two dict operations.

Sources: Einziger, Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission
Policy" (ACM ToS 2017); Caffeine's BoundedLocalCache (evictFromWindow,
evictFromMain, admit, onAccess, climb) and FrequencySketch.

Not thread-safe: the replica drives it from one event loop.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable, Iterator
from typing import Final, Generic, TypeVar

from kvcore.cache.climber import HillClimber
from kvcore.cache.segments import PROBATION, PROTECTED, WINDOW, Entry, Segments
from kvcore.cache.sketch import FrequencySketch
from kvcore.clock import SYSTEM_CLOCK, Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What one cached entry costs in memory besides its key, value and metadata bytes:
# the (namespace, key) tuple and dict slots, the cache's entry record, the replica's
# Entry/Cached objects, the str/bytes headers and the allocator's slack. Charging
# what RSS shows (measured in bench/bigns.py) keeps the process within
# `--cache-bytes` plus its fixed base.
ENTRY_OVERHEAD_BYTES = 1024
"""Charged per entry on top of key, value and metadata: the dict slot, the entry
object and the value object's header, roughly. Keeps a cache of empty values bounded."""

WINDOW_FRACTION = 0.01
"""The window's initial share of the bytes (Caffeine: 1 - PERCENT_MAIN)."""
SKETCH_MAX_COUNT = 15
"""Counters saturate here, as TinyLFU's four-bit counters do."""
ADMIT_HASHDOS_THRESHOLD = 6
"""A candidate this warm that ties with its victim is admitted 1 time in 128."""
MIN_SAMPLE_ENTRIES = 256
SAMPLE_PER_ENTRY = 40
CLIMB_SAMPLES = 1
"""The sketch's sample period (reads between halvings) is SAMPLE_PER_ENTRY x
max(MIN_SAMPLE_ENTRIES, entries the cache holds when full), and the hill climber's
sample CLIMB_SAMPLES times that. TinyLFU and Caffeine use 10 x entries; 40 x hits
more on the stationary traces (a longer history tells the Zipf tail apart) and a
little less after a popularity shift (bench/cache_sim.py has the figures), while
staying ahead of LRU there: the replica's 60 s time decay ages the sketch far
sooner than the sample does in a cache of 100,000s of entries anyway."""


def entry_size(namespace_id: str, key: str, value: bytes, metadata_json: str | None = None) -> int:
    """The bytes an entry is charged: what the replica should pass as `size`."""
    meta = len(metadata_json.encode()) if metadata_json else 0
    return len(namespace_id) + len(key.encode()) + len(value) + meta + ENTRY_OVERHEAD_BYTES


class HotKeyCache(Generic[K, V]):
    """Byte-bounded map from key to value; `bytes_used <= capacity_bytes` always holds.

    `sketch_items`: the sketch's width (expected distinct hot keys); `half_life_s`: time
    decay of read counts (injected `clock`); `sample_size`: fixes the sketch's aging
    period in reads (default: adapts to the entries held); `window_fraction`: the
    window's initial share of the bytes; `adaptive`: let the hill climber re-size it;
    `rng`: the hash-flooding guard's coin; `on_evict(key, value)`: called per eviction."""

    def __init__(
        self,
        capacity_bytes: int,
        *,
        admit_threshold: int = 2,
        clock: Clock = SYSTEM_CLOCK,
        sketch_items: int = 100_000,
        half_life_s: float = 60.0,
        sample_size: int | None = None,
        window_fraction: float = WINDOW_FRACTION,
        adaptive: bool = True,
        on_evict: Callable[[K, V], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if capacity_bytes < 0:
            raise ValueError("capacity_bytes must be >= 0")
        if not 0.0 <= window_fraction <= 1.0:
            raise ValueError("window_fraction must be in [0, 1]")
        self.capacity_bytes: Final = capacity_bytes
        self.admit_threshold = admit_threshold
        self._clock = clock
        self._sketch = FrequencySketch(
            sketch_items, sample_size=sample_size, half_life_s=half_life_s, max_count=SKETCH_MAX_COUNT
        )
        self._fixed_sample = sample_size is not None
        if not self._fixed_sample:
            self._sketch.sample_size = SAMPLE_PER_ENTRY * MIN_SAMPLE_ENTRIES
        self._half_life_s = half_life_s
        self._next_decay = clock.monotonic()
        self._sketch.decay(self._next_decay)  # baseline for time decay
        self._rng = rng if rng is not None else random.Random()
        seg = self._seg = Segments[K, V](capacity_bytes, window_fraction)
        # The segments' dict and queues, read directly on record_read's hot path.
        self._entries, self._window, self._protected = seg.entries, seg.window, seg.protected
        # entry(key): the cache's record of `key` (`.value` is what `get` returns), or
        # None; no effect. The dict's own C `get`, so a hot read pays no Python call
        # for it before `record_hit(record)`.
        self.entry: Callable[[K], Entry[K, V] | None] = self._entries.get
        self._climber = HillClimber(capacity_bytes) if adaptive else None
        self._sample_reads = int(CLIMB_SAMPLES * self._sketch.sample_size)
        self._sample_left = self._sample_reads  # reads left in the climber's sample
        self._hits = 0  # in the climber's current sample
        self.on_evict = on_evict
        self.admissions = 0  # keys newly installed (replacements not counted)
        self.evictions = 0  # entries dropped to make room (invalidations not counted)

    # -- frequency and recency ---------------------------------------------------

    def record_read(self, key: K) -> int:
        """Count one read of `key` (call on every read, hit or miss) and, if it is cached,
        refresh its recency; returns the key's frequency estimate."""
        e = self._entries.get(key)
        if e is not None:
            return self.record_hit(e)
        if self._half_life_s is not None and self._clock.monotonic() >= self._next_decay:
            self._decay()
        self._sample_left -= 1
        freq = self._sketch.increment(key)
        if self._sample_left <= 0:
            self._end_sample()
        return freq

    def record_hit(self, e: Entry[K, V]) -> int:
        """`record_read` of a cached key whose record `e` the caller already holds (from
        `entry`, with no change to the cache in between: `e` must still be cached): one
        dict lookup fewer on the replica's hot read. Returns the estimate."""
        if self._half_life_s is not None and self._clock.monotonic() >= self._next_decay:
            self._decay()
        self._sample_left -= 1
        self._hits += 1
        sketch = self._sketch
        if e.saturated_epoch == sketch.epoch:  # a hot key: its counters cannot rise
            freq = sketch.count_saturated()
        else:
            freq = sketch.increment_slots(e.slots)  # no rehash on the hot path
            if freq == SKETCH_MAX_COUNT:
                e.saturated_epoch = sketch.epoch
        q = e.queue
        if q == PROTECTED:
            self._protected.move_to_end(e.key)
        elif q == WINDOW:
            self._window.move_to_end(e.key)
        else:
            self._seg.promote(e)
        if self._sample_left <= 0:
            self._end_sample()
        return freq

    def frequency(self, key: K) -> int:
        """Current estimate of how often `key` was read recently (does not count)."""
        e = self._entries.get(key)
        return self._sketch.estimate_slots(e.slots) if e is not None else self._sketch.estimate(key)

    @property
    def sketch(self) -> FrequencySketch:
        return self._sketch

    @property
    def window_bytes_max(self) -> int:
        """The admission window's current share of the capacity, in bytes."""
        return self._seg.window_max

    # -- lookups -----------------------------------------------------------------

    def get(self, key: K) -> V | None:
        """The cached value, or None. Neither counts a read nor refreshes recency:
        call `record_read` for that (once per client read)."""
        e = self._entries.get(key)
        return e.value if e is not None else None

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._seg.bytes

    def keys(self) -> Iterator[K]:
        """A snapshot of the cached keys (safe to mutate the cache while iterating)."""
        return iter(list(self._entries))

    def items(self) -> Iterator[tuple[K, V]]:
        return iter([(e.key, e.value) for e in self._entries.values()])

    def hot_keys(self, n: int) -> list[K]:
        """The `n` cached keys read most often, hottest first (for reports to central).

        O(len) with a cheap estimate per entry: meant for periodic reports, not reads."""
        return self.hot_keys_job(n)()

    def hot_keys_job(self, n: int) -> Callable[[], list[K]]:
        """`hot_keys` split for big caches: the entries are snapshotted now (a C-speed
        list copy), the ranking runs later, e.g. in a worker thread, so a report over a
        million entries does not stall the event loop for half a second. The ranking
        only reads each entry's immutable key and sketch slots, and the sketch's
        counters, which may move meanwhile: a report is a hint, not a ledger. Ties
        (counters saturate at 15) go to protected entries, read again after admission."""
        entries = list(self._entries.values()) if n > 0 else []
        est = self._sketch.estimate_slots

        def rank() -> list[K]:
            return [e.key for e in heapq.nlargest(n, entries, key=lambda e: (est(e.slots), e.queue))]

        return rank

    # -- installs ----------------------------------------------------------------

    def offer(self, key: K, value: V, size: int) -> bool:
        """Try to install `key` after a read-through; returns whether it is now cached.

        A new key enters the admission window when its estimate >= `admit_threshold`
        and size <= capacity; what the window then pushes out competes with the main
        space's victims by frequency. A key already cached has its value replaced, as
        in `put`."""
        if key in self._entries:
            return self.put(key, value, size)
        self._check_size(size)
        if size > self.capacity_bytes or self._sketch.estimate(key) < self.admit_threshold:
            return False
        self._insert(key, value, size)
        return key in self._entries

    def put(self, key: K, value: V, size: int) -> bool:
        """Replace the value of a cached key in place (a fresher version from the change
        stream); a key not cached goes through `offer`'s admission rule.

        A replacement that grows evicts other entries, never itself; one larger than
        the capacity drops the key (the old value is stale). Returns whether cached."""
        e = self._entries.get(key)
        if e is None:
            return self.offer(key, value, size)
        self._check_size(size)
        if size > self.capacity_bytes:
            self._seg.remove(e)
            return False
        self._seg.resize(e, size)
        e.value = value
        self._evict(keep=key)
        return True

    def force_put(self, key: K, value: V, size: int) -> bool:
        """Install regardless of frequency (read-your-write): a new key enters the window,
        evicting others as needed but never itself. Still never exceeds the capacity: an
        entry larger than it is not cached (and an older value of the key is dropped).
        Returns whether cached."""
        self._check_size(size)
        if key in self._entries:
            return self.put(key, value, size)
        if size > self.capacity_bytes:
            return False
        self._insert(key, value, size, keep=True)
        return True

    # -- removals ----------------------------------------------------------------

    def invalidate(self, key: K) -> bool:
        e = self._entries.get(key)
        if e is None:
            return False
        self._seg.remove(e)
        return True

    def invalidate_where(self, predicate: Callable[[K], bool]) -> int:
        """Drop every cached key matching `predicate` (e.g. all keys of a deleted
        namespace); returns how many. O(len)."""
        doomed = [e for e in self._entries.values() if predicate(e.key)]
        for e in doomed:
            self._seg.remove(e)
        return len(doomed)

    def clear(self) -> None:
        """Drop every entry. Frequencies are kept: they describe reads, not contents."""
        self._seg.clear()

    # -- internals ---------------------------------------------------------------

    @staticmethod
    def _check_size(size: int) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")

    def _insert(self, key: K, value: V, size: int, *, keep: bool = False) -> None:
        self._seg.add(Entry(key, value, size, self._sketch.slots(key)))
        self.admissions += 1
        self._evict(keep=key if keep else None)

    def _evict_entry(self, e: Entry[K, V]) -> None:
        self._seg.remove(e)
        self.evictions += 1
        if self.on_evict is not None:
            self.on_evict(e.key, e.value)

    def _evict(self, keep: K | None) -> None:
        """Move window overflow to probation, then, while over capacity, evict the less
        frequent of each candidate (from the window) and victim (probation's least
        recent; then protected's, then the window's). `keep` is never evicted."""
        seg = self._seg
        candidates = seg.overflow_window()
        ci = 0
        entries, window = seg.entries, seg.window
        while seg.bytes > self.capacity_bytes:
            victim = seg.victim(keep)
            if victim is None:
                return  # only `keep` is left, and it fits (callers check size <= capacity)
            cand: Entry[K, V] | None = None
            while ci < len(candidates):
                c = candidates[ci]
                if c.key != keep and entries.get(c.key) is c and c.queue == PROBATION:
                    cand = c
                    break
                ci += 1
            if cand is None:
                cand = next((c for c in window.values() if c.key != keep), None)
            if cand is None or cand is victim:
                self._evict_entry(victim)
            elif self._admit(cand, victim):
                self._evict_entry(victim)
                ci += 1
            else:
                self._evict_entry(cand)
                ci += 1

    def _admit(self, cand: Entry[K, V], victim: Entry[K, V]) -> bool:
        est = self._sketch.estimate_slots
        cf = est(cand.slots)
        if cf > est(victim.slots):
            return True
        return cf >= ADMIT_HASHDOS_THRESHOLD and self._rng.random() < 1 / 128

    def _decay(self) -> None:
        now = self._clock.monotonic()
        self._sketch.decay(now)
        assert self._half_life_s is not None
        self._next_decay = now + min(1.0, self._half_life_s / 8)

    def _end_sample(self) -> None:
        """Every sample period: re-size the sketch's period to the cache's entries and
        let the hill climber move the window."""
        hits, misses = self._hits, self._sample_reads - self._sample_left - self._hits
        self._hits = 0
        used = self._seg.bytes
        if used and not self._fixed_sample:
            full_entries = len(self._entries) * self.capacity_bytes // used
            self._sketch.sample_size = SAMPLE_PER_ENTRY * max(MIN_SAMPLE_ENTRIES, full_entries)
        self._sample_reads = self._sample_left = int(CLIMB_SAMPLES * self._sketch.sample_size)
        if self._climber is None:
            return
        if used * 2 < self.capacity_bytes:
            self._climber.reset()  # still filling: hit ratios say nothing about the split
            return
        self._seg.resize_window(self._climber.adjustment(hits, misses))
