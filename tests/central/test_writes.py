"""`MeteredWrites`: the store's one write verb counted by operation kind, over a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from central.writes import MeteredWrites
from kvcore.errors import KVError, NamespaceNotFound, PreconditionFailed
from kvcore.metrics import Metrics
from kvcore.model import Condition, WriteItem
from kvcore.store.ops import BulkPutOp, CreateNamespaceOp, DeleteOp, GroupOp, PutOp
from kvcore.store.rocks import RocksStore

ACCOUNT = "acct"


def _samples(metrics: Metrics, name: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        for s in family.samples:
            if s.name == name:
                out[s.labels.get("op", "")] = s.value
    return out


async def test_writes_are_counted_by_kind_and_a_group_by_its_members(tmp_path: Path) -> None:
    metrics = Metrics("central")
    with RocksStore(str(tmp_path / "store"), sync=False) as store:
        writes = MeteredWrites(store, metrics)
        ns = (await writes.submit(CreateNamespaceOp(ACCOUNT, "m"))).id
        assert (await writes.submit(PutOp(ACCOUNT, ns, WriteItem("a", b"1")))).created
        await writes.submit(BulkPutOp(ACCOUNT, ns, [WriteItem("b", b"2"), WriteItem("c", b"3")]))
        with pytest.raises(NamespaceNotFound):  # a failed write is not counted
            await writes.submit(PutOp(ACCOUNT, "0" * 32, WriteItem("x", b"")))
        results = await writes.submit(
            GroupOp(
                [
                    PutOp(ACCOUNT, ns, WriteItem("d", b"4")),
                    PutOp(ACCOUNT, ns, WriteItem("a", b"x"), Condition(if_none_match=True)),
                    DeleteOp(ACCOUNT, ns, "b"),
                    DeleteOp(ACCOUNT, ns, "c"),
                ]
            )
        )
        assert [type(r) for r in results if isinstance(r, KVError)] == [PreconditionFailed]
    counts = _samples(metrics, "edgekv_writes_total")
    assert counts == {"namespace_create": 1, "put": 2, "bulk_put": 1, "delete": 2}
    # One duration per counted write: 3 alone, plus 3 members of the group.
    assert _samples(metrics, "edgekv_write_duration_seconds_count") == {"": 6}
