"""The read rules, the stream applier and the own-write rules of `EdgeState`, fed domain
objects directly (no processes, no network)."""

from __future__ import annotations

import contextlib

import pytest

from kvcore.clock import ManualClock
from kvcore.errors import KeyNotFound, NamespaceNotFound
from kvcore.model import (
    BulkResult,
    Change,
    ChangeBatch,
    ChangeKind,
    Entry,
    Namespace,
    Permission,
    ReadResult,
    Snapshot,
    Token,
    WriteItem,
    WriteResult,
)
from kvcore.store.ops import BulkDeleteOp, BulkPutOp, DeleteOp, PutOp
from replica.edge import EdgeState, KeyRef, ReadThrough

ACC = "a" * 32
OTHER = "b" * 32
NS = "1" * 32
NS2 = "2" * 32
TOKEN = Token("t1", ACC, Permission.WRITE, "h" * 64, 1.0)


def make_edge(clock: ManualClock | None = None, **kw: object) -> EdgeState:
    clock = clock or ManualClock()
    args: dict[str, object] = {"cache_bytes": 1 << 20, "admit_threshold": 2}
    args.update(kw)
    edge = EdgeState(clock=clock, **args)  # type: ignore[arg-type]
    edge.apply_batch(
        ChangeBatch(
            [],
            safe_seq=1,
            committed_seq=1,
            snapshot=Snapshot([Namespace(NS, ACC, "one"), Namespace(NS2, ACC, "two")], [TOKEN]),
        )
    )
    return edge


def key_change(
    kind: ChangeKind, seq: int, key: str = "k", value: bytes | None = None, ns: str = NS
) -> Change:
    return Change(
        seq=seq,
        kind=kind,
        commit_time=1_700_000_000.0,
        namespace_id=ns,
        account_id=ACC,
        key=key,
        value=value,
        has_value=value is not None,
    )


def batch(*changes: Change, safe: int | None = None, reset: bool = False) -> ChangeBatch:
    top = max((c.seq for c in changes), default=0)
    return ChangeBatch(
        list(changes), safe_seq=safe if safe is not None else top, committed_seq=top, reset=reset
    )


def hot(edge: EdgeState, key: str = "k", ns: str = NS, reads: int = 3) -> None:
    for _ in range(reads):
        edge.cache.record_read((ns, key))


def read_through(edge: EdgeState, ref: KeyRef, got: Entry | None, as_of_seq: int) -> None:
    """Central answered a read of `ref` with `got` (None: not found) at `as_of_seq`."""
    with contextlib.suppress(KeyNotFound):
        edge.after_read_through(ReadThrough(ref), got, as_of_seq)


def entry(key: str, value: bytes, version: int) -> Entry:
    return Entry(key, value, None, None, version)


def cached_version(edge: EdgeState, key: str = "k", ns: str = NS) -> int | None:
    c = edge.lookup((ns, key))
    return c.entry.version if c else None


def test_snapshot_loads_namespaces_and_tokens() -> None:
    edge = make_edge()
    assert edge.directory.loaded
    assert edge.local_namespace(ACC, NS)
    assert not edge.local_namespace(ACC, "9" * 32)  # unknown: central decides
    with pytest.raises(NamespaceNotFound):
        edge.local_namespace(OTHER, NS)
    assert edge.directory.tokens.get(TOKEN.secret_hash) == TOKEN


def test_create_installs_value_of_a_hot_key_and_clears_negative() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    read_through(edge, ref, None, 5)
    assert ref in edge.negative
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 6, value=b"v")))
    assert ref not in edge.negative
    assert cached_version(edge) == 6


def test_create_of_a_cold_key_clears_negative_but_stays_uncached() -> None:
    edge = make_edge()
    ref = (NS, "k")
    read_through(edge, ref, None, 5)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 6, value=b"v")))
    assert ref not in edge.negative
    assert cached_version(edge) is None


def test_older_create_keeps_a_newer_negative() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    read_through(edge, ref, None, 9)  # read saw it missing at 9
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 6, value=b"v")))
    assert ref in edge.negative
    assert cached_version(edge) is None


