"""What the hub tells the dashboard, with no network: the regions that announced an
HTTP URL, which are connected, and the change held for a key with its time to flush."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from central.fanout import FLUSH_MARGIN_S, Hub
from kvcore.clock import ManualClock
from kvcore.metrics import Metrics
from kvcore.model import Change, ChangeKind, Entry


class _Store:
    committed_seq = 0

    def add_listener(self, listener: Callable[[Sequence[Change]], None]) -> None:
        pass

    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None:
        return None


def _hub(clock: ManualClock, delay_s: float = 5.0) -> Hub:
    return Hub(
        _Store(),  # type: ignore[arg-type]
        clock=clock,
        metrics=Metrics("central"),
        propagation_delay_s=delay_s,
        push_value_max_bytes=1024,
        queue_limit=1000,
    )


def _change(seq: int, kind: ChangeKind, key: str = "k", commit_time: float = 0.0) -> Change:
    return Change(
        seq=seq, kind=kind, commit_time=commit_time, namespace_id="n" * 32, account_id="a" * 32, key=key
    )


async def test_announced_regions_and_connections() -> None:
    hub = _hub(ManualClock())
    eu = hub.subscribe("eu", "http://eu:8080")
    hub.subscribe("eu", "http://eu:8080")
    hub.subscribe("old")  # a replica that announces nothing
    assert hub.announced == {"eu": "http://eu:8080"}
    assert hub.connected_regions() == {"eu": 2, "old": 1}
    hub.unsubscribe(eu)
    assert hub.connected_regions() == {"eu": 1, "old": 1}


async def test_held_change_and_its_time_to_flush() -> None:
    clock = ManualClock()
    hub = _hub(clock, delay_s=5.0)
    # Committed just now: the delay counts from commit time (a change from another
    # central's commit may arrive already partly aged).
    hub._ingest([_change(7, ChangeKind.KEY_UPDATE, commit_time=clock.now())])
    ref = ("n" * 32, "k")
    held = hub.held(ref)
    assert held is not None and held[0].seq == 7
    assert abs(held[1] - (5.0 - FLUSH_MARGIN_S)) < 1e-9
    clock.advance(2.0)
    # Coalesced: the newest change, the first one's deadline.
    hub._ingest([_change(9, ChangeKind.KEY_DELETE, commit_time=clock.now())])
    held = hub.held(ref)
    assert held is not None and held[0].seq == 9 and held[0].kind is ChangeKind.KEY_DELETE
    assert abs(held[1] - (3.0 - FLUSH_MARGIN_S)) < 1e-9
    clock.advance(10.0)
    due = hub.held(ref)
    assert due is not None and due[1] == 0.0  # due, not flushed yet
    assert hub.flush_due() == 1
    assert hub.held(ref) is None and hub.held(("n" * 32, "other")) is None
