"""FrequencySketch: count-min bounds, bounded memory, sample and time decay."""

from __future__ import annotations

from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from kvcore.cache.sketch import DEPTH, MAX_COUNT, FrequencySketch


def test_width_is_power_of_two_at_least_expected_items() -> None:
    s = FrequencySketch(100_000)
    assert s.width == 131_072
    assert s.memory_bytes == DEPTH * s.width
    assert s.sample_size == 10 * s.width


def test_increment_returns_new_estimate() -> None:
    s = FrequencySketch(1024)
    assert s.estimate(("ns", "k")) == 0
    assert [s.increment(("ns", "k")) for _ in range(3)] == [1, 2, 3]
    assert s.estimate(("ns", "k")) == 3


def test_accepts_str_bytes_and_tuple_keys_deterministically() -> None:
    s = FrequencySketch(1024)
    for key in ("a", b"a", ("ns", "a"), 42):
        assert s.slots(key) == s.slots(key)
        s.increment(key)
        assert s.estimate(key) >= 1


def test_counts_saturate() -> None:
    s = FrequencySketch(64, sample_size=10**9)
    for _ in range(MAX_COUNT + 50):
        s.increment("hot")
    assert s.estimate("hot") == MAX_COUNT


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=5_000), min_size=1, max_size=3_000))
def test_never_under_counts_before_decay(keys: list[int]) -> None:
    # A small sketch so collisions happen; no decay can trigger within this many increments.
    s = FrequencySketch(64, sample_size=10**9, half_life_s=None)
    for k in keys:
        s.increment(("ns", str(k)))
    for k, true in Counter(keys).items():
        assert s.estimate(("ns", str(k))) >= min(true, MAX_COUNT)


def test_estimates_are_close_when_sized_for_the_items() -> None:
    s = FrequencySketch(4096, sample_size=10**9)
    for k in range(1000):
        for _ in range(k % 5 + 1):
            s.increment(k)
    over = sum(s.estimate(k) - (k % 5 + 1) for k in range(1000))
    assert over <= 20  # conservative update, width 4096 for 1000 keys: almost exact


def test_memory_is_independent_of_distinct_keys() -> None:
    s = FrequencySketch(1000)
    before = s.memory_bytes
    for i in range(200_000):
        s.increment(f"key-{i}")
    assert s.memory_bytes == before == DEPTH * 1024


def test_sample_reset_halves_counts() -> None:
    s = FrequencySketch(64, sample_size=100, half_life_s=None)
    for _ in range(40):
        s.increment("hot")
    for i in range(59):
        s.increment(("cold", i))
    assert s.halvings == 0
    assert s.estimate("hot") >= 40
    s.increment(("cold", "last"))  # the 100th increment
    assert s.halvings == 1
    assert 20 <= s.estimate("hot") <= 30  # 40 + collisions, halved


def test_default_sample_reset_is_ten_times_width() -> None:
    s = FrequencySketch(16, half_life_s=None)
    for i in range(s.sample_size - 1):
        s.increment(i)
    assert s.halvings == 0
    s.increment("one more")
    assert s.halvings == 1


def test_time_decay_halves_once_per_half_life() -> None:
    s = FrequencySketch(1024, half_life_s=60.0)
    assert s.decay(0.0) == 0  # baseline
    for _ in range(64):
        s.increment("k")
    assert s.decay(59.9) == 0
    assert s.estimate("k") == 64
    assert s.decay(60.0) == 1
    assert s.estimate("k") == 32
    assert s.decay(150.0) == 1  # 90 s since the last decay: one more, 30 s carried over
    assert s.estimate("k") == 16
    assert s.decay(180.0) == 1
    assert s.estimate("k") == 8
    assert s.decay(180.0 + 3 * 60.0) == 3
    assert s.estimate("k") == 1
    assert s.decay(10_000.0) > 8
    assert s.estimate("k") == 0


def test_time_decay_disabled() -> None:
    s = FrequencySketch(1024, half_life_s=None)
    s.increment("k")
    assert s.decay(0.0) == 0 and s.decay(1e9) == 0
    assert s.estimate("k") == 1


def test_clear() -> None:
    s = FrequencySketch(64)
    s.increment("k")
    s.clear()
    assert s.estimate("k") == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6), min_size=200, max_size=1_500))
def test_count_saturated_is_increment_slots_for_a_key_seen_saturated(keys: list[int]) -> None:
    """A caller that remembers the epoch a key was seen at max_count in and then calls
    `count_saturated` (as HotKeyCache.record_hit does) leaves the sketch exactly as
    `increment_slots` would: same estimates, same halvings, same return values."""
    plain = FrequencySketch(64, sample_size=150, half_life_s=None, max_count=15)
    fast = FrequencySketch(64, sample_size=150, half_life_s=None, max_count=15)
    seen_saturated: dict[int, int] = {}
    used_fast_path = 0
    for key in keys:
        want = plain.increment_slots(plain.slots(key))
        if seen_saturated.get(key) == fast.epoch:
            got = fast.count_saturated()
            used_fast_path += 1
        else:
            got = fast.increment_slots(fast.slots(key))
            if got == fast.max_count:
                seen_saturated[key] = fast.epoch
        assert got == want
        assert fast.halvings == plain.halvings
    assert all(fast.estimate(k) == plain.estimate(k) for k in range(7))
    # 7 keys, 150 reads before the first halving: one key has 22+, 7+ of them saturated.
    assert used_fast_path > 0


def test_epoch_moves_whenever_counters_can_go_down() -> None:
    s = FrequencySketch(64, sample_size=10**9, half_life_s=60.0)
    epochs = [s.epoch]
    s.decay(0.0)  # baseline only: nothing halved
    assert s.epoch == epochs[-1]
    s.decay(61.0)
    epochs.append(s.epoch)
    s.clear()
    epochs.append(s.epoch)
    assert epochs[0] < epochs[1] < epochs[2]
