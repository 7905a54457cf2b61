"""The persisted resume point and the subscriber loop (fake client, no processes)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

from kvcore.clock import ManualClock
from kvcore.errors import Unavailable
from kvcore.metrics import Metrics
from kvcore.model import ChangeBatch, Snapshot
from replica.edge import EdgeState
from replica.metrics import observe
from replica.resume import ResumePoint, read_safe_seq
from replica.stream import StreamSubscriber, Subscription


def test_state_persists_and_is_per_region(tmp_path: Path) -> None:
    s = ResumePoint(str(tmp_path), "eu")
    assert s.safe_seq == 0
    s.save(42)
    s.close()
    s.close()  # idempotent
    assert read_safe_seq(str(tmp_path)) == 42
    s = ResumePoint(str(tmp_path), "eu")
    assert s.safe_seq == 42
    s.close()
    s = ResumePoint(str(tmp_path), "us")  # another region's data dir: start over
    assert s.safe_seq == 0
    s.close()


def test_the_resume_point_is_written_at_most_every_write_every_s(tmp_path: Path) -> None:
    clock = ManualClock()
    s = ResumePoint(str(tmp_path), "eu", clock=clock, write_every_s=0.1)
    s.save(5)
    assert read_safe_seq(str(tmp_path)) == 5  # the first write goes at once
    s.save(6)
    assert s.safe_seq == 6 and read_safe_seq(str(tmp_path)) == 5  # memory now, disk later
    clock.advance(0.1)
    s.save(7)
    assert read_safe_seq(str(tmp_path)) == 7
    s.save(3)  # central reset the stream to an older history: on disk at once
    assert read_safe_seq(str(tmp_path)) == 3
    s.save(8)
    assert read_safe_seq(str(tmp_path)) == 3
    clock.advance(0.1)
    s.save(8)  # a heartbeat after a burst: the same seq writes what is pending
    assert read_safe_seq(str(tmp_path)) == 8
    s.save(9)
    s.close()  # what is pending is written
    assert read_safe_seq(str(tmp_path)) == 9


class FakeClient:
    """Each subscribe() plays the next script: a list of batches, then an error (or end)."""

    target = "fake:1"

    def __init__(self, scripts: list[tuple[list[ChangeBatch], Exception | None]]) -> None:
        self.scripts = scripts
        self.calls: list[int] = []
        self.done = asyncio.Event()

    async def subscribe(self, region: str, from_seq: int, http_url: str = "") -> AsyncIterator[ChangeBatch]:
        self.calls.append(from_seq)
        if not self.scripts:
            self.done.set()
            await asyncio.Event().wait()
        batches, error = self.scripts.pop(0)
        for b in batches:
            yield b
            await asyncio.sleep(0)
        if error is not None:
            raise error


def snap_batch(safe: int, reset: bool = False) -> ChangeBatch:
    return ChangeBatch([], safe, safe, reset=reset, snapshot=Snapshot([], []))


async def test_subscriber_applies_persists_and_resumes(tmp_path: Path) -> None:
    clock = ManualClock()
    metrics = Metrics("eu")
    edge = EdgeState(clock=clock, cache_bytes=1 << 20)
    state = ResumePoint(str(tmp_path), "eu")
    client = FakeClient(
        [
            ([snap_batch(5), ChangeBatch([], 7, 9)], Unavailable("broken")),
            ([], Unavailable("still down")),
            ([snap_batch(9)], None),
        ]
    )
    sub = StreamSubscriber(
        client=client,  # type: ignore[arg-type]
        subscription=Subscription("eu", backoff_initial_s=0.001, backoff_max_s=0.004, rng=random.Random(1)),
        edge=edge,
        resume=state,
        clock=clock,
    )
    observe(metrics, edge, sub.status)

    def connected_gauge() -> float | None:
        return metrics.registry.get_sample_value("edgekv_replication_connected", {"region": "eu"})

    assert sub.status.staleness() == 0 and not sub.status.connected and connected_gauge() == 0
    clock.advance(3)
    assert sub.status.staleness() == 3  # never connected: since start
    task = asyncio.create_task(sub.run())
    await asyncio.wait_for(client.done.wait(), 5)
    # Resumed from what each connection had persisted.
    assert client.calls == [0, 7, 7, 9]
    assert state.safe_seq == 9 and edge.directory.loaded and sub.first_batch.is_set()
    assert sub.status.connections == 2
    assert not sub.status.connected  # the last script ended the stream
    clock.advance(2)
    assert sub.status.staleness() == 2
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert connected_gauge() == 0
    state.close()
    assert read_safe_seq(str(tmp_path)) == 9


class HangingClient:
    """First subscription: one batch, then silence (a hung central); later ones hang at once."""

    target = "fake:2"

    def __init__(self) -> None:
        self.calls = 0
        self.hanging = asyncio.Event()

    async def subscribe(self, region: str, from_seq: int, http_url: str = "") -> AsyncIterator[ChangeBatch]:
        self.calls += 1
        if self.calls == 1:
            yield snap_batch(4)
        self.hanging.set()
        await asyncio.Event().wait()
        yield snap_batch(0)  # pragma: no cover


async def test_a_silent_stream_is_down_and_stale_since_the_last_contact(tmp_path: Path) -> None:
    clock = ManualClock()
    edge = EdgeState(clock=clock, cache_bytes=1 << 20)
    state = ResumePoint(str(tmp_path), "eu")
    client = HangingClient()
    sub = StreamSubscriber(
        client=client,  # type: ignore[arg-type]
        subscription=Subscription("eu", backoff_initial_s=0.001, backoff_max_s=0.001, silence_bound_s=0.3),
        edge=edge,
        resume=state,
        clock=clock,
    )
    metrics = Metrics("eu")
    observe(metrics, edge, sub.status)
    task = asyncio.create_task(sub.run())
    await asyncio.wait_for(client.hanging.wait(), 5)
    assert sub.status.connected and sub.status.staleness() == 0
    assert metrics.registry.get_sample_value("edgekv_replication_connected", {"region": "eu"}) == 1
    clock.advance(7)  # time passes while central says nothing
    deadline = asyncio.get_running_loop().time() + 5
    while sub.status.connected or client.calls < 2:
        assert asyncio.get_running_loop().time() < deadline, "silence was not detected"
        await asyncio.sleep(0.05)
    assert sub.status.staleness() == 7  # from the last batch, not from when the silence was noticed
    assert metrics.registry.get_sample_value("edgekv_replication_staleness_seconds", {"region": "eu"}) == 7
    assert state.safe_seq == 4
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    state.close()
