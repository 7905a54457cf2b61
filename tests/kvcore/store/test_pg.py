"""What only the PostgreSQL engine has: several stores (centrals) on one database."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest
from helpers.postgres import postgres_server
from helpers.tokens import create_token

from kvcore.errors import DuplicateTitle, Unavailable
from kvcore.model import Change, Permission, WriteItem
from kvcore.settings import CentralSettings, SettingsError
from kvcore.store.ops import BulkPutOp, CreateNamespaceOp, DeleteNamespaceOp, PutOp, RevokeTokenOp
from kvcore.store.pg import PgStore
from kvcore.store.pg_schema import SCHEMA_VERSION

A = "acct-a"


def _open(url: str, **kw: object) -> PgStore:
    kw.setdefault("purge_interval_s", 3600)
    return PgStore(url, poll_s=0.2, **kw)  # type: ignore[arg-type]


def _until(cond: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_concurrent_starts_migrate_once(pg_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: _open(pg_url), range(4)))
    try:
        with stores[0]._pool.connection() as conn:
            assert conn.execute("SELECT version FROM edgekv_schema").fetchall() == [(SCHEMA_VERSION,)]
    finally:
        for s in stores:
            s.close()


def test_two_stores_share_catalog_seq_and_log(pg_url: str) -> None:
    with _open(pg_url) as a, _open(pg_url) as b:
        got: list[Change] = []
        lock = threading.Lock()

        def listener(changes: Sequence[Change]) -> None:
            with lock:
                got.extend(changes)

        b.add_listener(listener)
        ns = a.run(CreateNamespaceOp(A, "t")).id
        # B answers at once (its catalog catches up on a miss) and checks titles against A's.
        assert b.get_namespace(A, ns).title == "t"
        with pytest.raises(DuplicateTitle):
            b.run(CreateNamespaceOp(A, "t"))
        token, _ = create_token(a, A, Permission.WRITE)
        assert b.token_by_hash(token.secret_hash) == token
        results = [
            (a if i % 2 else b).run(PutOp(A, ns, WriteItem(f"k{i % 3}", b"v%d" % i))) for i in range(10)
        ]
        assert [r.seq for r in results] == list(range(results[0].seq, results[0].seq + 10))
        assert [r.created for r in results] == [True] * 3 + [False] * 7
        entry = a.get(A, ns, "k0")
        assert entry is not None and entry.value == b"v9"
        a.run(RevokeTokenOp(token.id))
        _until(lambda: b.token_by_hash(token.secret_hash) is None)  # B follows the revocation
        last = results[-1].seq + 1
        _until(lambda: bool(got) and got[-1].seq == last)
        assert [c.seq for c in got] == list(range(got[0].seq, last + 1))
        # Creates reach B's listener carrying their value (one query per page), unless
        # already overwritten (then the hub sends an invalidation).
        bulk = a.run(BulkPutOp(A, ns, [WriteItem("c1", b"one"), WriteItem("c2", b"x" * 2_000_000)]))
        _until(lambda: got[-1].seq == bulk.seq)
        c1, c2 = got[-2:]
        assert (c1.key, c1.value, c1.has_value) == ("c1", b"one", True)
        assert (c2.key, c2.value, c2.has_value) == ("c2", None, False), "too big to carry"


def test_maintenance_runs_on_one_store_at_a_time(pg_url: str) -> None:
    with (
        _open(pg_url, purge_interval_s=0.02, log_retention=5) as a,
        _open(pg_url, purge_interval_s=0.02, log_retention=5) as b,
    ):
        ns = a.run(CreateNamespaceOp(A, "t")).id
        b.run(BulkPutOp(A, ns, [WriteItem(f"k{i}", b"") for i in range(20)]))
        _until(lambda: a.oldest_retained_seq == 17)
        assert [c.seq for c in b.changes_since(16)] == [17, 18, 19, 20, 21]


def test_store_setting_needs_no_data_dir_with_postgres() -> None:
    assert CentralSettings(store="postgresql://u@127.0.0.1/db").validate()
    with pytest.raises(SettingsError, match="--data-dir"):
        CentralSettings().validate()
    with pytest.raises(SettingsError, match="--store"):
        CentralSettings(data_dir="/tmp/x", store="mysql://db").validate()


def test_database_restart_is_unavailable_then_resumes_without_reopening() -> None:
    with postgres_server() as pg, _open(pg.create_database(), timeout_s=1.0) as s:
        ns = s.run(CreateNamespaceOp(A, "t")).id
        s.run(PutOp(A, ns, WriteItem("k", b"v")))
        pg.stop()
        with pytest.raises(Unavailable):
            s.get(A, ns, "k")
        with pytest.raises(Unavailable):
            s.run(PutOp(A, ns, WriteItem("k", b"w")))
        pg.start()
        _until(lambda: _reads(s, ns), 15)
        assert s.run(PutOp(A, ns, WriteItem("k", b"w"))).seq == 3  # the writer reconnected too
        got: list[Change] = []
        s.add_listener(got.extend)
        s.run(PutOp(A, ns, WriteItem("k2", b"x")))
        _until(lambda: bool(got) and got[-1].seq == 4)  # and the follower


def _reads(s: PgStore, ns: str) -> bool:
    try:
        entry = s.get(A, ns, "k")
    except Unavailable:
        return False
    return entry is not None and entry.value == b"v"


def test_resync_reloads_the_catalog_when_the_log_was_trimmed_past_it(pg_url: str) -> None:
    """What the follower does when its part of the log is gone (cut off past retention)."""
    with _open(pg_url) as a, _open(pg_url) as b:
        gone = a.run(CreateNamespaceOp(A, "gone"))
        _until(lambda: gone.id in b._catalog.namespaces)
        b._follower.close()  # b stops following, as if cut off
        a.run(DeleteNamespaceOp(A, gone.id))
        kept = a.run(CreateNamespaceOp(A, "kept"))
        token, _ = create_token(a, A, Permission.READ)
        assert gone.id in b._catalog.namespaces and kept.id not in b._catalog.namespaces
        assert b._resync() == a.committed_seq
        assert set(b._catalog.namespaces) == {kept.id}
        assert b._catalog.tokens == {token.id: token}
