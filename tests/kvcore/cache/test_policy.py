"""HotKeyCache (W-TinyLFU): admission, queues, byte bound, decay, the window's resizing.
(NegativeCache: test_negative.py; the hill climber alone: test_climber.py.)"""

from __future__ import annotations

import functools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from kvcore.cache import ENTRY_OVERHEAD_BYTES, HotKeyCache, entry_size
from kvcore.cache.policy import SKETCH_MAX_COUNT
from kvcore.cache.sketch import FrequencySketch
from kvcore.clock import ManualClock

NS = "0" * 32
Key = tuple[str, str]


def k(name: str, ns: str = NS) -> Key:
    return (ns, name)


def make(capacity: int = 10_000, **kw: object) -> HotKeyCache[Key, bytes]:
    kw.setdefault("clock", ManualClock())
    kw.setdefault("rng", random.Random(7))
    kw.setdefault("sketch_items", 4096)
    return HotKeyCache(capacity, **kw)  # type: ignore[arg-type]


def read(c: HotKeyCache[Key, bytes], key: Key, times: int = 1) -> int:
    f = 0
    for _ in range(times):
        f = c.record_read(key)
    return f


# -- admission -------------------------------------------------------------------


def test_key_read_above_threshold_is_admitted_once_read_key_is_not() -> None:
    c = make()
    read(c, k("once"))
    assert not c.offer(k("once"), b"v", 100)
    assert k("once") not in c and c.get(k("once")) is None
    assert read(c, k("twice"), 2) == 2
    assert c.offer(k("twice"), b"v", 100)
    assert c.get(k("twice")) == b"v"
    assert c.admissions == 1 and c.bytes_used == 100 and len(c) == 1


def test_threshold_is_configurable() -> None:
    c = make(admit_threshold=1)
    read(c, k("a"))
    assert c.offer(k("a"), b"v", 10)
    c = make(admit_threshold=5)
    read(c, k("a"), 4)
    assert not c.offer(k("a"), b"v", 10)
    read(c, k("a"))
    assert c.offer(k("a"), b"v", 10)


def test_entry_larger_than_capacity_is_never_admitted() -> None:
    c = make(1000)
    read(c, k("big"), 50)
    assert not c.offer(k("big"), b"x", 1001)
    assert not c.force_put(k("big"), b"x", 1001)
    assert not c.put(k("big"), b"x", 1001)
    assert len(c) == 0 and c.bytes_used == 0
    assert c.force_put(k("big"), b"x", 1000)  # exactly the capacity fits
    assert c.bytes_used == 1000


def test_window_takes_every_admitted_key_and_frequency_decides_who_stays() -> None:
    # 10 entries of 100 B; the window is 1% (10 B): a new key passes through it into
    # probation, where it competes with probation's least recent entry.
    c = make(1000, adaptive=False)
    for i in range(10):
        read(c, k(f"r{i}"), 5)
        assert c.offer(k(f"r{i}"), b"v", 100)
    assert c.evictions == 0 and len(c) == 10
    read(c, k("cold"), 2)  # passes the threshold, but is read less than the victim (5)
    assert not c.offer(k("cold"), b"v", 100)
    assert k("cold") not in c and c.evictions == 1 and len(c) == 10
    read(c, k("hot"), 6)  # beats the victim: r0, probation's least recent
    assert c.offer(k("hot"), b"v", 100)
    assert k("hot") in c and k("r0") not in c and c.evictions == 2
    assert c.bytes_used == 1000


def test_victim_is_least_recent_of_probation_not_protected() -> None:
    evicted: list[Key] = []
    c = make(300, adaptive=False, on_evict=lambda key, v: evicted.append(key))
    for name in ("a", "b", "c"):
        read(c, k(name), 3)
        assert c.offer(k(name), b"v", 100)
    read(c, k("a"))  # a probation hit: a moves to protected, b is now the victim
    assert c._seg.entries[k("a")].queue == 2
    read(c, k("new"), 5)
    assert c.offer(k("new"), b"v", 100)
    assert evicted == [k("b")]
    assert set(c.keys()) == {k("a"), k("c"), k("new")}


