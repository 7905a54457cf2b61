"""`CatalogSync`: a central's catalog (namespaces, tokens) following the shared log.

Each central keeps namespaces and tokens in memory (catalog.py). Changes committed
through other centrals reach it through the log, applied in seq order by whichever
of the writer (under the counter lock, before a group decides anything: pg_engine.py)
and the follower (pg_follow.py) gets there first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any, Final

import psycopg

from kvcore.model import Change, ChangeKind, Namespace
from kvcore.store import codec
from kvcore.store.catalog import Catalog

Conn = psycopg.Connection[Any]
_CATALOG_KINDS = tuple(
    int(k)
    for k in (
        ChangeKind.NAMESPACE_CREATE,
        ChangeKind.NAMESPACE_RENAME,
        ChangeKind.NAMESPACE_DELETE,
        ChangeKind.TOKEN_PUT,
        ChangeKind.TOKEN_REVOKE,
    )
)
_CATALOG_KIND_SET = frozenset(_CATALOG_KINDS)
# A transaction that wrote no WAL commits without waiting for a flush, even with an xid;
# one that writes a logical WAL message (prefix "edgekv", ignored unless someone decodes
# the WAL) waits for the flush and a synchronous standby, per synchronous_commit.
FLUSH: Final = "SELECT pg_logical_emit_message(true, 'edgekv', '')"
_CATALOG_SINCE = "SELECT seq, v FROM edgekv_change_log WHERE seq > %s AND kind = ANY(%s) ORDER BY seq"


def load_catalog(conn: Conn) -> tuple[Catalog, int]:
    """Namespaces, tokens and the counter from one snapshot, made durable before it is
    used: the snapshot may see commits not flushed yet (pg_engine.py), which a crash or
    a failover could lose, and their seqs be reused."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        namespaces = conn.execute("SELECT k, v FROM edgekv_namespaces").fetchall()
        tokens = conn.execute("SELECT k, v FROM edgekv_tokens").fetchall()
        row = conn.execute("SELECT last_seq FROM edgekv_seq WHERE id = 1").fetchone()
        conn.execute(FLUSH)  # and the commit waits for the flush
    catalog = Catalog(
        (codec.decode_namespace(bytes(k), bytes(v)) for k, v in namespaces),
        (codec.decode_token(bytes(k), bytes(v)) for k, v in tokens),
    )
    return catalog, int(row[0]) if row else 0


class CatalogSync:
    """The catalog's position in the log, applied in seq order by whichever of the
    writer and the follower gets there first (under `lock`)."""

    def __init__(self, catalog: Catalog, seq: int) -> None:
        self.catalog = catalog
        self.seq = seq  # every namespace/token record <= seq is in the catalog
        self.lock = threading.Lock()

    def reload(self, conn: Conn) -> int:
        """Replace the catalog with the tables' and return the seq it is at: after the
        log lost records the catalog needed, or after the database was lost (a failover
        may have dropped commits not yet durable that the writer applied under the lock,
        and reuse their seqs)."""
        fresh, seq = load_catalog(conn)
        catalog = self.catalog
        with self.lock:
            for ns in catalog.all_namespaces():
                if ns.id not in fresh.namespaces:
                    catalog.set_namespace(ns.id, None)
            for ns in fresh.all_namespaces():
                catalog.set_namespace(ns.id, ns)
            for token in catalog.all_tokens():
                if token.id not in fresh.tokens:
                    catalog.set_token(token.id, None)
            for token in fresh.all_tokens():
                catalog.set_token(token.id, token)
            self.seq = seq
        return seq

    def apply(self, changes: Sequence[Change], upto: int) -> None:
        """Apply the catalog records among `changes` (ascending seq, all <= upto). With
        none, only move the position, and only if the lock is free: the writer holds it
        through a commit round trip, and the follower should not wait for that."""
        if not any(c.kind in _CATALOG_KIND_SET for c in changes):
            if self.lock.acquire(blocking=False):
                self.seq = max(self.seq, upto)
                self.lock.release()
            return
        self._apply(changes, upto)

    def _apply(self, changes: Iterable[Change], upto: int) -> None:
        with self.lock:
            for change in changes:
                if change.seq > self.seq:
                    _apply(self.catalog, change)
            self.seq = max(self.seq, upto)

    def since_query(self, conn: Conn) -> psycopg.Cursor[Any]:
        """The catalog records past our position (all of them, when run under the
        counter lock: nothing newer than the locked counter is committed)."""
        return conn.execute(_CATALOG_SINCE, (self.seq, list(_CATALOG_KINDS)))

    def apply_rows(self, rows: Sequence[tuple[Any, Any]], upto: int) -> None:
        self._apply((codec.decode_change(seq, v) for seq, v in rows), upto)

    def catch_up(self, conn: Conn, upto: int) -> None:
        """Apply the catalog records up to `upto`, the counter as `conn` (autocommit) just
        read it (a lookup missed: another central may have just made it). That counter
        may be ahead of what is durable, so records found are applied once a flush has
        made them durable (a failover could otherwise drop them and reuse their seqs);
        none found moves nothing (the follower moves the position over durable seqs)."""
        if upto <= self.seq:
            return
        rows = conn.execute(
            "SELECT seq, v FROM edgekv_change_log WHERE seq > %s AND seq <= %s AND kind = ANY(%s)"
            " ORDER BY seq",
            (self.seq, upto, list(_CATALOG_KINDS)),
        ).fetchall()
        if rows:
            conn.execute(FLUSH)  # its own transaction: commits after the flush
            self.apply_rows(rows, upto)


def _apply(catalog: Catalog, change: Change) -> None:
    kind = change.kind
    if kind in (ChangeKind.NAMESPACE_CREATE, ChangeKind.NAMESPACE_RENAME):
        catalog.set_namespace(
            change.namespace_id, Namespace(change.namespace_id, change.account_id, change.title)
        )
    elif kind is ChangeKind.NAMESPACE_DELETE:
        catalog.set_namespace(change.namespace_id, None)
    elif kind is ChangeKind.TOKEN_PUT and change.token is not None:
        catalog.set_token(change.token.id, change.token)
    elif kind is ChangeKind.TOKEN_REVOKE and change.token is not None:
        catalog.set_token(change.token.id, None)