def test_update_never_goes_back_c4() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    read_through(edge, ref, entry("k", b"new", 10), 10)
    assert cached_version(edge) == 10
    # A lazily flushed, older update (with or without its value) changes nothing.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 8, value=b"old")))
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 9)))
    edge.apply_batch(batch(key_change(ChangeKind.KEY_DELETE, 7)))
    c = edge.lookup(ref)
    assert c is not None and c.entry.value == b"new" and c.entry.version == 10
    # A newer one with its value replaces it; without, invalidates.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 11, value=b"newer")))
    c = edge.lookup(ref)
    assert c is not None and c.entry.value == b"newer" and c.entry.version == 11
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 12)))
    assert edge.lookup(ref) is None


def test_delete_invalidates_without_negative() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    read_through(edge, ref, entry("k", b"v", 3), 3)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_DELETE, 4)))
    assert edge.lookup(ref) is None
    assert ref not in edge.negative


def test_stale_delete_after_newer_create_keeps_the_value() -> None:
    edge = make_edge()
    hot(edge)
    # create 7 pushed at once; delete 6 of the same key was held and flushed after it.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 7, value=b"v7"), safe=5))
    edge.apply_batch(batch(key_change(ChangeKind.KEY_DELETE, 6), safe=7))
    assert cached_version(edge) == 7


def test_reset_drops_cache_and_negative_cache() -> None:
    edge = make_edge()
    hot(edge, "a")
    hot(edge, "b")
    read_through(edge, (NS, "a"), entry("a", b"1", 2), 2)
    read_through(edge, (NS, "b"), None, 2)
    assert len(edge.cache) == 1 and len(edge.negative) == 1
    snap = Snapshot([Namespace(NS, ACC, "one")], [TOKEN])
    edge.apply_batch(ChangeBatch([], safe_seq=100, committed_seq=100, reset=True, snapshot=snap))
    assert len(edge.cache) == 0 and len(edge.negative) == 0
    assert edge.cache.bytes_used == 0
    # A read taken before the reset point may not be installed after it.
    read_through(edge, (NS, "a"), entry("a", b"1", 2), 50)
    assert len(edge.cache) == 0
    read_through(edge, (NS, "a"), entry("a", b"1", 2), 100)
    assert len(edge.cache) == 1


def test_namespace_delete_drops_its_keys_only() -> None:
    edge = make_edge()
    for ns in (NS, NS2):
        hot(edge, "x", ns)
        read_through(edge, (ns, "x"), entry("x", b"1", 2), 2)
        read_through(edge, (ns, "gone"), None, 2)
    edge.apply_batch(batch(Change(seq=3, kind=ChangeKind.NAMESPACE_DELETE, commit_time=0, namespace_id=NS)))
    assert edge.lookup((NS, "x")) is None and (NS, "gone") not in edge.negative
    assert edge.lookup((NS2, "x")) is not None and (NS2, "gone") in edge.negative
    assert not edge.local_namespace(ACC, NS)
    # Nothing is installed for a namespace the replica does not know.
    hot(edge, "y")
    read_through(edge, (NS, "y"), entry("y", b"1", 4), 4)
    assert edge.lookup((NS, "y")) is None


def test_namespace_create_and_rename() -> None:
    edge = make_edge()
    ns3 = "3" * 32
    edge.apply_batch(
        batch(
            Change(seq=2, kind=ChangeKind.NAMESPACE_CREATE, commit_time=0, namespace_id=ns3, account_id=OTHER)
        )
    )
    assert edge.local_namespace(OTHER, ns3)
    with pytest.raises(NamespaceNotFound):
        edge.local_namespace(ACC, ns3)
    edge.apply_batch(
        batch(
            Change(
                seq=3,
                kind=ChangeKind.NAMESPACE_RENAME,
                commit_time=0,
                namespace_id=ns3,
                account_id=OTHER,
                title="new",
            )
        )
    )
    assert edge.directory.namespaces[ns3].title == "new"


def test_token_put_and_revoke_take_effect_at_once() -> None:
    edge = make_edge()
    t2 = Token("t2", ACC, Permission.READ, "f" * 64, 2.0)
    edge.apply_batch(batch(Change(seq=2, kind=ChangeKind.TOKEN_PUT, commit_time=0, token=t2)))
    assert edge.directory.tokens.get(t2.secret_hash) == t2
    edge.apply_batch(batch(Change(seq=3, kind=ChangeKind.TOKEN_REVOKE, commit_time=0, token=TOKEN)))
    assert edge.directory.tokens.get(TOKEN.secret_hash) is None
    assert edge.directory.tokens.get(t2.secret_hash) == t2
    # A revoke record may carry only the id.
    edge.apply_batch(
        batch(
            Change(
                seq=4,
                kind=ChangeKind.TOKEN_REVOKE,
                commit_time=0,
                token=Token("t2", ACC, Permission.READ, "", 0.0),
            )
        )
    )
    assert edge.directory.tokens.get(t2.secret_hash) is None


