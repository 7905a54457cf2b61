"""The store contract suite runs on both engines: every test that takes `store` or
`open_store` runs once on RocksDB (a temp dir) and once on PostgreSQL (a fresh database
on the session's throwaway server, tests/lib/helpers/postgres.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from store_support import ACCT, ENGINES, AnyStore, StoreOpener

from kvcore.clock import ManualClock
from kvcore.store.ops import CreateNamespaceOp
from kvcore.store.pg import PgStore
from kvcore.store.rocks import RocksStore


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_location(engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """Where this test's store lives: a RocksDB dir, or a postgresql:// URL (fresh schema)."""
    if engine == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return str(tmp_path / "db")


@pytest.fixture
def open_store(store_location: str) -> Iterator[StoreOpener]:
    """`open_store(**kw)` opens this test's store; calling it again reopens the same
    data (same dir or database). Maintenance is off unless `purge_interval_s` is given.
    RocksDB-only options (`sync`) are ignored on PostgreSQL."""
    opened: list[AnyStore] = []

    def make(**kw: Any) -> AnyStore:
        kw.setdefault("purge_interval_s", 3600)
        store: AnyStore
        if store_location.startswith("postgresql://"):
            kw.pop("sync", None)
            store = PgStore(store_location, poll_s=0.2, **kw)
        else:
            store = RocksStore(store_location, **kw)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(open_store: StoreOpener, clock: ManualClock) -> AnyStore:
    # A long purge interval: tests call purge_expired() themselves, so nothing races them.
    return open_store(clock=clock, sync=False)


@pytest.fixture
def ns(store: AnyStore) -> str:
    """A fresh namespace of account ACCT; its id."""
    return store.run(CreateNamespaceOp(ACCT, "main")).id