def test_protected_overflow_is_demoted_to_probation() -> None:
    c = make(1000, adaptive=False)  # protected holds 80% of the main space: 7 of 10 entries
    for i in range(10):
        read(c, k(f"p{i}"), 2)
        c.offer(k(f"p{i}"), b"v", 100)
    for i in range(10):
        read(c, k(f"p{i}"))  # each probation hit promotes
    queues = [c._seg.entries[k(f"p{i}")].queue for i in range(10)]
    assert queues.count(2) == 7 and queues.count(1) == 3
    assert queues[:3] == [1, 1, 1]  # the least recently promoted went back
    assert len(c) == 10 and c.evictions == 0


def test_window_entry_read_again_stays_cached_through_a_burst() -> None:
    # A big window (recency): a key read in a burst is served from the window.
    c = make(1000, adaptive=False, window_fraction=0.5)
    for i in range(5):
        read(c, k(f"w{i}"), 2)
        assert c.offer(k(f"w{i}"), b"v", 100)
    assert all(c._seg.entries[k(f"w{i}")].queue == 0 for i in range(5))
    read(c, k("w0"))  # recency refreshed: w1 is now the window's least recent
    read(c, k("x"), 2)
    c.offer(k("x"), b"v", 100)
    assert c._seg.entries[k("w1")].queue == 1 and c._seg.entries[k("w0")].queue == 0


def test_hash_flooding_guard_admits_a_warm_tie_rarely() -> None:
    c = make(100, adaptive=False, rng=random.Random(3))
    read(c, k("resident"), 10)
    assert c.offer(k("resident"), b"v", 100)
    wins = 0
    for i in range(2000):
        cand = k(f"c{i}")
        read(c, cand, 10)  # ties with the resident (both saturate or match)
        wins += c.offer(cand, b"v", 100)
        read(c, k("resident"), 10)
        if k("resident") not in c:
            c.invalidate(cand)
            read(c, k("resident"), 10)
            assert c.offer(k("resident"), b"v", 100)
    assert 2 <= wins <= 50  # ~1 in 128 of 2000


def test_eviction_calls_back_and_keeps_bound() -> None:
    evicted: list[tuple[Key, bytes]] = []
    c = make(1000, on_evict=lambda key, v: evicted.append((key, v)))
    for i in range(10):
        read(c, k(f"k{i}"), 2 + i)
        assert c.offer(k(f"k{i}"), b"v%d" % i, 100)
    read(c, k("new"), 14)
    assert c.offer(k("new"), b"n", 250)  # needs 3 victims
    assert sorted(evicted) == [(k("k0"), b"v0"), (k("k1"), b"v1"), (k("k2"), b"v2")]
    assert c.evictions == 3 and c.bytes_used == 950


# -- put / force_put -------------------------------------------------------------


def test_put_replaces_cached_key_unconditionally() -> None:
    c = make(1000)
    read(c, k("a"), 2)
    assert c.offer(k("a"), b"old", 100)
    c.sketch.clear()  # even with no reads counted any more, a cached key is replaced
    assert c.put(k("a"), b"new", 300)
    assert c.get(k("a")) == b"new" and c.bytes_used == 300
    assert c.admissions == 1  # a replacement is not an admission


def test_put_of_uncached_key_respects_admission() -> None:
    c = make(1000)
    read(c, k("a"))
    assert not c.put(k("a"), b"v", 10)
    read(c, k("a"))
    assert c.put(k("a"), b"v", 10)


def test_growing_replacement_evicts_others_but_keeps_bound() -> None:
    c = make(300)
    for name, n in (("a", 2), ("b", 3), ("c", 4)):
        read(c, k(name), n)
        c.offer(k(name), b"v", 100)
    assert c.put(k("c"), b"bigger", 250)  # evicts a and b, even if c were colder
    assert set(c.keys()) == {k("c")} and c.bytes_used == 250


def test_force_put_admits_regardless_of_frequency() -> None:
    c = make(200)
    for name in ("a", "b"):
        read(c, k(name), 20)
        c.offer(k(name), b"v", 100)
    assert c.force_put(k("mine"), b"written", 100)  # never read: still cached (read-your-write)
    assert c.get(k("mine")) == b"written"
    assert len(c) == 2 and c.bytes_used == 200 and c.evictions == 1
    assert c.force_put(k("mine"), b"again", 150)
    assert c.get(k("mine")) == b"again" and c.bytes_used <= 200


