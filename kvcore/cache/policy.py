"""The replica's hot-key cache: byte-bounded, admission by a decaying frequency sketch.

Every read is counted in a `FrequencySketch` (hit or miss). After a read-through the
replica `offer`s the value: it is admitted only when its key has been read at least
`admit_threshold` times recently and it fits, either in free space or by evicting
entries that are all read less often than it (TinyLFU admission). So one-off reads
stay central and cost the edge nothing, and a scan cannot flush the hot set.

Why not cachetools (or functools.lru_cache): its caches can be bounded in bytes
(`getsizeof`), but they always admit, then evict unconditionally; their LFU counts
only keys already cached, so a newcomer has no history to be compared with its
victim, and frequencies never decay. The admission rule is the point of this
cache, and it needs the sketch to see every read, cached or not; what is left (a
dict and a byte counter) is less code than adapting a library to it.

Eviction is sampled LFU (as Redis does): pick `eviction_sample` random cached
entries and evict the one the sketch says is read least. Exact LFU would need an
ordered structure (heap or frequency buckets) kept in step with the estimates, but
estimates move without the cache being told: every read of any key (cached or not,
colliding counters included) and every decay, which halves all of them at once.
Sampling reads current estimates at eviction time, costs O(sample) per victim and
nothing per read, and with 8-16 samples Redis measured it close to true LFU. Each
entry keeps its sketch slots, so a sampled estimate is four byte reads, no hash.

Not thread-safe: the replica drives it from one event loop.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

from kvcore.cache.sketch import FrequencySketch
from kvcore.clock import SYSTEM_CLOCK, Clock

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# What one cached entry costs in memory besides its key, value and metadata bytes:
# the (namespace, key) tuple and dict slots, the cache's entry record, the replica's
# Entry/Cached objects, the str/bytes headers and the allocator's slack. tracemalloc
# counts ~780 B of objects; make bench measures ~1,000 B of RSS per entry of a small
# value (with 64 B charged a "64 MiB" cache of small values took ~450 MiB). Charging
# what RSS shows keeps the process within `--cache-bytes` plus its fixed base.
ENTRY_OVERHEAD_BYTES = 960
"""Charged per entry on top of key, value and metadata: the dict slot, the entry
object and the value object's header, roughly. Keeps a cache of empty values bounded."""

EVICTION_SAMPLE = 12


def entry_size(namespace_id: str, key: str, value: bytes, metadata_json: str | None = None) -> int:
    """The bytes an entry is charged: what the replica should pass as `size`."""
    meta = len(metadata_json.encode()) if metadata_json else 0
    return len(namespace_id) + len(key.encode()) + len(value) + meta + ENTRY_OVERHEAD_BYTES


class _Entry(Generic[K, V]):
    __slots__ = ("key", "pos", "size", "slots", "value")

    def __init__(self, key: K, value: V, size: int, slots: tuple[int, int, int, int], pos: int) -> None:
        self.key = key
        self.value = value
        self.size = size
        self.slots = slots
        self.pos = pos  # index in HotKeyCache._order, for O(1) removal and sampling


