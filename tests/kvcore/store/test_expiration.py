"""Expiration on both engines (conftest.py): an expired value is hidden at once, purged
later (in the background too), skipped in listings, and a put over it is a create."""

from __future__ import annotations

from store_support import ACCT, AnyStore, StoreOpener, all_keys, entry_record

from kvcore.clock import ManualClock
from kvcore.model import ChangeKind, WriteItem
from kvcore.store.ops import BulkPutOp, CreateNamespaceOp, DeleteOp, PutOp

# ---------------------------------------------------------------- expiration


def test_expiration_hides_purges_and_recreates(store: AnyStore, ns: str, clock: ManualClock) -> None:
    exp = int(clock.now()) + 60
    assert store.run(PutOp(ACCT, ns, WriteItem("k", b"v", expiration=exp))).created
    store.run(PutOp(ACCT, ns, WriteItem("live", b"v")))
    assert store.get(ACCT, ns, "k") is not None
    assert store.purge_expired() == 0

    clock.advance(60)  # expiration == now: expired
    assert store.get(ACCT, ns, "k") is None
    assert all_keys(store, ns) == ["live"]
    seq = store.committed_seq
    assert store.purge_expired() == 1
    assert store.committed_seq == seq, "purge logs nothing"
    assert store.purge_expired() == 0

    again = store.run(PutOp(ACCT, ns, WriteItem("k", b"v2")))
    assert again.created
    assert store.changes_since(seq)[-1].kind is ChangeKind.KEY_CREATE


def test_put_over_expired_unpurged_is_create_and_delete_is_noop(
    store: AnyStore, ns: str, clock: ManualClock
) -> None:
    store.run(PutOp(ACCT, ns, WriteItem("a", b"v", expiration=int(clock.now()) + 60)))
    store.run(PutOp(ACCT, ns, WriteItem("b", b"v", expiration=int(clock.now()) + 60)))
    clock.advance(100)
    seq = store.committed_seq
    assert store.run(DeleteOp(ACCT, ns, "a")).seq == 0
    assert store.committed_seq == seq
    assert store.run(PutOp(ACCT, ns, WriteItem("b", b"new"))).created
    # The replaced value's stale index entry must not purge the new value.
    assert store.purge_expired() == 0
    entry = store.get(ACCT, ns, "b")
    assert entry is not None and entry.value == b"new"


def test_expired_keys_skipped_in_pages(store: AnyStore, ns: str, clock: ManualClock) -> None:
    exp = int(clock.now()) + 60
    store.run(BulkPutOp(ACCT, ns, [WriteItem(f"a{i:02d}", b"", expiration=exp) for i in range(30)]))
    store.run(BulkPutOp(ACCT, ns, [WriteItem(f"b{i:02d}", b"") for i in range(15)]))
    store.run(BulkPutOp(ACCT, ns, [WriteItem(f"c{i:02d}", b"", expiration=exp) for i in range(30)]))
    clock.advance(61)
    page = store.list_keys(ACCT, ns, "", 10, "")
    assert [k.name for k in page.keys] == [f"b{i:02d}" for i in range(10)] and page.cursor
    page = store.list_keys(ACCT, ns, "", 10, page.cursor)
    assert [k.name for k in page.keys] == [f"b{i:02d}" for i in range(10, 15)]
    assert page.cursor == "", "only expired keys remain"


def test_purge_runs_in_background(open_store: StoreOpener, clock: ManualClock) -> None:
    import time

    with open_store(clock=clock, purge_interval_s=0.02, sync=False) as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        s.run(PutOp(ACCT, ns, WriteItem("k", b"v", expiration=int(clock.now()) + 60)))
        clock.advance(61)
        deadline = time.monotonic() + 5
        while entry_record(s, bytes.fromhex(ns) + b"k") is not None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
