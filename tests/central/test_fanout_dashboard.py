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


def _change(seq: int, kind: ChangeKind, key: str = "k") -> Change:
    return Change(seq=seq, kind=kind, commit_time=0.0, namespace_id="n" * 32, account_id="a" * 32, key=key)


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
    hub._ingest([_change(7, ChangeKind.KEY_UPDATE)])
    ref = ("n" * 32, "k")
    held = hub.held(ref)
    assert held is not None and held[0].seq == 7
    assert abs(held[1] - (5.0 - FLUSH_MARGIN_S)) < 1e-9
    clock.advance(2.0)
    hub._ingest([_change(9, ChangeKind.KEY_DELETE)])  # coalesced: the newest, the first deadline
    held = hub.held(ref)
    assert held is not None and held[0].seq == 9 and held[0].kind is ChangeKind.KEY_DELETE
    assert abs(held[1] - (3.0 - FLUSH_MARGIN_S)) < 1e-9
    clock.advance(10.0)
    due = hub.held(ref)
    assert due is not None and due[1] == 0.0  # due, not flushed yet
    assert hub.flush_due() == 1
    assert hub.held(ref) is None and hub.held(("n" * 32, "other")) is None