def test_read_through_race_guard() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    # The stream applied an update at 20 while a read-through at 15 was in flight.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 20)))
    read_through(edge, ref, entry("k", b"old", 12), 15)
    assert edge.lookup(ref) is None
    # Same for a negative answer racing a create.
    hot(edge, "n")
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 21, key="n")))
    read_through(edge, (NS, "n"), None, 16)
    assert (NS, "n") not in edge.negative
    # A read newer than every change is installed.
    read_through(edge, ref, entry("k", b"cur", 20), 22)
    assert cached_version(edge) == 20


def test_guard_forgets_safely() -> None:
    clock = ManualClock()
    edge = make_edge(clock, recent_window_s=10.0)
    hot(edge)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 20, key="other")))
    clock.advance(11)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 30, key="other2")))
    assert edge.recent.floor == 20  # "other" forgotten: its seq became the floor
    hot(edge)
    read_through(edge, (NS, "k"), entry("k", b"v", 5), 19)  # older than the floor
    assert cached_version(edge) is None
    read_through(edge, (NS, "k"), entry("k", b"v", 5), 31)
    assert cached_version(edge) == 5


def test_own_put_is_served_at_once_and_own_delete_negative() -> None:
    edge = make_edge()
    ref = (NS, "k")
    read_through(edge, ref, None, 3)
    edge.after_write(PutOp(ACC, NS, WriteItem("k", b"mine", '{"a":1}', None)), WriteResult(5, True, 0.0))
    c = edge.lookup(ref)
    assert c is not None and c.entry.value == b"mine" and c.entry.metadata_json == '{"a":1}'
    assert ref not in edge.negative
    # The stream echo of the same write, or an older change, changes nothing.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 5, value=b"mine")))
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 4)))
    assert cached_version(edge) == 5
    edge.after_write(DeleteOp(ACC, NS, "k"), WriteResult(6, False, 0.0))
    assert edge.lookup(ref) is None and ref in edge.negative
    # A read-through that started before the delete cannot bring the value back.
    read_through(edge, ref, entry("k", b"mine", 5), 5)
    assert edge.lookup(ref) is None and ref in edge.negative


def test_the_echo_of_a_put_in_flight_leaves_the_install_to_its_acknowledgement() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    edge.put_forwarded(ref)
    edge.put_forwarded(ref)  # two puts of one key in flight
    # Central pushes the create before it acknowledges the put: not offered to the cache.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 5, value=b"mine")))
    assert cached_version(edge) is None
    edge.put_answered(ref)
    edge.after_write(PutOp(ACC, NS, WriteItem("k", b"mine")), WriteResult(5, True, 0.0))
    assert cached_version(edge) == 5  # C3: the acknowledgement installed it
    edge.put_answered(ref)  # the second put failed (a 412, a timeout): nothing to apply
    assert edge.own_puts == {}
    # With no put in flight, a value the stream brings for a hot key is installed again.
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 7, value=b"theirs")))
    assert cached_version(edge) == 7


def test_a_put_never_acknowledged_here_leaves_the_key_to_central() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    edge.after_write(PutOp(ACC, NS, WriteItem("k", b"v1")), WriteResult(3, True, 0.0))
    edge.put_forwarded(ref)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 4, value=b"v2")))
    edge.put_answered(ref)  # its caller's deadline passed: no after_write
    assert cached_version(edge) is None  # v1 is not served after v2 committed (C4)


def test_own_put_loses_to_newer_change_seen_first() -> None:
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_UPDATE, 9, value=b"theirs")))
    edge.after_write(PutOp(ACC, NS, WriteItem("k", b"mine")), WriteResult(8, False, 0.0))
    c = edge.lookup(ref)
    assert c is not None and c.entry.value == b"theirs"


