"""W-TinyLFU's space: three LRU queues over one byte budget, and no frequencies.

- the admission window: every key the policy admits enters at its most recent end;
- probation and protected, the main space SLRU-style: a probation entry read again
  moves to protected (`promote`), protected overflow is demoted back to probation's
  most recent end (`demote_protected`), protected keeping PROTECTED_FRACTION of the
  main space's bytes.

`Segments` keeps every entry in exactly one queue and the byte counts equal to the
sizes of the entries in them; who is admitted and who is evicted is decided by
`HotKeyCache` (kvcore.cache.policy) with its frequency sketch. Queues are
`OrderedDict`s, least recent first (C move-to-end and pop-oldest).

Source: Caffeine's BoundedLocalCache (evictFromWindow, onAccess, climb's window resize).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

PROTECTED_FRACTION = 0.80
"""The protected queue's share of the main space (Caffeine: PERCENT_MAIN_PROTECTED)."""

WINDOW, PROBATION, PROTECTED = 0, 1, 2


class Entry(Generic[K, V]):
    __slots__ = ("key", "queue", "saturated_epoch", "size", "slots", "value")

    def __init__(self, key: K, value: V, size: int, slots: tuple[int, int, int, int]) -> None:
        self.key = key
        self.value = value
        self.size = size
        self.slots = slots  # the key's sketch counters: estimates without rehashing
        self.queue = WINDOW
        self.saturated_epoch = -1  # the sketch epoch its counters were seen saturated in


class Segments(Generic[K, V]):
    """The window, probation and protected queues of a cache of `capacity` bytes, the
    window first given `window_fraction` of them. Sizes are in bytes (as charged)."""

    def __init__(self, capacity: int, window_fraction: float) -> None:
        self.capacity = capacity
        self.entries: dict[K, Entry[K, V]] = {}
        self.window: OrderedDict[K, Entry[K, V]] = OrderedDict()  # least recent first
        self.probation: OrderedDict[K, Entry[K, V]] = OrderedDict()
        self.protected: OrderedDict[K, Entry[K, V]] = OrderedDict()
        self.bytes = 0
        self.window_bytes = 0
        self.protected_bytes = 0
        self.window_max = int(capacity * window_fraction)
        self.protected_max = int(PROTECTED_FRACTION * (capacity - self.window_max))

    def queue_of(self, e: Entry[K, V]) -> OrderedDict[K, Entry[K, V]]:
        q = e.queue
        return self.window if q == WINDOW else self.probation if q == PROBATION else self.protected

    def add(self, e: Entry[K, V]) -> None:
        """A new entry, at the window's most recent end."""
        self.entries[e.key] = e
        self.window[e.key] = e
        self.window_bytes += e.size
        self.bytes += e.size

    def resize(self, e: Entry[K, V], size: int) -> None:
        delta = size - e.size
        e.size = size
        self.bytes += delta
        if e.queue == WINDOW:
            self.window_bytes += delta
        elif e.queue == PROTECTED:
            self.protected_bytes += delta

    def remove(self, e: Entry[K, V]) -> None:
        del self.entries[e.key]
        del self.queue_of(e)[e.key]
        self.bytes -= e.size
        if e.queue == WINDOW:
            self.window_bytes -= e.size
        elif e.queue == PROTECTED:
            self.protected_bytes -= e.size

    def clear(self) -> None:
        self.entries.clear()
        self.window.clear()
        self.probation.clear()
        self.protected.clear()
        self.bytes = self.window_bytes = self.protected_bytes = 0

    def promote(self, e: Entry[K, V]) -> None:
        """A probation entry was read again: it moves to protected (the least recent
        protected entries go back to probation if that overflows); one larger than the
        protected share only becomes probation's most recent."""
        key = e.key
        if e.size > self.protected_max:
            self.probation.move_to_end(key)
            return
        del self.probation[key]
        e.queue = PROTECTED
        self.protected[key] = e
        self.protected_bytes += e.size
        self.demote_protected()

    def demote_protected(self) -> None:
        protected, probation = self.protected, self.probation
        while self.protected_bytes > self.protected_max and protected:
            key, e = protected.popitem(last=False)
            self.protected_bytes -= e.size
            e.queue = PROBATION
            probation[key] = e

    def overflow_window(self) -> list[Entry[K, V]]:
        """Move the window's least recent entries beyond its share to probation's most
        recent end; returns them, oldest first (the candidates for the main space)."""
        window, probation = self.window, self.probation
        moved: list[Entry[K, V]] = []
        while self.window_bytes > self.window_max and window:
            key, e = window.popitem(last=False)
            self.window_bytes -= e.size
            e.queue = PROBATION
            probation[key] = e
            moved.append(e)
        return moved

    def victim(self, keep: K | None) -> Entry[K, V] | None:
        """The entry to compare with a candidate: probation's least recent, else
        protected's, else the window's; never `keep`. None if only `keep` is left."""
        for q in (self.probation, self.protected, self.window):
            for e in q.values():
                if e.key != keep:
                    return e
                # `keep` is skipped; the next entry (if any) is the victim
        return None

    def resize_window(self, amount: int) -> None:
        """Grow the window by `amount` bytes (shrink if negative) at the protected
        queue's expense; the shift is clamped so neither share goes below zero."""
        amount = min(amount, self.protected_max) if amount > 0 else max(amount, -self.window_max)
        if amount:
            self.window_max += amount
            self.protected_max = int(PROTECTED_FRACTION * (self.capacity - self.window_max))
            self.demote_protected()
