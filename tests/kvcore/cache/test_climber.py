"""The hill climber that sizes W-TinyLFU's window (its use by the cache: test_policy.py)."""

from __future__ import annotations

from kvcore.cache.climber import HillClimber


def test_hill_climber_follows_the_hit_ratio() -> None:
    h = HillClimber(10_000)  # steps of 6.25% = 625 bytes, the first one shrinking the window
    assert h.adjustment(50, 50) == -625  # from nothing to 50%: a restart, same direction
    assert h.adjustment(52, 48) == -625  # better: keep going, the step decays by 2%
    assert h.adjustment(51, 49) == 612  # worse: turn around
    assert h.adjustment(80, 20) == 600  # a jump of 29 points: restart the step at 625
    assert h.adjustment(81, 19) == 625
    assert h.adjustment(0, 0) == 0
