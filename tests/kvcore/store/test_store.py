"""Store entries on both engines (conftest.py): round trips, ordering, pagination, expiration,
bulk, conditions."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from store_support import ACCT, AnyStore, StoreOpener, all_keys

from kvcore import limits
from kvcore.clock import ManualClock
from kvcore.errors import (
    InternalError,
    NamespaceNotFound,
    PayloadTooLarge,
    PreconditionFailed,
    Unavailable,
    ValidationError,
)
from kvcore.model import ChangeKind, Condition, WriteItem, WriteResult
from kvcore.store.ops import BulkDeleteOp, BulkPutOp, CreateNamespaceOp, DeleteOp, GroupOp, PutOp


def utf8_len(s: str) -> int:
    return len(s.encode("utf-8"))


keys = st.text(st.characters(codec="utf-8"), min_size=1, max_size=512).filter(
    lambda k: utf8_len(k) <= 512 and k not in (".", "..")
)


# ---------------------------------------------------------------- round trips


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=keys, value=st.binary(max_size=4096), meta=st.none() | st.just('{"a":[1,"é"]}'))
def test_round_trip_arbitrary_keys_and_values(
    store: AnyStore, ns: str, key: str, value: bytes, meta: str | None
) -> None:
    result = store.run(PutOp(ACCT, ns, WriteItem(key, value, meta)))
    entry = store.get(ACCT, ns, key)
    assert entry is not None
    assert (entry.key, entry.value, entry.metadata_json, entry.expiration) == (key, value, meta, None)
    assert entry.version == result.seq
    [listed] = [k for k in all_keys(store, ns, key) if k == key]
    assert listed == key


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(keys, min_size=1, max_size=40, unique=True))
def test_listing_is_utf8_byte_order(store: AnyStore, names: list[str]) -> None:
    ns = store.run(CreateNamespaceOp(ACCT, f"t{store.committed_seq}")).id  # a fresh one per example
    store.run(BulkPutOp(ACCT, ns, [WriteItem(k, b"") for k in names]))
    assert all_keys(store, ns, limit=10) == sorted(names, key=lambda k: k.encode("utf-8"))


def test_non_ascii_ordering(store: AnyStore, ns: str) -> None:
    for k in ["😀", "中", "é", "z", "a", "Z"]:
        store.run(PutOp(ACCT, ns, WriteItem(k, k.encode())))
    assert all_keys(store, ns) == ["Z", "a", "z", "é", "中", "😀"]


def test_missing_key_and_foreign_namespace(store: AnyStore, ns: str) -> None:
    assert store.get(ACCT, ns, "nope") is None
    with pytest.raises(NamespaceNotFound):
        store.get("other", ns, "k")
    with pytest.raises(NamespaceNotFound):
        store.run(PutOp("other", ns, WriteItem("k", b"v")))
    with pytest.raises(NamespaceNotFound):
        store.get(ACCT, "0" * 32, "k")


def test_bulk_get(store: AnyStore, ns: str, clock: ManualClock) -> None:
    store.run(PutOp(ACCT, ns, WriteItem("a", b"1")))
    store.run(PutOp(ACCT, ns, WriteItem("b", b"2", expiration=int(clock.now()) + 60)))
    clock.advance(61)
    got = store.bulk_get(ACCT, ns, ["a", "b", "c"])
    assert [e.value if e else None for e in got] == [b"1", None, None]


# ---------------------------------------------------------------- pagination


@pytest.mark.parametrize("prefix", ["", "p/"])
def test_cursor_pagination_2500_keys(store: AnyStore, ns: str, prefix: str) -> None:
    wanted = [f"p/{i:05d}" for i in range(2500)]
    others = [f"q/{i:05d}" for i in range(300)]
    store.run(BulkPutOp(ACCT, ns, [WriteItem(k, b"v") for k in wanted + others]))
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        page = store.list_keys(ACCT, ns, prefix, 1000, cursor)
        pages += 1
        assert page.keys, "no empty pages when nothing is expired"
        seen.extend(k.name for k in page.keys)
        if not page.cursor:
            break
        cursor = page.cursor
    expected = wanted if prefix else wanted + others
    assert seen == expected
    assert pages == -(-len(expected) // 1000)


def test_cursor_only_when_more_remain(store: AnyStore, ns: str) -> None:
    store.run(BulkPutOp(ACCT, ns, [WriteItem(f"k{i:02d}", b"") for i in range(20)]))
    first = store.list_keys(ACCT, ns, "", 10, "")
    assert len(first.keys) == 10 and first.cursor
    second = store.list_keys(ACCT, ns, "", 10, first.cursor)
    assert [k.name for k in second.keys] == [f"k{i:02d}" for i in range(10, 20)]
    assert second.cursor == ""


def test_list_validation(store: AnyStore, ns: str) -> None:
    for bad in (9, 1001):
        with pytest.raises(ValidationError):
            store.list_keys(ACCT, ns, "", bad, "")
    for cursor in ("!!!", "a", "____"):
        with pytest.raises(ValidationError):
            store.list_keys(ACCT, ns, "", 10, cursor)


def test_list_metadata_and_expiration(store: AnyStore, ns: str, clock: ManualClock) -> None:
    exp = int(clock.now()) + 120
    store.run(PutOp(ACCT, ns, WriteItem("k", b"v", '{"x":1}', exp)))
    [info] = store.list_keys(ACCT, ns, "", 10, "").keys
    assert (info.name, info.expiration, info.metadata_json) == ("k", exp, '{"x":1}')


# ---------------------------------------------------------------- create/update/delete


def test_create_update_delete_kinds_and_versions(store: AnyStore, ns: str) -> None:
    r1 = store.run(PutOp(ACCT, ns, WriteItem("k", b"1")))
    r2 = store.run(PutOp(ACCT, ns, WriteItem("k", b"2")))
    assert r1.created and not r2.created and r2.seq == r1.seq + 1
    d = store.run(DeleteOp(ACCT, ns, "k"))
    assert d.seq == r2.seq + 1 and not d.created
    assert store.get(ACCT, ns, "k") is None
    kinds = [c.kind for c in store.changes_since(r1.seq - 1)]
    assert kinds == [ChangeKind.KEY_CREATE, ChangeKind.KEY_UPDATE, ChangeKind.KEY_DELETE]
    assert store.run(PutOp(ACCT, ns, WriteItem("k", b"3"))).created


def test_put_replaces_metadata_and_expiration(store: AnyStore, ns: str, clock: ManualClock) -> None:
    store.run(PutOp(ACCT, ns, WriteItem("k", b"1", '{"a":1}', int(clock.now()) + 60)))
    store.run(PutOp(ACCT, ns, WriteItem("k", b"2")))
    entry = store.get(ACCT, ns, "k")
    assert entry is not None and entry.metadata_json is None and entry.expiration is None
    clock.advance(3600)
    assert store.purge_expired() == 0
    assert store.get(ACCT, ns, "k") is not None


# ---------------------------------------------------------------- conditions


def test_conditional_writes(store: AnyStore, ns: str) -> None:
    with pytest.raises(PreconditionFailed):
        store.run(PutOp(ACCT, ns, WriteItem("k", b"x"), Condition(if_match=1)))
    r1 = store.run(PutOp(ACCT, ns, WriteItem("k", b"1"), Condition(if_none_match=True)))
    assert r1.created
    with pytest.raises(PreconditionFailed):
        store.run(PutOp(ACCT, ns, WriteItem("k", b"x"), Condition(if_none_match=True)))
    with pytest.raises(PreconditionFailed):
        store.run(PutOp(ACCT, ns, WriteItem("k", b"x"), Condition(if_match=r1.seq + 100)))
    seq = store.committed_seq
    r2 = store.run(PutOp(ACCT, ns, WriteItem("k", b"2"), Condition(if_match=r1.seq)))
    assert r2.seq == seq + 1, "failed conditions consumed no seq"
    with pytest.raises(PreconditionFailed):
        store.run(DeleteOp(ACCT, ns, "k", Condition(if_match=r1.seq)))
    assert store.run(DeleteOp(ACCT, ns, "k", Condition(if_match=r2.seq))).seq == r2.seq + 1
    entry = store.get(ACCT, ns, "k")
    assert entry is None


async def test_conditions_race_within_one_group(store: AnyStore, ns: str) -> None:
    import asyncio

    once = Condition(if_none_match=True)
    puts = [store.submit(PutOp(ACCT, ns, WriteItem("once", b"%d" % i), once)) for i in range(50)]
    results = await asyncio.gather(*puts, return_exceptions=True)
    wins = [r for r in results if not isinstance(r, BaseException)]
    assert len(wins) == 1 and wins[0].created
    assert all(isinstance(r, PreconditionFailed) for r in results if isinstance(r, BaseException))


# ---------------------------------------------------------------- bulk


def test_bulk_put_one_invalid_item_writes_nothing(store: AnyStore, ns: str, clock: ManualClock) -> None:
    seq = store.committed_seq
    # Refused where a write enters (the REST app, central's gRPC servicers), before an
    # operation exists: the check is kvcore.limits' (tests/central/test_write_validation.py
    # sends these through a real central).
    now = clock.now()
    with pytest.raises(ValidationError, match=r"^\[10\]\.key: UTF-8 encoded length of 513"):
        limits.validate_write_item(WriteItem("x" * 513, b"v"), now, "[10].")
    with pytest.raises(PayloadTooLarge, match=r"^\[1\]\.metadata: "):
        limits.validate_write_item(WriteItem("b", b"v", "x" * 1100), now, "[1].")
    with pytest.raises(ValidationError):
        limits.validate_key("..", "body[1]")
    # A bulk is one operation: an item that fails as it is applied (a key that cannot be
    # encoded, which the edges refuse) drops every item of it, put or delete.
    items = [WriteItem(f"k{i}", b"v") for i in range(10)] + [WriteItem("\ud800", b"v")]
    with pytest.raises(InternalError):
        store.run(BulkPutOp(ACCT, ns, items))
    store.run(PutOp(ACCT, ns, WriteItem("a", b"v")))
    with pytest.raises(InternalError):
        store.run(BulkDeleteOp(ACCT, ns, ["a", "\ud800"]))
    assert store.committed_seq == seq + 1
    assert [c.key for c in store.changes_since(seq)] == ["a"]
    assert all_keys(store, ns) == ["a"]
    store.run(DeleteOp(ACCT, ns, "a"))
    assert all_keys(store, ns) == []


def test_bulk_put_each_item_logged_last_wins(store: AnyStore, ns: str) -> None:
    store.run(PutOp(ACCT, ns, WriteItem("old", b"0")))
    seq = store.committed_seq
    result = store.run(
        BulkPutOp(
            ACCT,
            ns,
            [WriteItem("a", b"1"), WriteItem("old", b"1"), WriteItem("a", b"2"), WriteItem("b", b"3")],
        )
    )
    assert (result.successful_key_count, result.unsuccessful_keys, result.seq) == (4, [], seq + 4)
    changes = store.changes_since(seq)
    assert [(c.seq, c.kind, c.key) for c in changes] == [
        (seq + 1, ChangeKind.KEY_CREATE, "a"),
        (seq + 2, ChangeKind.KEY_UPDATE, "old"),
        (seq + 3, ChangeKind.KEY_UPDATE, "a"),
        (seq + 4, ChangeKind.KEY_CREATE, "b"),
    ]
    entry = store.get(ACCT, ns, "a")
    assert entry is not None and entry.value == b"2" and entry.version == seq + 3


def test_bulk_delete(store: AnyStore, ns: str) -> None:
    store.run(BulkPutOp(ACCT, ns, [WriteItem(k, b"") for k in "abc"]))
    seq = store.committed_seq
    result = store.run(BulkDeleteOp(ACCT, ns, ["a", "missing", "c"]))
    assert (result.successful_key_count, result.seq) == (3, seq + 2)
    assert [c.key for c in store.changes_since(seq)] == ["a", "c"]
    assert all_keys(store, ns) == ["b"]
    assert store.run(BulkDeleteOp(ACCT, ns, ["zzz"])).seq == 0


async def test_async_bulk_and_delete(store: AnyStore, ns: str) -> None:
    r = await store.submit(BulkPutOp(ACCT, ns, [WriteItem("a", b"1"), WriteItem("b", b"2")]))
    assert r.successful_key_count == 2
    assert (await store.submit(DeleteOp(ACCT, ns, "a"))).seq == r.seq + 1
    assert (await store.submit(BulkDeleteOp(ACCT, ns, ["b"]))).seq == r.seq + 2
    assert all_keys(store, ns) == []


def test_group_failure_is_isolated(open_store: StoreOpener) -> None:
    """Many threads, some ops failing their condition: the rest of each group commits."""
    from concurrent.futures import ThreadPoolExecutor

    with open_store() as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        s.run(PutOp(ACCT, ns, WriteItem("taken", b"")))

        def work(i: int) -> str:
            try:
                cond = Condition(if_none_match=True)
                s.run(PutOp(ACCT, ns, WriteItem("taken" if i % 2 else f"k{i}", b"v"), cond))
                return "ok"
            except PreconditionFailed:
                return "failed"

        with ThreadPoolExecutor(32) as pool:
            outcomes = list(pool.map(work, range(200)))
        assert outcomes.count("failed") == 100
        assert len(all_keys(s, ns)) == 101
        changes = s.changes_since(0)
        assert [c.seq for c in changes] == list(range(1, s.committed_seq + 1))


def test_reads_survive_reopen(open_store: StoreOpener) -> None:
    with open_store() as s:
        ns = s.run(CreateNamespaceOp(ACCT, "t")).id
        s.run(PutOp(ACCT, ns, WriteItem("k", b"\x00\xff", '"m"', 2_000_000_000)))
    with open_store() as s:
        entry = s.get(ACCT, ns, "k")
        assert entry is not None
        assert (entry.value, entry.metadata_json, entry.expiration, entry.version) == (
            b"\x00\xff",
            '"m"',
            2_000_000_000,
            2,
        )


def test_closed_store_rejects_writes(open_store: StoreOpener) -> None:
    s = open_store()
    s.close()
    s.close()  # idempotent
    with pytest.raises(Exception):  # noqa: B017 - any error, never a hang
        s.run(CreateNamespaceOp(ACCT, "t"))


def test_fresh_store_smoke(open_store: StoreOpener) -> None:
    with open_store() as s:
        assert s.committed_seq == 0 and s.oldest_retained_seq == 1


def test_scan_budget_returns_short_pages_with_cursor(
    store: AnyStore, ns: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kvcore.store import scan

    monkeypatch.setattr(scan, "LIST_SCAN_BUDGET", 10)
    exp = int(clock.now()) + 60
    store.run(BulkPutOp(ACCT, ns, [WriteItem(f"a{i:02d}", b"", expiration=exp) for i in range(35)]))
    store.run(BulkPutOp(ACCT, ns, [WriteItem(f"b{i}", b"") for i in range(5)]))
    clock.advance(61)
    first = store.list_keys(ACCT, ns, "", 10, "")
    assert first.keys == [] and first.cursor, "an empty page still carries a cursor when keys remain"
    assert all_keys(store, ns, limit=10) == [f"b{i}" for i in range(5)]


def test_defensive_input_checks(store: AnyStore, ns: str, clock: ManualClock) -> None:
    with pytest.raises(ValidationError):
        store.list_keys(ACCT, ns, "\ud800", 10, "")
    # A written item is checked where it enters (kvcore.limits.validate_write_item at
    # central's gRPC edge; the REST app's parsing), not again by the store.
    with pytest.raises(ValidationError):
        limits.validate_write_item(WriteItem("k", b"v", expiration=1.5), clock.now())  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        limits.validate_write_item(WriteItem("", b"v"), clock.now())
    with pytest.raises(ValidationError):
        store.get(ACCT, ns, "x" * 513)
    assert store.committed_seq == 1


async def test_coroutine_reads_match_the_sync_ones(store: AnyStore, ns: str) -> None:
    store.run(PutOp(ACCT, ns, WriteItem("a", b"1", '{"m":1}')))
    store.run(PutOp(ACCT, ns, WriteItem("b", b"2")))
    assert await store.read(store.get, ACCT, ns, "a") == store.get(ACCT, ns, "a")
    assert await store.read(store.get, ACCT, ns, "zz") is None
    assert await store.read(store.bulk_get, ACCT, ns, ["b", "zz", "a"]) == store.bulk_get(
        ACCT, ns, ["b", "zz", "a"]
    )
    assert await store.read(store.list_keys, ACCT, ns, "", 10, "") == store.list_keys(ACCT, ns, "", 10, "")
    with pytest.raises(NamespaceNotFound):
        await store.read(store.get, "other", ns, "a")


async def test_write_many_commits_each_write_alone(store: AnyStore, ns: str) -> None:
    """A replica's streamed point writes: one group, each write kept or failed alone."""
    store.run(PutOp(ACCT, ns, WriteItem("taken", b"")))
    results = await store.submit(
        GroupOp(
            [
                PutOp(ACCT, ns, WriteItem("a", b"1")),
                PutOp(ACCT, ns, WriteItem("taken", b"x"), Condition(if_none_match=True)),
                DeleteOp(ACCT, ns, "a"),
                PutOp(ACCT, "0" * 32, WriteItem("x", b"")),
            ]
        )
    )
    assert isinstance(results[1], PreconditionFailed) and isinstance(results[3], NamespaceNotFound)
    first, deleted = results[0], results[2]
    assert isinstance(first, WriteResult) and isinstance(deleted, WriteResult)
    assert first.created and deleted.seq == first.seq + 1
    assert store.get(ACCT, ns, "a") is None
    assert [c.key for c in store.changes_since(first.seq - 1)] == ["a", "a"]


async def test_a_group_member_past_its_deadline_is_withdrawn(
    store: AnyStore, ns: str, clock: ManualClock
) -> None:
    """A streamed write whose deadline (the store's wall clock) has passed when the
    writer reaches it fails with Unavailable and is not applied; the others commit."""
    now = clock.now()
    results = await store.submit(
        GroupOp(
            [PutOp(ACCT, ns, WriteItem("late", b"1")), PutOp(ACCT, ns, WriteItem("in-time", b"2"))],
            [now - 1.0, now + 60.0],
        )
    )
    assert isinstance(results[0], Unavailable) and "in time" in results[0].message
    assert isinstance(results[1], WriteResult) and results[1].created
    assert store.get(ACCT, ns, "late") is None
    assert store.get(ACCT, ns, "in-time") is not None
    assert [c.key for c in store.changes_since(results[1].seq - 1)] == ["in-time"]
