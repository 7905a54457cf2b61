"""The log follower hands on only what it knows durable (kvcore/store/pg_follow.py)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from kvcore.model import Change, ChangeKind, WriteItem
from kvcore.store import codec
from kvcore.store.ops import CreateNamespaceOp, PutOp
from kvcore.store.pg import PgStore

A = "acct-a"


def _until(cond: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_a_commit_nobody_announced_is_delivered_after_the_probe(pg_url: str) -> None:
    """A central that committed a group and died before its flush and its NOTIFY: no
    notification says the change is durable; the follower's probe (after poll_s without
    progress) makes it so and hands it on, once, in order."""
    with PgStore(pg_url, poll_s=0.2, purge_interval_s=3600) as a, PgStore(pg_url, poll_s=0.2) as b:
        got: list[Change] = []
        b.add_listener(got.extend)
        ns = a.run(CreateNamespaceOp(A, "t")).id
        put = a.run(PutOp(A, ns, WriteItem("k", b"v")))
        _until(lambda: bool(got) and got[-1].seq == put.seq, 5)
        lost = Change(
            seq=put.seq + 1,
            kind=ChangeKind.KEY_DELETE,
            commit_time=time.time(),
            namespace_id=ns,
            account_id=A,
            key="k",
        )
        with psycopg.connect(pg_url, autocommit=True) as conn, conn.transaction():
            conn.execute("SELECT last_seq FROM edgekv_seq WHERE id = 1 FOR UPDATE")
            conn.execute(
                "INSERT INTO edgekv_change_log (seq, kind, v) VALUES (%s, %s, %s)",
                (lost.seq, int(lost.kind), codec.encode_change(lost)),
            )
            conn.execute("UPDATE edgekv_seq SET last_seq = %s WHERE id = 1", (lost.seq,))
            conn.execute("SET LOCAL synchronous_commit = off")
        _until(lambda: got[-1].seq == lost.seq, 5)
        assert [c.seq for c in got[-2:]] == [put.seq, lost.seq]
        assert (got[-1].kind, got[-1].key) == (ChangeKind.KEY_DELETE, "k")
        # and the store's own writers go on after it
        after = a.run(PutOp(A, ns, WriteItem("k2", b"w")))
        assert after.seq == lost.seq + 1
        _until(lambda: got[-1].seq == after.seq, 5)
        assert [c.seq for c in got] == list(range(got[0].seq, after.seq + 1))
