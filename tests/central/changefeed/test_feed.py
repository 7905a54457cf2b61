"""`ChangeFeed.follow` over an in-memory change log, no process and no network:
catch-up, snapshot, reset when the log is gone or the subscriber fell behind, creates
at once, held updates flushed with hot values, and what the dashboard reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable, Sequence

from central.changefeed import ChangeFeed
from kvcore.clock import ManualClock
from kvcore.errors import LogTruncated
from kvcore.metrics import Metrics
from kvcore.model import Change, ChangeBatch, ChangeKind, Entry, Namespace, Token
from kvcore.settings import CentralSettings

NS = "n" * 32
ACCOUNT = "a" * 32


class _Log:
    """A store's change log and values, in memory; commits call listeners at once."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self.values: dict[str, Entry] = {}
        self.oldest_retained_seq = 1
        self._listeners: list[Callable[[Sequence[Change]], None]] = []

    @property
    def committed_seq(self) -> int:
        return self.changes[-1].seq if self.changes else 0

    def changes_since(self, seq: int, limit: int) -> list[Change]:
        if seq < self.oldest_retained_seq - 1:
            raise LogTruncated()
        return [c for c in self.changes if c.seq > seq][:limit]

    def add_listener(self, listener: Callable[[Sequence[Change]], None]) -> None:
        self._listeners.append(listener)

    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        return [self.values.get(k) for k in keys]

    def all_namespaces(self) -> list[Namespace]:
        return [Namespace(id=NS, account_id=ACCOUNT, title="t")]

    def list_tokens(self) -> list[Token]:
        return []

    def commit(self, kind: ChangeKind, key: str, value: bytes = b"v") -> Change:
        change = Change(
            seq=self.committed_seq + 1,
            kind=kind,
            commit_time=ManualClock().now(),
            namespace_id=NS,
            account_id=ACCOUNT,
            key=key,
        )
        self.changes.append(change)
        if kind is ChangeKind.KEY_DELETE:
            self.values.pop(key, None)
        else:
            self.values[key] = Entry(
                key=key, value=value, metadata_json=None, expiration=None, version=change.seq
            )
        for listener in self._listeners:
            listener([change])
        return change


def _feed(
    log: _Log, clock: ManualClock, delay_s: float = 5.0, queue: int = 1000, heartbeat_s: float = 60.0
) -> ChangeFeed:
    settings = CentralSettings(propagation_delay_s=delay_s, subscriber_queue_changes=queue)
    feed = ChangeFeed(log, settings, clock=clock, metrics=Metrics("central"))
    feed.heartbeat_s = heartbeat_s
    feed.start()
    return feed


async def _next(stream: AsyncGenerator[ChangeBatch, None]) -> ChangeBatch:
    return await asyncio.wait_for(stream.__anext__(), 2)


