"""Negative entries: keys a replica recently learned are missing at central.

Without them every read of a missing key (a probe, a typo'd key in a hot path)
would be a read-through to central. An entry lives until its TTL passes (clock
injected, 60 s by default), until the key is created or the namespace deleted
(C1 changes call `discard`/`discard_where`), or until it is the least recently
used when the set is full, so memory is bounded whatever clients ask for.

`as_of_seq` is the central seq at which the key was known missing. A read-through
that raced with a create can arrive after the create was applied: the replica
must not `add` a negative whose `as_of_seq` is older than a change it has already
applied for that key (`as_of` lets it compare).

Not thread-safe: the replica drives it from one event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from kvcore.clock import SYSTEM_CLOCK, Clock

K = TypeVar("K", bound=Hashable)


class NegativeCache(Generic[K]):
    """A bounded, TTL'd, LRU set of keys known missing."""

    def __init__(
        self, max_entries: int = 100_000, *, ttl_s: float = 60.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if max_entries < 0:
            raise ValueError("max_entries must be >= 0")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self._clock = clock
        # key -> (expires at, monotonic seconds; as_of_seq). Order = recency of use.
        self._entries: OrderedDict[K, tuple[float, int]] = OrderedDict()

    def add(self, key: K, as_of_seq: int) -> None:
        """Remember `key` as missing as of `as_of_seq`, for `ttl_s` from now."""
        if self.max_entries == 0:
            return
        self._entries[key] = (self._clock.monotonic() + self.ttl_s, as_of_seq)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def contains(self, key: K) -> bool:
        """Whether `key` is known missing (not expired). A hit makes it recently used."""
        item = self._entries.get(key)
        if item is None:
            return False
        if self._clock.monotonic() >= item[0]:
            del self._entries[key]
            return False
        self._entries.move_to_end(key)
        return True

    def __contains__(self, key: object) -> bool:
        return self.contains(key) if isinstance(key, Hashable) else False  # type: ignore[arg-type]

    def as_of(self, key: K) -> int | None:
        """The seq the live negative entry of `key` was taken at, or None."""
        item = self._entries.get(key)
        if item is None or self._clock.monotonic() >= item[0]:
            return None
        return item[1]

    def discard(self, key: K) -> bool:
        return self._entries.pop(key, None) is not None

    def discard_where(self, predicate: Callable[[K], bool]) -> int:
        """Drop every entry whose key matches (e.g. a deleted namespace); returns how many."""
        doomed = [k for k in self._entries if predicate(k)]
        for k in doomed:
            del self._entries[k]
        return len(doomed)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        """Entries held, including expired ones not yet looked at (bounded by max_entries)."""
        return len(self._entries)
