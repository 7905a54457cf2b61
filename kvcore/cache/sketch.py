"""A decaying count-min frequency sketch (TinyLFU style).

The replica counts every read here, including reads of keys it does not cache, so
the cache can compare a newcomer with the entries it would displace. Memory is
fixed at construction: `DEPTH` rows of `width` one-byte saturating counters, with
`width` the next power of two >= the expected number of distinct hot items, so a
flood of distinct keys (a scan, an attack) costs no memory, only accuracy.

Counters are one byte, so halving is a single C-speed `bytearray.translate`
instead of a Python loop over every counter. They saturate at `max_count`: at most
`MAX_COUNT` = 255, and the hot-key cache uses TinyLFU's 15 (four bits' worth), which
is what lets it forget: a key that was read a thousand times before a popularity
shift is at 15, and three halvings put it below a newly hot key, where at 255 it
would take seven (the hit ratios of both are in bench/cache_sim.py). The price is
a coarser `hot_keys()` ranking: keys read 15 times or more per sample period tie.

Hashing uses Python's `hash()`, mixed to 64 bits, then Kirsch-Mitzenmacher double
hashing (`h1 + i*h2`) for the row indexes. It is deterministic within a process
(all we need: the sketch is never persisted nor shared), faster than blake2b over
an encoded key (bench/cache_sim.py), accepts any hashable key (the replica's
`(namespace_id, key)` tuples directly), and for str/bytes it is SipHash keyed per
process, so a client cannot precompute keys that collide with someone's hot key.

Updates are conservative (only the counters at the current minimum are raised),
which keeps the count-min guarantee (an estimate never under-counts, until a
decay or saturation) while over-counting less than a plain increment.

Decay, so yesterday's hot keys do not squat the cache:
- every `sample_size` increments (10 x width by default) all counters halve, the
  classic TinyLFU reset. Every increment counts toward it, a saturated key's too:
  Caffeine's FrequencySketch counts only increments that raised a counter, which
  with a saturated hot set ages the sketch far more slowly, and put the popularity
  shift of bench/cache_sim.py behind LRU (figures in the README). A caller that saw a key
  saturated in the current `epoch` may count it with `count_saturated`, skipping
  its counters;
- `decay(now)` halves all counters once per `half_life_s` of elapsed time, so a
  quiet replica forgets too (the cache calls it with its injected clock).

Not thread-safe: the replica drives it from one event loop.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Final

DEPTH = 4
MAX_COUNT = 255

_MASK64 = (1 << 64) - 1
_MIX1 = 0xBF58476D1CE4E5B9  # splitmix64 finalizer constants
_MIX2 = 0x94D049BB133111EB

# _SHIFT_TABLES[n] maps a counter byte to itself halved n times (n in 1..7); 8+ is zero.
_SHIFT_TABLES: list[bytes] = [bytes((i >> n) for i in range(256)) for n in range(8)]


def _width_for(expected_items: int) -> int:
    width = 16
    while width < expected_items:
        width <<= 1
    return width


class FrequencySketch:
    """Approximate, decaying read counts for an unbounded key space in fixed memory."""

    __slots__ = (
        "_additions",
        "_half_life_s",
        "_last_decay",
        "_mask",
        "_max",
        "_table",
        "epoch",
        "halvings",
        "sample_size",
        "width",
    )

    def __init__(
        self,
        expected_items: int = 100_000,
        *,
        sample_size: int | None = None,
        half_life_s: float | None = 60.0,
        max_count: int = MAX_COUNT,
    ) -> None:
        if expected_items < 1:
            raise ValueError("expected_items must be >= 1")
        if sample_size is not None and sample_size < 1:
            raise ValueError("sample_size must be >= 1")
        if half_life_s is not None and half_life_s <= 0:
            raise ValueError("half_life_s must be > 0 (or None for no time decay)")
        if not 1 <= max_count <= MAX_COUNT:
            raise ValueError(f"max_count must be in 1..{MAX_COUNT}")
        self._max = max_count
        self.width: Final = _width_for(expected_items)  # counters per row, a power of two
        self._mask = self.width - 1
        self._table = bytearray(DEPTH * self.width)
        self.sample_size = sample_size if sample_size is not None else 10 * self.width
        self._additions = 0
        self._half_life_s = half_life_s
        self._last_decay: float | None = None
        self.halvings = 0  # how many times counts were halved (tests, metrics)
        # Bumped whenever counters may go down (a halving, a clear); between bumps they
        # only rise, so a key seen at `max_count` in this epoch is still there.
        self.epoch = 0

    @property
    def memory_bytes(self) -> int:
        """Bytes of counters: fixed at construction, whatever the number of keys seen."""
        return len(self._table)

    def slots(self, key: Hashable) -> tuple[int, int, int, int]:
        """The counter offsets of `key`, one per row. Stable for the sketch's lifetime,
        so a cache may keep them per entry and skip rehashing on eviction scans."""
        h = hash(key) & _MASK64
        h = ((h ^ (h >> 30)) * _MIX1) & _MASK64
        h = ((h ^ (h >> 27)) * _MIX2) & _MASK64
        h ^= h >> 31
        h1 = h & 0xFFFFFFFF
        h2 = (h >> 32) | 1  # odd, so the rows' indexes never all coincide
        mask, width = self._mask, self.width
        return (
            h1 & mask,
            width + ((h1 + h2) & mask),
            2 * width + ((h1 + 2 * h2) & mask),
            3 * width + ((h1 + 3 * h2) & mask),
        )

    def increment(self, key: Hashable) -> int:
        """Count one occurrence of `key`; returns its new estimate."""
        return self.increment_slots(self.slots(key))

    def increment_slots(self, slots: tuple[int, int, int, int]) -> int:
        """`increment` for a key whose `slots` the caller kept (no rehash)."""
        a, b, c, d = slots
        t = self._table
        ta, tb, tc, td = t[a], t[b], t[c], t[d]
        # The minimum by comparisons, cheaper than the builtin `min` on four ints
        # (README, hot reads), and this runs on every read.
        m = ta if ta < tb else tb
        if tc < m:
            m = tc
        if td < m:
            m = td
        if m < self._max:
            m += 1
            # Conservative update: raise only counters below the new minimum.
            if ta < m:
                t[a] = m
            if tb < m:
                t[b] = m
            if tc < m:
                t[c] = m
            if td < m:
                t[d] = m
        self._additions += 1
        if self._additions >= self.sample_size:
            self._halve(1)
            m >>= 1
        return m

    def count_saturated(self) -> int:
        """`increment_slots` for a key whose estimate the caller saw at `max_count` in
        the current `epoch`, without reading its counters: nothing to raise, the
        occurrence still counts toward the sample. Returns the estimate (halved if
        this occurrence ended the sample)."""
        self._additions += 1
        if self._additions >= self.sample_size:
            self._halve(1)
            return self._max >> 1
        return self._max

    @property
    def max_count(self) -> int:
        """Where counters saturate (at most MAX_COUNT)."""
        return self._max

    def estimate(self, key: Hashable) -> int:
        """Estimated count of `key`: never below the true (decayed) count, up to `max_count`."""
        return self.estimate_slots(self.slots(key))

    def estimate_slots(self, slots: tuple[int, int, int, int]) -> int:
        t = self._table
        a, b, c, d = slots
        return min(t[a], t[b], t[c], t[d])

    def decay(self, now: float) -> int:
        """Halve all counts once per full `half_life_s` elapsed since the last decay.

        `now` is monotonic seconds from the caller's clock; the first call only sets
        the baseline. Returns the number of halvings applied."""
        if self._half_life_s is None:
            return 0
        if self._last_decay is None or now < self._last_decay:
            self._last_decay = now
            return 0
        periods = int((now - self._last_decay) // self._half_life_s)
        if periods <= 0:
            return 0
        # Advance by whole periods so fractional time carries over to the next call.
        self._last_decay += periods * self._half_life_s
        self._halve(periods)
        return periods

    def clear(self) -> None:
        self._table = bytearray(len(self._table))
        self._additions = 0
        self.epoch += 1

    def _halve(self, times: int) -> None:
        if times >= 8:
            self._table = bytearray(len(self._table))
        else:
            self._table = self._table.translate(_SHIFT_TABLES[times])
        self._additions >>= min(times, 63)
        self.halvings += times
        self.epoch += 1