async def _settle() -> None:
    """Let call_soon_threadsafe deliver the commits to the feed."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_announced_regions_and_connections() -> None:
    feed = _feed(_Log(), ManualClock())
    eu = feed.follow("eu", 0, "http://eu:8080")
    await _next(eu)
    async with contextlib.aclosing(feed.follow("eu", 0, "http://eu:8080")) as eu2:
        await _next(eu2)
        async with contextlib.aclosing(feed.follow("old", 0)) as old:  # announces nothing
            await _next(old)
            assert feed.announced == {"eu": "http://eu:8080"}
            assert feed.connected_regions() == {"eu": 2, "old": 1}
            await eu.aclose()
            assert feed.connected_regions() == {"eu": 1, "old": 1}
    assert feed.connected_regions() == {} and feed.announced == {"eu": "http://eu:8080"}
    await feed.stop()


async def test_catch_up_then_live_changes_in_order() -> None:
    log, clock = _Log(), ManualClock()
    first = log.commit(ChangeKind.KEY_CREATE, "a")
    log.commit(ChangeKind.KEY_CREATE, "b")
    log.commit(ChangeKind.KEY_UPDATE, "a", b"a2")
    feed = _feed(log, clock)
    async with contextlib.aclosing(feed.follow("eu", first.seq)) as stream:
        replay = await _next(stream)
        assert replay.replay and replay.snapshot is not None and not replay.reset
        assert [c.seq for c in replay.changes] == [2, 3] and replay.changes[0].value == b"v"
        end = await _next(stream)
        assert end.changes == [] and end.safe_seq == 3
        created = log.commit(ChangeKind.KEY_CREATE, "c", b"cv")  # C1: at once, with its value
        live = await _next(stream)
        assert [(c.seq, c.value) for c in live.changes] == [(created.seq, b"cv")]
        assert live.safe_seq == created.seq
    await feed.stop()


async def test_from_zero_or_a_trimmed_log_is_a_reset() -> None:
    log = _Log()
    for i in range(5):
        log.commit(ChangeKind.KEY_CREATE, f"k{i}")
    feed = _feed(log, ManualClock())
    for from_seq in (0, 9):  # nothing yet; ahead of this central
        async with contextlib.aclosing(feed.follow("eu", from_seq)) as stream:
            batch = await _next(stream)
            assert batch.reset and batch.snapshot is not None and batch.safe_seq == 5
    log.oldest_retained_seq = 4
    async with contextlib.aclosing(feed.follow("eu", 1)) as stream:
        batch = await _next(stream)
        assert batch.reset and batch.snapshot is not None and batch.changes == []
    await feed.stop()


async def test_updates_are_held_coalesced_and_carry_hot_values() -> None:
    log, clock = _Log(), ManualClock()
    log.commit(ChangeKind.KEY_CREATE, "hot")
    log.commit(ChangeKind.KEY_CREATE, "cold")
    feed = _feed(log, clock, delay_s=5.0)
    feed.report_hot_keys("eu", {(NS, "hot")})
    async with contextlib.aclosing(feed.follow("eu", 2)) as stream:
        assert (await _next(stream)).safe_seq == 2
        log.commit(ChangeKind.KEY_UPDATE, "hot", b"h1")
        last = log.commit(ChangeKind.KEY_UPDATE, "hot", b"h2")
        gone = log.commit(ChangeKind.KEY_DELETE, "cold")
        await _settle()
        found = feed.held.find((NS, "hot"))
        assert found is not None and found[0].seq == last.seq and len(feed.held) == 2
        assert feed.flush_due() == 0  # not due yet
        clock.advance(5.0)
        assert feed.flush_due() == 2
        batch = await _next(stream)
        assert [(c.seq, c.value) for c in batch.changes] == [(last.seq, b"h2"), (gone.seq, None)]
        assert batch.safe_seq == gone.seq and feed.committed_seq == gone.seq
    await feed.stop()


async def test_a_subscriber_that_falls_behind_is_reset() -> None:
    log = _Log()
    feed = _feed(log, ManualClock(), queue=3)
    async with (
        contextlib.aclosing(feed.follow("slow", 0)) as slow,
        contextlib.aclosing(feed.follow("fast", 0)) as fast,
    ):
        await _next(slow)
        await _next(fast)
        for i in range(4):
            log.commit(ChangeKind.KEY_CREATE, f"k{i}")
            await _settle()
            assert (await _next(fast)).changes[0].key == f"k{i}"  # one at a time: within budget
        reset = await _next(slow)  # 4 unread > 3: its queue was dropped
        assert reset.reset and reset.snapshot is not None and reset.safe_seq == 4
        log.commit(ChangeKind.KEY_CREATE, "after")
        await _settle()
        assert [c.key for c in (await _next(slow)).changes] == ["after"]
    await feed.stop()


async def test_a_quiet_stream_sends_heartbeats_safe_below_held_updates() -> None:
    log = _Log()
    log.commit(ChangeKind.KEY_CREATE, "k")
    feed = _feed(log, ManualClock(), heartbeat_s=0.05)
    async with contextlib.aclosing(feed.follow("eu", 1)) as stream:
        await _next(stream)
        held = log.commit(ChangeKind.KEY_UPDATE, "k")
        log.commit(ChangeKind.KEY_CREATE, "new")
        await _settle()
        assert [c.key for c in (await _next(stream)).changes] == ["new"]
        beat = await _next(stream)
        assert beat.heartbeat and beat.changes == []
        assert beat.safe_seq == held.seq - 1 and beat.committed_seq == held.seq + 1
    await feed.stop()


async def test_series_exported_from_the_start() -> None:
    """The counters exist at 0 (rate() sees their first event); the subscribers gauge
    appears with the first subscriber (the CentralNotReady alert sums it)."""
    metrics = Metrics("central")
    feed = ChangeFeed(_Log(), CentralSettings(), clock=ManualClock(), metrics=metrics)
    feed.start()

    def series() -> set[str]:
        text = metrics.render().decode()
        return {line.split("{")[0] for line in text.splitlines() if line.startswith("edgekv_")}

    assert series() == {
        "edgekv_central_committed_seq",
        "edgekv_replication_coalesced_total",
        "edgekv_replication_pending_updates",
        "edgekv_replication_resets_total",
    }
    async with contextlib.aclosing(feed.follow("eu", 0)) as stream:
        await _next(stream)
        assert "edgekv_replication_subscribers" in series()
    await feed.stop()


async def test_stop_ends_every_stream() -> None:
    feed = _feed(_Log(), ManualClock())
    stream = feed.follow("eu", 0)
    await _next(stream)
    await feed.stop()
    assert [b async for b in stream] == []
    assert feed.connected_regions() == {}
