"""The change log on both engines (conftest.py): seqs across restarts, retention, listeners,
group commit."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from dataclasses import replace

import pytest
from helpers.tokens import create_token
from store_support import StoreOpener, stored_bytes

from kvcore.clock import ManualClock
from kvcore.model import Change, ChangeKind, Permission, WriteItem
from kvcore.store.base import LogTruncated, Store
from kvcore.store.ops import BulkPutOp, CreateNamespaceOp, DeleteOp, GroupOp, PutOp

ACCT = "acct1"


def test_satisfies_store_protocol(open_store: StoreOpener) -> None:
    with open_store() as s:
        store: Store = s  # mypy checks the structural match; this is the runtime smoke
        assert store.committed_seq == 0


def test_seq_strictly_increasing_without_gaps_across_reopen(open_store: StoreOpener) -> None:
    seqs: list[int] = []
    for round_ in range(3):
        with open_store() as s:
            assert s.committed_seq == len(seqs)
            ns = s.run(CreateNamespaceOp(ACCT, f"t{round_}")).id
            seqs.append(s.committed_seq)
            for i in range(5):
                seqs.append(s.run(PutOp(ACCT, ns, WriteItem(f"k{i}", b"v"))).seq)
            seqs.append(s.run(BulkPutOp(ACCT, ns, [WriteItem("a", b""), WriteItem("b", b"")])).seq - 1)
            seqs.append(seqs[-1] + 1)
            s.run(DeleteOp(ACCT, ns, "nothing-here"))  # a no-op takes no seq
            create_token(s, ACCT, Permission.READ)
            seqs.append(s.committed_seq)
    assert seqs == list(range(1, len(seqs) + 1))
    with open_store() as s:
        log = s.changes_since(0, limit=10_000)
        assert [c.seq for c in log] == seqs
        assert all(c.commit_time > 0 for c in log)


def test_changes_since_limits_and_content(open_store: StoreOpener) -> None:
    clock = ManualClock()
    with open_store(clock=clock) as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        s.run(PutOp(ACCT, ns, WriteItem("k", b"secret-value", '{"m":1}', int(clock.now()) + 300)))
        s.run(DeleteOp(ACCT, ns, "k"))
        assert [c.seq for c in s.changes_since(0, limit=2)] == [1, 2]
        assert [c.seq for c in s.changes_since(1)] == [2, 3]
        assert s.changes_since(3) == [] and s.changes_since(99) == []
        put = s.changes_since(1)[0]
        assert (put.kind, put.key, put.namespace_id, put.account_id) == (ChangeKind.KEY_CREATE, "k", ns, ACCT)
        exp = int(clock.now()) + 300
        assert (put.metadata_json, put.expiration, put.commit_time) == ('{"m":1}', exp, clock.now())
        assert put.value is None and put.version == 2
        # The log stores no values.
        assert not any(b"secret-value" in v for t, _, v in stored_bytes(s) if "change_log" in t)


def test_retention_trim_and_log_truncated(open_store: StoreOpener) -> None:
    with open_store(log_retention=10) as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        for i in range(29):
            s.run(PutOp(ACCT, ns, WriteItem(f"k{i}", b"v")))
        assert s.committed_seq == 30 and s.oldest_retained_seq == 1
        assert s.trim_log() == 21
        assert s.oldest_retained_seq == 21
        assert [c.seq for c in s.changes_since(20)] == list(range(21, 31))
        with pytest.raises(LogTruncated):
            s.changes_since(19)
        with pytest.raises(LogTruncated):
            s.changes_since(0)
    with open_store(log_retention=10) as s:
        assert s.oldest_retained_seq == 21 and s.committed_seq == 30
        with pytest.raises(LogTruncated):
            s.changes_since(5)
        assert len(s.changes_since(20)) == 10


def test_background_trim(open_store: StoreOpener) -> None:
    import time

    with open_store(log_retention=5, purge_interval_s=0.02, sync=False) as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        s.run(BulkPutOp(ACCT, ns, [WriteItem(f"k{i}", b"") for i in range(50)]))
        deadline = time.monotonic() + 5
        while s.oldest_retained_seq != 47:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert [c.seq for c in s.changes_since(46)] == [47, 48, 49, 50, 51]


def test_listeners_get_changes_in_seq_order(open_store: StoreOpener) -> None:
    got: list[Change] = []
    calls: list[int] = []
    lock = threading.Lock()

    def listener(changes: Sequence[Change]) -> None:
        with lock:
            calls.append(len(changes))
            got.extend(changes)

    def broken(changes: Sequence[Change]) -> None:
        raise RuntimeError("a broken listener must not stop the writer")

    with open_store() as s:
        s.add_listener(broken)
        s.add_listener(listener)
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id

        async def many() -> None:
            await asyncio.gather(*(s.submit(PutOp(ACCT, ns, WriteItem(f"k{i}", b"v"))) for i in range(300)))

        asyncio.run(many())
        s.run(BulkPutOp(ACCT, ns, [WriteItem("x", b""), WriteItem("y", b"")]))
        committed = s.committed_seq
    assert [c.seq for c in got] == list(range(1, committed + 1))
    assert len(calls) < 300, "concurrent puts were grouped into shared commits"


def test_listener_sees_commit_before_future_returns_to_next_reader(open_store: StoreOpener) -> None:
    """Listeners run after the batch is durable: the change is readable from the log."""
    with open_store() as s:
        seen: list[bool] = []
        # (A listener may get a create with its value attached; the log holds no values.)
        logged = lambda c: s.changes_since(c.seq - 1)[0] == replace(c, value=None, has_value=False)  # noqa: E731
        s.add_listener(lambda changes: seen.extend(logged(c) for c in changes))
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        s.run(PutOp(ACCT, ns, WriteItem("k", b"v")))
        deadline = time.monotonic() + 5  # PostgreSQL: delivered by the log follower, a moment later
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert seen == [True, True]


def test_a_create_written_over_in_its_group_reaches_listeners_without_its_value(
    open_store: StoreOpener,
) -> None:
    """A create's value rides to the listeners only while it is still the key's: a later
    update or delete of the key in the same group (or op) takes it off, so the feed does
    not push a value that is already gone while it holds the newer write (C2)."""
    with open_store() as s:
        got: list[Change] = []
        s.add_listener(got.extend)
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        put = lambda key, value: PutOp(ACCT, ns, WriteItem(key, value))  # noqa: E731
        group = [put("u", b"u1"), put("u", b"u2"), put("d", b"d1"), DeleteOp(ACCT, ns, "d"), put("c", b"c1")]
        s.run(GroupOp(group))
        s.run(BulkPutOp(ACCT, ns, [WriteItem("b", b"b1"), WriteItem("b", b"b2")]))
        deadline = time.monotonic() + 5  # PostgreSQL: delivered by the log follower, a moment later
        while len(got) < 9 and time.monotonic() < deadline:
            time.sleep(0.005)
    creates = {c.key: c.value for c in got if c.kind is ChangeKind.KEY_CREATE}
    assert creates == {"u": None, "d": None, "c": b"c1", "b": None}
    assert all(c.has_value == (c.value is not None) for c in got)


async def test_cancelled_before_running_is_not_applied(open_store: StoreOpener) -> None:
    with open_store(sync=False) as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        tasks = [
            asyncio.ensure_future(s.submit(PutOp(ACCT, ns, WriteItem(f"k{i}", b"")))) for i in range(200)
        ]
        await asyncio.sleep(0)
        for t in tasks[100:]:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Whatever committed is consistent: every acknowledged or applied key has a log entry.
        changes = s.changes_since(1, limit=10_000)
        assert [c.seq for c in changes] == list(range(2, s.committed_seq + 1))
        assert len(changes) == len(s.list_keys(ACCT, ns, "", 1000, "").keys)
        await asyncio.sleep(0.05)
