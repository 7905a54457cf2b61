"""The read-through race guard's memory (replica.recent `RecentChanges`): what it forgets,
when, and that forgetting only ever raises the floor."""

from __future__ import annotations

from kvcore.clock import ManualClock
from replica.recent import PRUNE_SWEEPS_PER_WINDOW, RecentChanges


def test_expired_keys_are_forgotten_in_sweeps_and_raise_the_floor() -> None:
    clock = ManualClock()
    recent: RecentChanges[str] = RecentChanges(window_s=10.0, clock=clock)
    sweep_s = 10.0 / PRUNE_SWEEPS_PER_WINDOW
    recent.record("a", 7)
    clock.advance(10.0)
    recent.record("b", 8)  # a sweep: "a" is exactly window_s old, still kept
    clock.advance(sweep_s / 2)
    recent.record("c", 9)  # no sweep yet: "a" is past the window but still answers
    assert recent.newer_than("a", 6) and recent.floor == 0
    assert not recent.newer_than("z", 6)  # an unknown key is at the floor, 0
    clock.advance(sweep_s / 2)
    recent.record("c", 9)  # the next sweep forgets "a": its seq becomes the floor
    assert recent.floor == 7
    assert recent.newer_than("z", 6) and not recent.newer_than("z", 7)
    assert recent.newer_than("a", 6, use_floor=True) and not recent.newer_than("a", 6, use_floor=False)
    assert recent.newer_than("b", 7)  # kept: inside the window


def test_the_key_bound_is_kept_on_every_record() -> None:
    clock = ManualClock()
    recent: RecentChanges[str] = RecentChanges(window_s=10.0, max_keys=2, clock=clock)
    recent.record("a", 1)
    recent.record("b", 2)
    recent.record("c", 3)  # no time passed: the oldest key goes all the same
    assert recent.floor == 1
    assert not recent.newer_than("b", 2) and recent.newer_than("c", 2)


def test_a_key_keeps_its_highest_seq() -> None:
    recent: RecentChanges[str] = RecentChanges(clock=ManualClock())
    recent.record("a", 5)
    recent.record("a", 3)  # an older change applied late (a lazily flushed update)
    assert recent.newer_than("a", 4)
