"""Shared pieces of the store contract suite (fixtures in conftest.py): the engines and
engine-neutral peeks at what a store holds."""

from __future__ import annotations

from collections.abc import Callable

from kvcore.store.pg import PgStore
from kvcore.store.pg_schema import TABLES
from kvcore.store.rocks import RocksStore

AnyStore = RocksStore | PgStore
StoreOpener = Callable[..., AnyStore]
ENGINES = ("rocksdb", "postgresql")


def stored_bytes(store: AnyStore) -> list[tuple[str, bytes, bytes]]:
    """Every (table or column family, key, value) the engine holds, for tests that
    check what is (not) stored."""
    if isinstance(store, RocksStore):
        return [(cf.value, k, v) for cf, rd in store._cfs.items() for k, v in rd.items()]
    out: list[tuple[str, bytes, bytes]] = []
    with store._pool.connection() as conn:
        for table in TABLES.values():
            key = "seq::text::bytea" if table == "edgekv_change_log" else "k"
            for k, v in conn.execute(f"SELECT {key}, v FROM {table}"):  # type: ignore[call-overload]
                out.append((table, bytes(k), bytes(v)))
    return out


def entry_record(store: AnyStore, ekey: bytes) -> bytes | None:
    """The raw entry record under an entry key, expired or not (bypassing reads)."""
    tables = ("entries", "edgekv_entries")
    return next((v for t, k, v in stored_bytes(store) if t in tables and k == ekey), None)


ACCT = "acct1"  # the account of the `ns` fixture (conftest.py)


def all_keys(store: AnyStore, ns: str, prefix: str = "", limit: int = 1000) -> list[str]:
    """Every key name of `ns`, page by page."""
    out: list[str] = []
    cursor = ""
    while True:
        page = store.list_keys(ACCT, ns, prefix, limit, cursor)
        out.extend(k.name for k in page.keys)
        if not page.cursor:
            return out
        cursor = page.cursor