def test_own_bulk_writes() -> None:
    edge = make_edge()
    hot(edge, "a")
    read_through(edge, (NS, "a"), entry("a", b"1", 2), 2)
    read_through(edge, (NS, "b"), None, 2)
    edge.after_write(BulkPutOp(ACC, NS, [WriteItem("a", b"1"), WriteItem("b", b"2")]), BulkResult(2, [], 4))
    assert edge.lookup((NS, "a")) is None and (NS, "b") not in edge.negative
    edge.after_write(BulkDeleteOp(ACC, NS, ["a", "b", "c"]), BulkResult(2, ["c"], 7))
    assert (NS, "a") in edge.negative and (NS, "b") in edge.negative and (NS, "c") not in edge.negative


def test_expired_entries_are_missing() -> None:
    clock = ManualClock()
    edge = make_edge(clock)
    hot(edge)
    exp = int(clock.now()) + 60
    read_through(edge, (NS, "k"), Entry("k", b"v", None, exp, 3), 3)
    assert cached_version(edge) == 3
    clock.advance(61)
    assert edge.lookup((NS, "k")) is None
    assert len(edge.cache) == 0


def test_read_through_version_is_remembered_against_late_creates() -> None:
    """A read-through served version 12; a create (version 11) carrying its value that
    arrives afterwards must not be installed and served (C4)."""
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    edge.cache.invalidate(ref)  # hot, but not cached (evicted, say)
    read_through(edge, ref, Entry("k", b"v2", None, None, 12), 12)
    edge.cache.invalidate(ref)  # gone again: the guard, not the cached copy, must hold
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 11, value=b"v1")))
    cached = edge.lookup(ref)
    assert cached is None or cached.entry.version >= 12


def test_metadata_read_through_drops_an_older_cached_copy() -> None:
    """A strong or metadata-only read that saw version 12 leaves no version-11 copy to
    be served by the next plain read (C4)."""
    edge = make_edge()
    ref = (NS, "k")
    hot(edge)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 11, value=b"v11")))
    assert edge.lookup(ref) is not None and edge.lookup(ref).entry.version == 11  # type: ignore[union-attr]
    meta = Entry("k", b"", None, None, 12)  # a metadata-only answer: no value to install
    assert edge.after_read_through(ReadThrough(ref, metadata_only=True), meta, 12).entry.version == 12
    cached = edge.lookup(ref)
    assert cached is None or cached.entry.version >= 12


def test_reads_are_answered_locally_only_when_they_may_be() -> None:
    clock = ManualClock()
    edge = make_edge(clock)
    ref = (NS, "k")
    hot(edge)
    read_through(edge, ref, entry("k", b"v", 3), 3)
    clock.advance(4)
    assert edge.read_local((NS, "k"), ACC) == ReadResult(entry("k", b"v", 3), 4.0, "cache")
    # C5: a strong read goes to central, cached copy or not.
    assert edge.read_local((NS, "k"), ACC, strong=True) == ReadThrough(ref)
    # A namespace not known here: central decides; another account's: not found, uncounted.
    assert edge.read_local(("9" * 32, "k"), ACC) == ReadThrough(("9" * 32, "k"))
    with pytest.raises(NamespaceNotFound):
        edge.read_local((NS, "k"), OTHER)
    read_through(edge, (NS, "gone"), None, 3)
    with pytest.raises(KeyNotFound):
        edge.read_local((NS, "gone"), ACC)
    assert (edge.hits, edge.negative_hits, edge.misses) == (1, 1, 2)


def test_a_metadata_read_fetches_the_value_once_the_key_is_hot_enough_to_cache() -> None:
    edge = make_edge(admit_threshold=2)
    assert edge.read_local((NS, "k"), ACC, metadata_only=True) == ReadThrough((NS, "k"), metadata_only=True)
    assert edge.read_local((NS, "k"), ACC, metadata_only=True) == ReadThrough((NS, "k"), metadata_only=False)


def test_a_bulk_read_leaves_no_older_copy_to_serve_c4() -> None:
    edge = make_edge()
    hot(edge)
    edge.apply_batch(batch(key_change(ChangeKind.KEY_CREATE, 11, value=b"v11")))
    assert cached_version(edge) == 11
    edge.after_bulk_read(NS, ["k", "missing"], [entry("k", b"v12", 12), None])
    assert cached_version(edge) is None
    # What central served is remembered: an older copy read at seq 11 is not installed.
    read_through(edge, (NS, "k"), entry("k", b"v11", 11), 11)
    assert cached_version(edge) is None
