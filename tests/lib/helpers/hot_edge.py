"""A replica's REST app in process with one hot key cached: `GET PATH` with `SECRET`
is a hot read. No central (`central=None`): nothing here may read through."""

from __future__ import annotations

from typing import Any

from kvcore.clock import ManualClock
from kvcore.metrics import Metrics
from kvcore.model import ChangeBatch, Entry, Namespace, Permission, Snapshot, Token, token_hash
from kvcore.rest.app import create_app
from replica.backend import Deadline, ReplicaBackend
from replica.edge import EdgeState, ReadThrough
from replica.metrics import observe

ACC, OTHER, NS = "a" * 32, "b" * 32, "1" * 32
SECRET, OTHER_SECRET = "s" * 40, "o" * 40
PATH = f"/client/v4/accounts/{ACC}/storage/kv/namespaces/{NS}/values/hot"


def token(tid: str, account: str, secret: str) -> Token:
    return Token(
        id=tid, account_id=account, permission=Permission.READ, secret_hash=token_hash(secret), created=0.0
    )


def hot_edge(expiration: int | None = None) -> tuple[Any, EdgeState, Metrics, ManualClock]:
    """(app, edge, metrics, clock): key "hot" = b"value" (version 5) cached in NS of ACC,
    readable with SECRET; OTHER_SECRET is a token of another account."""
    clock = ManualClock()
    metrics = Metrics("us")
    edge = EdgeState(clock=clock, cache_bytes=10**6, admit_threshold=1)
    observe(metrics, edge)
    tokens = [token("t1", ACC, SECRET), token("t2", OTHER, OTHER_SECRET)]
    edge.apply_batch(ChangeBatch([], 5, 5, snapshot=Snapshot([Namespace(NS, ACC, "t")], tokens)))
    edge.cache.record_read((NS, "hot"))
    edge.after_read_through(ReadThrough((NS, "hot")), Entry("hot", b"value", None, expiration, 5), 5)
    backend = ReplicaBackend(edge=edge, central=None, deadline=Deadline(1.0), region="us")  # type: ignore[arg-type]
    return create_app(backend, metrics), edge, metrics, clock
