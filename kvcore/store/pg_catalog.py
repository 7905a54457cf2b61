"""`CatalogSync`: a central's catalog (namespaces, tokens) following the shared log.

Each central keeps namespaces and tokens in memory (catalog.py). Changes committed
through other centrals reach it through the log, applied in seq order by whichever
of the writer (under the counter lock, before a group decides anything: pg_engine.py)
and the follower (pg_follow.py) gets there first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

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
_CATALOG_SINCE = "SELECT seq, v FROM edgekv_change_log WHERE seq > %s AND kind = ANY(%s) ORDER BY seq"


class CatalogSync:
    """The catalog's position in the log, applied in seq order by whichever of the
    writer and the follower gets there first (under `lock`)."""

    def __init__(self, catalog: Catalog, seq: int) -> None:
        self.catalog = catalog
        self.seq = seq  # every namespace/token record <= seq is in the catalog
        self.lock = threading.Lock()

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
        if upto <= self.seq:
            return
        rows = conn.execute(
            "SELECT seq, v FROM edgekv_change_log WHERE seq > %s AND seq <= %s AND kind = ANY(%s)"
            " ORDER BY seq",
            (self.seq, upto, list(_CATALOG_KINDS)),
        ).fetchall()
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
