"""The replica's Prometheus series (replica.metrics), read from the edge and the stream
at scrape time: the names and labels of DESIGN.md, the values the state holds."""

from __future__ import annotations

from pathlib import Path

from kvcore.clock import ManualClock
from kvcore.metrics import Metrics
from kvcore.model import Change, ChangeBatch, ChangeKind, Entry, Namespace, Snapshot
from replica.edge import EdgeState, ReadThrough
from replica.metrics import LagObserver, observe
from replica.resume import ResumePoint
from replica.stream import StreamSubscriber, Subscription

ACC, NS = "a" * 32, "1" * 32


def _parts(tmp_path: Path, **edge_args: int) -> tuple[EdgeState, StreamSubscriber, Metrics, ManualClock]:
    """An edge and a subscriber wired as replica/server.py wires them (no network)."""
    clock = ManualClock()
    metrics = Metrics("eu")
    edge = EdgeState(clock=clock, admit_threshold=2, **{"cache_bytes": 1 << 20, **edge_args})
    resume = ResumePoint(str(tmp_path), "eu")
    stream = StreamSubscriber(
        client=None,  # type: ignore[arg-type]
        subscription=Subscription("eu"),
        edge=edge,
        resume=resume,
        clock=clock,
        on_applied=LagObserver(metrics, clock),
    )
    observe(metrics, edge, stream.status)
    stream.apply(ChangeBatch([], 1, 1, snapshot=Snapshot([Namespace(NS, ACC, "t")], [])))
    return edge, stream, metrics, clock


def _value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"region": "eu", **labels})


def _update(seq: int, key: str, commit_time: float) -> Change:
    return Change(seq, ChangeKind.KEY_UPDATE, commit_time, NS, ACC, key)


def test_cache_and_replication_series_follow_the_edge(tmp_path: Path) -> None:
    edge, stream, metrics, _ = _parts(tmp_path, cache_bytes=2000)
    for i in range(20):
        ref = (NS, f"k{i}")
        for _ in range(3 + i):
            edge.cache.record_read(ref)
        edge.after_read_through(ReadThrough(ref), Entry(f"k{i}", b"x" * 300, None, None, i + 2), i + 2)
    stream.apply(ChangeBatch([_update(100, "zzz", 0.0)], safe_seq=100, committed_seq=100))
    assert _value(metrics, "edgekv_cache_bytes") == edge.cache.bytes_used <= 2000
    assert _value(metrics, "edgekv_cache_keys") == len(edge.cache)
    assert _value(metrics, "edgekv_cache_admissions_total") == edge.cache.admissions > 0
    assert _value(metrics, "edgekv_cache_evictions_total") == edge.cache.evictions > 0
    assert _value(metrics, "edgekv_replication_applied_seq") == 100
    assert _value(metrics, "edgekv_central_committed_seq") == 100
    assert _value(metrics, "edgekv_replication_lag_seconds_count", kind="update") == 1
    assert _value(metrics, "edgekv_replication_connected") == 0  # apply() alone is no connection


def test_read_outcomes_are_counted_across_scrapes(tmp_path: Path) -> None:
    edge, _, metrics, _ = _parts(tmp_path)
    text = metrics.render().decode()
    for result in ("hit", "miss", "negative_hit"):  # every series exists from the start
        assert f'edgekv_cache_requests_total{{region="eu",result="{result}"}} 0.0' in text
    edge.hits, edge.misses = 3, 1
    assert _value(metrics, "edgekv_cache_requests_total", result="hit") == 3
    edge.hits += 2
    assert _value(metrics, "edgekv_cache_requests_total", result="hit") == 5  # not 3 + 5
    assert _value(metrics, "edgekv_cache_requests_total", result="miss") == 1


def test_replayed_changes_are_not_counted_as_replication_lag(tmp_path: Path) -> None:
    """Changes replayed from the log on resume were committed long ago: counting them
    as lag would trip the lag alerts on every replica restart."""
    _, stream, metrics, clock = _parts(tmp_path)
    clock.advance(3600)  # the changes below were committed an hour before they arrive
    committed = clock.now() - 3600
    stream.apply(ChangeBatch([_update(2, "old", committed)], safe_seq=2, committed_seq=2, replay=True))
    assert _value(metrics, "edgekv_replication_lag_seconds_count", kind="update") == 0
    stream.apply(ChangeBatch([_update(3, "live", clock.now() - 0.5)], safe_seq=3, committed_seq=3))
    assert _value(metrics, "edgekv_replication_lag_seconds_count", kind="update") == 1
    assert _value(metrics, "edgekv_replication_lag_seconds_sum", kind="update") == 0.5
