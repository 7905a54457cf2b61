"""NegativeCache: keys known missing, with a TTL, bounded LRU."""

from __future__ import annotations

from kvcore.cache import NegativeCache
from kvcore.clock import ManualClock

NS = "0" * 32
Key = tuple[str, str]


def k(name: str, ns: str = NS) -> Key:
    return (ns, name)


def test_negative_cache_ttl() -> None:
    clock = ManualClock()
    n: NegativeCache[Key] = NegativeCache(clock=clock)
    n.add(k("gone"), as_of_seq=7)
    assert n.contains(k("gone")) and k("gone") in n and n.as_of(k("gone")) == 7
    clock.advance(59.9)
    assert n.contains(k("gone"))
    clock.advance(0.2)
    assert not n.contains(k("gone")) and n.as_of(k("gone")) is None and len(n) == 0


def test_negative_cache_readd_refreshes_ttl() -> None:
    clock = ManualClock()
    n: NegativeCache[Key] = NegativeCache(ttl_s=10, clock=clock)
    n.add(k("a"), 1)
    clock.advance(8)
    n.add(k("a"), 2)
    clock.advance(8)
    assert n.contains(k("a")) and n.as_of(k("a")) == 2


def test_negative_cache_is_bounded_lru() -> None:
    n: NegativeCache[Key] = NegativeCache(max_entries=3, clock=ManualClock())
    for name in ("a", "b", "c"):
        n.add(k(name), 1)
    assert n.contains(k("a"))  # a becomes most recently used; b is now the oldest
    n.add(k("d"), 1)
    assert len(n) == 3
    assert not n.contains(k("b"))
    assert all(n.contains(k(x)) for x in ("a", "c", "d"))
    for i in range(1000):
        n.add(k(f"x{i}"), i)
    assert len(n) == 3


def test_negative_cache_discard_and_clear() -> None:
    n: NegativeCache[Key] = NegativeCache(clock=ManualClock())
    other = "f" * 32
    n.add(k("a"), 1)
    n.add(k("b"), 1)
    n.add(k("c", other), 1)
    assert n.discard(k("a")) and not n.discard(k("a"))
    assert n.discard_where(lambda key: key[0] == other) == 1
    assert not n.contains(k("c", other)) and n.contains(k("b"))
    n.clear()
    assert len(n) == 0 and not n.contains(k("b"))


def test_negative_cache_zero_entries_holds_nothing() -> None:
    n: NegativeCache[Key] = NegativeCache(max_entries=0, clock=ManualClock())
    n.add(k("a"), 1)
    assert not n.contains(k("a")) and len(n) == 0
