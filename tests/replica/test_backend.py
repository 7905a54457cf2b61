"""`ReplicaBackend` cache logic against a fake central (no processes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar, cast

import pytest

from kvcore.clock import ManualClock
from kvcore.errors import KeyNotFound, NamespaceNotFound, Unavailable
from kvcore.metrics import Metrics
from kvcore.model import (
    NO_CONDITION,
    Change,
    ChangeBatch,
    ChangeKind,
    Entry,
    KeyPage,
    Namespace,
    Snapshot,
    WriteItem,
    WriteResult,
)
from kvcore.store.ops import DeleteOp, Op, PutOp
from replica.backend import Deadline, ReplicaBackend
from replica.edge import EdgeState
from replica.metrics import observe

ACC = "a" * 32
NS = "1" * 32
R = TypeVar("R")


class FakeCentral:
    """A `CentralLink` (replica/link.py): a dict of entries and a seq counter."""

    target = "fake"

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        self.seq = 10
        self.gets: list[tuple[str, bool]] = []
        self.gate: asyncio.Event | None = None  # when set, get() waits for it
        self.fail: Exception | None = None

    async def get(
        self, account_id: str, namespace_id: str, key: str, *, metadata_only: bool = False
    ) -> tuple[Entry | None, int]:
        self.gets.append((key, metadata_only))
        if self.fail:
            raise self.fail
        e, as_of = self.entries.get(key), self.seq
        if self.gate is not None:
            await self.gate.wait()
        if e is not None and metadata_only:
            e = Entry(e.key, b"", e.metadata_json, e.expiration, e.version)
        return e, as_of

    async def submit(self, op: Op[R], *, timeout_s: float | None = None) -> R:
        if self.fail:
            raise self.fail
        self.seq += 1
        if isinstance(op, PutOp):
            item = op.item
            self.entries[item.key] = Entry(
                item.key, item.value, item.metadata_json, item.expiration, self.seq
            )
            return cast(R, WriteResult(self.seq, True, 0.0))
        if isinstance(op, DeleteOp):
            self.entries.pop(op.key, None)
            return cast(R, WriteResult(self.seq, False, 0.0))
        raise NotImplementedError(op)

    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage:
        await asyncio.sleep(10)
        return KeyPage([], "")

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        raise NotImplementedError

    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        raise NotImplementedError

    async def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        return [self.entries.get(k) for k in keys]

    def subscribe(self, region: str, from_seq: int, http_url: str = "") -> AsyncIterator[ChangeBatch]:
        raise NotImplementedError


def setup(
    *, down_for: float = 0.0, timeout_s: float = 2.0
) -> tuple[ReplicaBackend, EdgeState, FakeCentral, ManualClock]:
    clock = ManualClock()
    edge = EdgeState(clock=clock, cache_bytes=1 << 20, admit_threshold=2)
    edge.apply_batch(ChangeBatch([], 10, 10, snapshot=Snapshot([Namespace(NS, ACC, "t")], [])))
    central = FakeCentral()
    backend = ReplicaBackend(
        edge=edge,
        central=central,
        deadline=Deadline(timeout_s, stream_down_for=lambda: down_for),
        region="eu",
    )
    return backend, edge, central, clock


def counts(edge: EdgeState) -> dict[str, float]:
    """edgekv_cache_requests_total by result, as a scrape would see it."""
    metrics = Metrics("eu")
    observe(metrics, edge)
    out = dict.fromkeys(("hit", "miss", "negative_hit"), 0.0)
    for family in metrics.registry.collect():
        if family.name == "edgekv_cache_requests":
            for sample in family.samples:
                out[sample.labels["result"]] = sample.value
    return out


async def test_hits_misses_and_negative_hits_are_counted() -> None:
    backend, edge, central, _ = setup()
    central.entries["k"] = Entry("k", b"v", None, None, 5)
    sources = [(await backend.get(ACC, NS, "k")).source for _ in range(3)]
    assert sources == ["read-through", "read-through", "cache"]
    for _ in range(3):
        with pytest.raises(KeyNotFound):
            await backend.get(ACC, NS, "missing")
    assert counts(edge) == {"hit": 1, "miss": 3, "negative_hit": 2}
    assert len(central.gets) == 3


async def test_age_is_the_time_since_the_copy_was_installed() -> None:
    backend, _, central, clock = setup()
    central.entries["k"] = Entry("k", b"v", None, None, 5)
    await backend.get(ACC, NS, "k")
    await backend.get(ACC, NS, "k")
    clock.advance(7)
    r = await backend.get(ACC, NS, "k")
    assert r.source == "cache" and r.age_s == pytest.approx(7)


async def test_strong_reads_always_go_to_central() -> None:
    backend, edge, central, _ = setup()
    central.entries["k"] = Entry("k", b"v", None, None, 5)
    for _ in range(3):
        assert (await backend.get(ACC, NS, "k", strong=True)).source == "read-through"
    assert len(central.gets) == 3
    assert counts(edge)["hit"] == 0


async def test_metadata_reads_of_cold_keys_do_not_cache_an_empty_value() -> None:
    backend, _, central, _ = setup()
    central.entries["k"] = Entry("k", b"value", '{"m":1}', None, 5)
    r = await backend.get(ACC, NS, "k", metadata_only=True)
    assert r.entry.metadata_json == '{"m":1}'
    assert central.gets[-1] == ("k", True)
    # Second read: hot enough to be admitted, so the whole value is fetched and cached.
    await backend.get(ACC, NS, "k", metadata_only=True)
    assert central.gets[-1] == ("k", False)
    r = await backend.get(ACC, NS, "k")
    assert r.source == "cache" and r.entry.value == b"value"


async def test_a_newer_version_applied_during_a_read_through_wins() -> None:
    backend, edge, central, _ = setup()
    central.entries["k"] = Entry("k", b"old", None, None, 5)
    edge.cache.record_read((NS, "k"))
    central.gate = asyncio.Event()
    read = asyncio.create_task(backend.get(ACC, NS, "k"))
    await asyncio.sleep(0.01)
    # While central's answer (as of seq 10) travels, the stream applies seq 11 with its value.
    change = Change(
        11, ChangeKind.KEY_UPDATE, 0.0, NS, ACC, "k", value=b"new", has_value=True
    )  # fmt: skip
    edge.apply_batch(ChangeBatch([change], 11, 11))
    central.gate.set()
    r = await read
    assert r.entry.version == 11 and r.entry.value == b"new"
    cached = edge.lookup((NS, "k"))
    assert cached is not None and cached.entry.version == 11


async def test_account_checks_use_the_local_namespace_map() -> None:
    backend, _, central, _ = setup()
    with pytest.raises(NamespaceNotFound):
        await backend.get("b" * 32, NS, "k")
    assert central.gets == []


async def test_read_your_write() -> None:
    backend, _, central, _ = setup()
    with pytest.raises(KeyNotFound):
        await backend.get(ACC, NS, "k")
    res = await backend.submit(PutOp(ACC, NS, WriteItem("k", b"mine"), NO_CONDITION))
    r = await backend.get(ACC, NS, "k")
    assert r.source == "cache" and r.entry.value == b"mine" and r.entry.version == res.seq
    await backend.submit(DeleteOp(ACC, NS, "k", NO_CONDITION))
    with pytest.raises(KeyNotFound):
        await backend.get(ACC, NS, "k")
    assert len(central.gets) == 1


async def test_fail_fast_when_the_stream_is_down() -> None:
    backend, _, central, _ = setup(down_for=10.0)
    central.entries["k"] = Entry("k", b"v", None, None, 5)
    with pytest.raises(Unavailable):
        await backend.get(ACC, NS, "k")
    with pytest.raises(Unavailable):
        await backend.submit(PutOp(ACC, NS, WriteItem("k", b"x"), NO_CONDITION))
    assert central.gets == []


async def test_calls_to_central_have_a_deadline() -> None:
    backend, _, _, _ = setup(timeout_s=0.05)
    with pytest.raises(Unavailable):
        await backend.list_keys(ACC, NS, "", 10, "")


def test_one_deadline_per_call_grows_with_the_bytes_it_moves() -> None:
    deadline = Deadline(2.0, bytes_per_s=1000.0)
    assert deadline.seconds() == 2.0
    assert deadline.seconds(500) == 2.5
    down = Deadline(2.0, stream_down_for=lambda: 3.5, fail_fast_after_s=3.0)
    with pytest.raises(Unavailable, match="down for 4 s"):
        down.seconds()


async def test_a_bulk_read_drops_older_cached_copies_c4() -> None:
    backend, _, central, _ = setup()
    central.entries["k"] = Entry("k", b"v5", None, None, 5)
    for _ in range(2):
        await backend.get(ACC, NS, "k")
    assert (await backend.get(ACC, NS, "k")).source == "cache"
    central.entries["k"] = Entry("k", b"v12", None, None, 12)  # its update not yet on the stream
    assert [e.version if e else None for e in await backend.bulk_get(ACC, NS, ["k", "nope"])] == [12, None]
    r = await backend.get(ACC, NS, "k")
    assert r.source == "read-through" and r.entry.version == 12


async def test_namespace_reads_fall_back_to_the_stream_s_view_while_central_is_away() -> None:
    backend, _, central, _ = setup()
    central.get_namespace = central.list_namespaces = _unavailable  # type: ignore[method-assign]
    assert (await backend.get_namespace(ACC, NS)).title == "t"
    assert await backend.list_namespaces(ACC, 1, 20, "id", "asc") == ([Namespace(NS, ACC, "t")], 1)
    with pytest.raises(Unavailable):
        await backend.get_namespace(ACC, "9" * 32)  # not known here: no local answer


async def _unavailable(*args: Any) -> Any:
    raise Unavailable("central away")


async def test_ready_after_the_first_batch_and_tokens_from_the_stream() -> None:
    edge = EdgeState(clock=ManualClock(), cache_bytes=1 << 20)
    backend = ReplicaBackend(edge=edge, central=FakeCentral(), deadline=Deadline(1.0), region="eu")
    ready, reason = await backend.ready()
    assert not ready and "first batch" in reason
    edge.apply_batch(ChangeBatch([], 1, 1, snapshot=Snapshot([], [])))
    assert (await backend.ready())[0]
    assert await backend.authenticate("x" * 64) is None
