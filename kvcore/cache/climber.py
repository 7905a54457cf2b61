"""Hill climbing of W-TinyLFU's admission window (as Caffeine sizes it).

A small window favours frequency (a stable Zipf head is kept in the main space and
one-off reads barely touch it); a large one favours recency (bursts, popularity
shifts, loops). No fixed split is best on every workload, so the cache keeps
sizing the window by a hill climber over its own hit ratio:

- every sample of reads (the sketch's aging period, a multiple of the entries the
  cache holds), compare the sample's hit ratio with the previous sample's;
- if it went up (or stayed), keep moving the window in the same direction, else
  turn around; the step starts at 6.25% of the capacity and decays by 2% a
  sample, so the split settles;
- a change of 5 points or more (a new workload) restarts the step at 6.25%.

Source: Caffeine's `BoundedLocalCache.determineAdjustment` (constants
HILL_CLIMBER_STEP_PERCENT = 0.0625, HILL_CLIMBER_STEP_DECAY_RATE = 0.98,
HILL_CLIMBER_RESTART_THRESHOLD = 0.05, initial step negative: the first move
shrinks the window), and Einziger, Friedman, Manes, "Adaptive Software Cache
Management" (Middleware 2018). Units are the cache's: bytes.
"""

from __future__ import annotations

STEP_FRACTION = 0.0625
STEP_DECAY = 0.98
RESTART_THRESHOLD = 0.05


class HillClimber:
    """Turns a sample's hits and misses into a window adjustment in bytes (+ grows it)."""

    __slots__ = ("_capacity", "_previous_hit_ratio", "_step", "adjustments")

    def __init__(self, capacity_bytes: int) -> None:
        self._capacity = capacity_bytes
        self._step = -STEP_FRACTION * capacity_bytes
        self._previous_hit_ratio = 0.0
        self.adjustments = 0  # samples that moved the window (tests, metrics)

    def adjustment(self, hits: int, misses: int) -> int:
        """Bytes to move from the main space to the window (negative: the other way),
        given the hits and misses of the sample just ended."""
        requests = hits + misses
        if requests <= 0:
            return 0
        hit_ratio = hits / requests
        change = hit_ratio - self._previous_hit_ratio
        amount = self._step if change >= 0 else -self._step
        if abs(change) >= RESTART_THRESHOLD:
            restart = STEP_FRACTION * self._capacity
            self._step = restart if amount >= 0 else -restart
        else:
            self._step = STEP_DECAY * amount
        self._previous_hit_ratio = hit_ratio
        if int(amount) != 0:
            self.adjustments += 1
        return int(amount)

    def reset(self) -> None:
        """Forget the previous sample (the cache was emptied or is still filling)."""
        self._previous_hit_ratio = 0.0