def test_negative_size_rejected() -> None:
    c = make()
    try:
        c.force_put(k("a"), b"", -1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative size accepted")


# -- removals --------------------------------------------------------------------


def test_invalidate_clear_and_invalidate_where() -> None:
    c = make(10_000)
    other = "f" * 32
    for i in range(5):
        c.force_put(k(f"a{i}"), b"v", 100)
        c.force_put(k(f"b{i}", other), b"v", 100)
    assert c.invalidate(k("a0")) and not c.invalidate(k("a0"))
    assert k("a0") not in c and len(c) == 9 and c.bytes_used == 900
    assert c.invalidate_where(lambda key: key[0] == other) == 5
    assert sorted(c.keys()) == [k(f"a{i}") for i in range(1, 5)] and c.bytes_used == 400
    read(c, k("a1"), 3)
    c.clear()
    assert len(c) == 0 and c.bytes_used == 0 and list(c.keys()) == []
    assert c.frequency(k("a1")) == 3  # frequencies survive a clear
    assert c.evictions == 0  # invalidations are not evictions


def test_hot_keys_orders_by_frequency() -> None:
    c = make(10_000)
    for i in range(14):  # counters saturate at 15
        c.force_put(k(f"k{i}"), b"v", 10)
        read(c, k(f"k{i}"), i + 1)
    read(c, k("uncached"), 100)
    assert c.hot_keys(3) == [k("k13"), k("k12"), k("k11")]
    assert c.hot_keys(0) == []
    assert len(c.hot_keys(100)) == 14


# -- decay -----------------------------------------------------------------------


def test_frequencies_decay_with_time() -> None:
    clock = ManualClock()
    c = make(10_000, clock=clock, half_life_s=60.0)
    read(c, k("a"), 3)
    clock.advance(61)
    assert c.record_read(k("b")) == 1  # decay is applied on the next read
    assert c.frequency(k("a")) == 1
    assert not c.offer(k("a"), b"v", 10)  # no longer hot enough
    clock.advance(60)
    c.record_read(k("b"))
    assert c.frequency(k("a")) == 0


def test_frequencies_decay_by_sample() -> None:
    c = make(10_000, sample_size=50, half_life_s=1e9)
    read(c, k("a"), 14)  # below the saturation at 15
    for i in range(36):
        c.record_read(k(f"other{i}"))
    assert c.sketch.halvings == 1
    assert 7 <= c.frequency(k("a")) <= 8


def test_yesterdays_hot_key_gives_way() -> None:
    clock = ManualClock()
    c = make(100, clock=clock)
    read(c, k("old"), 50)
    assert c.offer(k("old"), b"v", 100)
    clock.advance(600)  # 10 half-lives
    read(c, k("new"), 3)
    assert c.offer(k("new"), b"v", 100)
    assert list(c.keys()) == [k("new")]


# -- workloads -------------------------------------------------------------------


def _same_parity(kid: int, key: Key) -> bool:
    return int(key[1][3:]) % 2 == kid % 2


OPS = st.lists(
    st.tuples(
        st.sampled_from(["read_offer", "put", "force_put", "invalidate", "invalidate_where", "clear"]),
        st.integers(min_value=0, max_value=40),  # key id
        st.integers(min_value=0, max_value=64 * 1024),  # value size
    ),
    max_size=300,
)


@settings(max_examples=150, deadline=None)
@given(ops=OPS, capacity=st.integers(min_value=0, max_value=200_000))
def test_byte_bound_holds_under_random_workload(ops: list[tuple[str, int, int]], capacity: int) -> None:
    c = make(capacity)
    model: dict[Key, int] = {}
    for op, kid, vsize in ops:
        key = k(f"key{kid}")
        size = vsize + ENTRY_OVERHEAD_BYTES
        if op == "read_offer":
            c.record_read(key)
            if c.get(key) is None:
                c.offer(key, b"", size)
        elif op == "put":
            c.put(key, b"", size)
        elif op == "force_put":
            assert c.force_put(key, b"", size) == (size <= capacity)
        elif op == "invalidate":
            c.invalidate(key)
        elif op == "invalidate_where":
            c.invalidate_where(functools.partial(_same_parity, kid))
        else:
            c.clear()
        assert c.bytes_used <= c.capacity_bytes
        cached = list(c.keys())
        model = {key_: c._seg.entries[key_].size for key_ in cached}
        assert c.bytes_used == sum(model.values())
        queues = (c._seg.window, c._seg.probation, c._seg.protected)
        assert len(c) == len(model) == sum(len(q) for q in queues)
        for qi, q in enumerate(queues):
            assert all(e.queue == qi and c._seg.entries[key_] is e for key_, e in q.items())
        assert c._seg.window_bytes == sum(e.size for e in c._seg.window.values())
        assert c._seg.protected_bytes == sum(e.size for e in c._seg.protected.values())


def test_zipf_hot_keys_stay_cached() -> None:
    rng = random.Random(1)
    n_keys = 5_000
    weights = [1.0 / (i + 1) for i in range(n_keys)]  # zipf, s = 1
    c = make(200 * 1_000, sketch_items=10_000, rng=random.Random(2))  # room for ~200 of 5000 keys
    hits = 0
    stream = rng.choices(range(n_keys), weights=weights, k=60_000)
    for step, i in enumerate(stream):
        key = k(f"key{i}")
        c.record_read(key)
        if c.get(key) is not None:
            hits += step >= 20_000
        else:
            c.offer(key, b"", 500 + (i * 7919) % 1000)  # mixed sizes, 500..1499 bytes
        assert c.bytes_used <= c.capacity_bytes
    top10 = [k(f"key{i}") for i in range(10)]
    assert sum(key in c for key in top10) >= 9
    top100 = [k(f"key{i}") for i in range(100)]
    assert sum(key in c for key in top100) >= 80
    assert hits / 40_000 > 0.5  # a zipf s=1 head of 200/5000 keys is ~60% of reads
    assert c.evictions > 0


def test_scan_does_not_flush_hot_set() -> None:
    # Sized like the replica: sketch_items above the distinct keys read per sample period.
    evicted: list[Key] = []
    c = make(50 * 100, sketch_items=16_384, on_evict=lambda key, v: evicted.append(key))
    for i in range(50):
        read(c, k(f"hot{i}"), 5)
        assert c.offer(k(f"hot{i}"), b"", 100)
    for i in range(10_000):  # one-off reads of many keys (a crawler) among ongoing hot reads
        key = k(f"scan{i}")
        c.record_read(key)
        c.offer(key, b"", 100)
        if i % 10 == 0:
            c.record_read(k(f"hot{i // 10 % 50}"))
    assert not [key for key in evicted if key[1].startswith("hot")]
    assert sum(k(f"hot{i}") in c for i in range(50)) == 50


def test_entry_size() -> None:
    assert entry_size(NS, "ké", b"abc", '{"a":1}') == 32 + 3 + 3 + 7 + ENTRY_OVERHEAD_BYTES
    assert entry_size(NS, "k", b"") == 32 + 1 + ENTRY_OVERHEAD_BYTES


def test_cache_moves_its_window_once_a_sample_ends() -> None:
    c = make(100 * 100, sample_size=500)  # 1% window = 100 bytes
    assert c.window_bytes_max == 100
    for i in range(100):
        read(c, k(f"f{i}"), 2)
        c.offer(k(f"f{i}"), b"v", 100)
    for i in range(300):  # the 500th counted read ends the sample, with the cache full
        c.record_read(k(f"f{i % 100}"))
    assert c.window_bytes_max == 0  # the climber's first step shrinks the window
    assert c.bytes_used <= c.capacity_bytes and len(c) == 100
    fixed = make(100 * 100, sample_size=500, adaptive=False)
    for i in range(600):
        fixed.record_read(k(f"f{i % 100}"))
    assert fixed.window_bytes_max == 100


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6), min_size=200, max_size=1_500))
def test_hits_count_in_the_sketch_exactly_as_plain_increments(reads: list[int]) -> None:
    """record_read of cached keys (record_hit, which skips the counters of a key it saw
    saturated) leaves the same sketch as incrementing every read, across halvings (7
    keys, 150 reads a sample: some key saturates in every sample)."""
    c = make(10**7, admit_threshold=1, sample_size=150, half_life_s=None)
    plain = FrequencySketch(4096, sample_size=150, half_life_s=None, max_count=SKETCH_MAX_COUNT)
    saturated_hits = 0  # hits of a cached key already at the maximum: the skipping path
    for i in reads:
        key = k(f"k{i}")
        was_saturated = key in c and c.frequency(key) == SKETCH_MAX_COUNT
        got = c.record_read(key)
        assert got == plain.increment(key)
        saturated_hits += was_saturated
        if key not in c:
            c.offer(key, b"v", 1)
        assert c.sketch.halvings == plain.halvings
    assert all(c.frequency(k(f"k{i}")) == plain.estimate(k(f"k{i}")) for i in range(7))
    assert saturated_hits > 0, "no hit took the saturated path"