class HotKeyCache(Generic[K, V]):
    """Byte-bounded map from key to value; `bytes_used <= capacity_bytes` always holds."""

    def __init__(
        self,
        capacity_bytes: int,
        *,
        admit_threshold: int = 2,
        clock: Clock = SYSTEM_CLOCK,
        sketch_items: int = 100_000,
        half_life_s: float = 60.0,
        sample_size: int | None = None,
        eviction_sample: int = EVICTION_SAMPLE,
        on_evict: Callable[[K, V], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if capacity_bytes < 0:
            raise ValueError("capacity_bytes must be >= 0")
        if eviction_sample < 1:
            raise ValueError("eviction_sample must be >= 1")
        self._capacity = capacity_bytes
        self.admit_threshold = admit_threshold
        self._clock = clock
        self._sketch = FrequencySketch(sketch_items, sample_size=sample_size, half_life_s=half_life_s)
        self._sketch.decay(clock.monotonic())  # baseline for time decay
        self._eviction_sample = eviction_sample
        self._rng = rng if rng is not None else random.Random()
        self._entries: dict[K, _Entry[K, V]] = {}
        self._order: list[_Entry[K, V]] = []  # dense, for uniform random sampling
        self._bytes = 0
        self.on_evict = on_evict
        self.admissions = 0  # keys newly installed (replacements not counted)
        self.evictions = 0  # entries dropped to make room (invalidations not counted)

    # -- frequency ---------------------------------------------------------------

    def record_read(self, key: K) -> int:
        """Count one read of `key` (call on every read, hit or miss); returns its estimate."""
        self._sketch.decay(self._clock.monotonic())
        return self._sketch.increment(key)

    def frequency(self, key: K) -> int:
        """Current estimate of how often `key` was read recently (does not count)."""
        e = self._entries.get(key)
        return self._sketch.estimate_slots(e.slots) if e is not None else self._sketch.estimate(key)

    @property
    def sketch(self) -> FrequencySketch:
        return self._sketch

    # -- lookups -----------------------------------------------------------------

    def get(self, key: K) -> V | None:
        """The cached value, or None. Does not count a read: call `record_read` too."""
        e = self._entries.get(key)
        return e.value if e is not None else None

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def capacity_bytes(self) -> int:
        return self._capacity

    def keys(self) -> Iterator[K]:
        """A snapshot of the cached keys (safe to mutate the cache while iterating)."""
        return iter(list(self._entries))

    def items(self) -> Iterator[tuple[K, V]]:
        return iter([(e.key, e.value) for e in self._order])

    def hot_keys(self, n: int) -> list[K]:
        """The `n` cached keys read most often, hottest first (for reports to central).

        O(len) with a cheap estimate per entry: meant for periodic reports, not reads."""
        return self.hot_keys_job(n)()

    def hot_keys_job(self, n: int) -> Callable[[], list[K]]:
        """`hot_keys` split for big caches: the entries are snapshotted now (a C-speed
        list copy), the ranking runs later, e.g. in a worker thread, so a report over a
        million entries does not stall the event loop for half a second. The ranking
        only reads each entry's immutable key and sketch slots, and the sketch's
        counters, which may move meanwhile: a report is a hint, not a ledger."""
        entries = list(self._order) if n > 0 else []
        est = self._sketch.estimate_slots

        def rank() -> list[K]:
            return [e.key for e in heapq.nlargest(n, entries, key=lambda e: est(e.slots))]

        return rank

    # -- installs ----------------------------------------------------------------

    def offer(self, key: K, value: V, size: int) -> bool:
        """Try to admit `key` after a read-through; returns whether it is now cached.

        A new key is admitted when its estimate >= `admit_threshold` and it fits, in
        free space or by evicting least-frequent entries each read strictly less often
        than it (if any needed victim is not, nothing is evicted). A key already cached
        has its value replaced, as in `put`."""
        if key in self._entries:
            return self.put(key, value, size)
        self._check_size(size)
        freq = self._sketch.estimate(key)
        if freq < self.admit_threshold or size > self._capacity:
            return False
        return self._install(key, value, size, beat=freq)

    def put(self, key: K, value: V, size: int) -> bool:
        """Replace the value of a cached key unconditionally (a fresher version from the
        change stream); a key not cached goes through `offer`'s admission rule.

        A replacement that grows evicts least-frequent other entries; one larger than
        the capacity drops the key (the old value is stale). Returns whether cached."""
        old = self._entries.get(key)
        if old is None:
            return self.offer(key, value, size)
        self._check_size(size)
        self._remove(old)
        if size > self._capacity:
            return False
        return self._install(key, value, size, beat=None, new=False)

    def force_put(self, key: K, value: V, size: int) -> bool:
        """Install regardless of frequency (read-your-write), evicting least-frequent
        entries as needed. Still never exceeds the capacity: an entry larger than it is
        not cached (and an older value of the key is dropped). Returns whether cached."""
        self._check_size(size)
        old = self._entries.get(key)
        if old is not None:
            self._remove(old)
        if size > self._capacity:
            return False
        return self._install(key, value, size, beat=None, new=old is None)

    # -- removals ----------------------------------------------------------------

    def invalidate(self, key: K) -> bool:
        e = self._entries.get(key)
        if e is None:
            return False
        self._remove(e)
        return True

    def invalidate_where(self, predicate: Callable[[K], bool]) -> int:
        """Drop every cached key matching `predicate` (e.g. all keys of a deleted
        namespace); returns how many. O(len)."""
        doomed = [e for e in self._order if predicate(e.key)]
        for e in doomed:
            self._remove(e)
        return len(doomed)

    def clear(self) -> None:
        """Drop every entry. Frequencies are kept: they describe reads, not contents."""
        self._entries.clear()
        self._order.clear()
        self._bytes = 0

    # -- internals ---------------------------------------------------------------

    @staticmethod
    def _check_size(size: int) -> None:
        if size < 0:
            raise ValueError("size must be >= 0")

    def _install(self, key: K, value: V, size: int, *, beat: int | None, new: bool = True) -> bool:
        """Make room (victims must each be read less than `beat`; None = any) and insert.
        The caller guarantees size <= capacity and key not cached."""
        need = self._bytes + size - self._capacity
        if need > 0:
            victims = self._pick_victims(need, beat)
            if victims is None:
                return False
            for v in victims:
                self._remove(v)
                self.evictions += 1
                if self.on_evict is not None:
                    self.on_evict(v.key, v.value)
        e = _Entry(key, value, size, self._sketch.slots(key), len(self._order))
        self._entries[key] = e
        self._order.append(e)
        self._bytes += size
        if new:
            self.admissions += 1
        return True

    def _pick_victims(self, need: int, beat: int | None) -> list[_Entry[K, V]] | None:
        """Plan evictions freeing >= `need` bytes, least frequent first, before evicting
        anything: if a needed victim is not beaten, the cache is left untouched."""
        chosen: dict[int, _Entry[K, V]] = {}  # by pos: positions are stable while planning
        freed = 0
        while freed < need:
            victim = self._sample_min(chosen)
            if victim is None:
                return None  # cannot happen when size <= capacity; defensive
            if beat is not None and self._sketch.estimate_slots(victim.slots) >= beat:
                return None
            chosen[victim.pos] = victim
            freed += victim.size
        return list(chosen.values())

    def _sample_min(self, chosen: dict[int, _Entry[K, V]]) -> _Entry[K, V] | None:
        order = self._order
        n = len(order)
        left = n - len(chosen)
        if left <= 0:
            return None
        est = self._sketch.estimate_slots
        if left <= self._eviction_sample or len(chosen) * 2 > n:
            # Few candidates left: an exact scan is as cheap as sampling and cannot miss.
            pool = [e for e in order if e.pos not in chosen]
        else:
            rand = self._rng.random
            pool = []
            while len(pool) < self._eviction_sample:
                e = order[int(rand() * n)]
                if e.pos not in chosen:
                    pool.append(e)
        return min(pool, key=lambda e: est(e.slots))

    def _remove(self, e: _Entry[K, V]) -> None:
        del self._entries[e.key]
        last = self._order.pop()
        if last is not e:
            self._order[e.pos] = last
            last.pos = e.pos
        self._bytes -= e.size
