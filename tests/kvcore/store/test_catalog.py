"""Store namespaces and tokens, on both engines (conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import re

import pytest
from helpers.tokens import create_token
from store_support import AnyStore, StoreOpener, entry_record, stored_bytes

from kvcore import limits
from kvcore.errors import DuplicateTitle, NamespaceNotFound, TooManyNamespaces, ValidationError
from kvcore.model import ChangeKind, Permission, WriteItem
from kvcore.store.ops import (
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    PutOp,
    RenameNamespaceOp,
    RevokeTokenOp,
)

A, B = "acct-a", "acct-b"


# ---------------------------------------------------------------- namespaces


def test_create_and_get(store: AnyStore) -> None:
    ns = store.run(CreateNamespaceOp(A, "First"))
    assert re.fullmatch(r"[0-9a-f]{32}", ns.id)
    assert (ns.account_id, ns.title) == (A, "First")
    assert store.get_namespace(A, ns.id) == ns
    [change] = store.changes_since(0)
    assert (change.kind, change.namespace_id, change.account_id, change.title) == (
        ChangeKind.NAMESPACE_CREATE,
        ns.id,
        A,
        "First",
    )


def test_duplicate_title_per_account(store: AnyStore) -> None:
    store.run(CreateNamespaceOp(A, "t"))
    with pytest.raises(DuplicateTitle):
        store.run(CreateNamespaceOp(A, "t"))
    store.run(CreateNamespaceOp(B, "t"))  # titles are unique per account only
    # A title and an account id are checked where they enter (the REST app, central's
    # gRPC CreateNamespace: tests/central/test_write_validation.py), with these:
    with pytest.raises(ValidationError):
        limits.validate_title("   ")
    with pytest.raises(ValidationError):
        limits.validate_account_id("bad\x00acct")


async def test_duplicate_title_in_one_group(store: AnyStore) -> None:
    creates = [store.submit(CreateNamespaceOp(A, "same")) for _ in range(20)]
    results = await asyncio.gather(*creates, return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert sum(isinstance(r, DuplicateTitle) for r in results) == 19


def test_account_isolation(store: AnyStore) -> None:
    ns = store.run(CreateNamespaceOp(A, "t"))
    store.run(PutOp(A, ns.id, WriteItem("k", b"v")))
    for call in (
        lambda: store.get_namespace(B, ns.id),
        lambda: store.run(RenameNamespaceOp(B, ns.id, "x")),
        lambda: store.run(DeleteNamespaceOp(B, ns.id)),
        lambda: store.get(B, ns.id, "k"),
        lambda: store.list_keys(B, ns.id, "", 10, ""),
        lambda: store.run(BulkPutOp(B, ns.id, [WriteItem("k", b"")])),
        lambda: store.get_namespace(A, "not-hex"),
    ):
        with pytest.raises(NamespaceNotFound):
            call()
    assert store.list_namespaces(B, 1, 20, "id", "asc") == ([], 0)


def test_rename(store: AnyStore) -> None:
    one = store.run(CreateNamespaceOp(A, "one"))
    two = store.run(CreateNamespaceOp(A, "two"))
    with pytest.raises(DuplicateTitle):
        store.run(RenameNamespaceOp(A, one.id, "two"))
    assert store.run(RenameNamespaceOp(A, one.id, "one")) == one  # its own title is fine
    renamed = store.run(RenameNamespaceOp(A, one.id, "uno"))
    assert renamed.title == "uno" and store.get_namespace(A, one.id).title == "uno"
    store.run(CreateNamespaceOp(A, "one"))  # the old title is free again
    with pytest.raises(DuplicateTitle):
        store.run(CreateNamespaceOp(A, "uno"))
    store.run(RenameNamespaceOp(A, two.id, "dos"))
    kinds = [c.kind for c in store.changes_since(0)]
    assert kinds.count(ChangeKind.NAMESPACE_RENAME) == 2


async def test_async_rename_and_delete(store: AnyStore) -> None:
    ns = await store.submit(CreateNamespaceOp(A, "t"))
    assert (await store.submit(RenameNamespaceOp(A, ns.id, "u"))).title == "u"
    await store.submit(DeleteNamespaceOp(A, ns.id))
    with pytest.raises(NamespaceNotFound):
        store.get_namespace(A, ns.id)


def test_delete_removes_keys_and_title(store: AnyStore) -> None:
    ns = store.run(CreateNamespaceOp(A, "t"))
    keep = store.run(CreateNamespaceOp(A, "keep"))
    store.run(BulkPutOp(A, ns.id, [WriteItem(f"k{i}", b"v") for i in range(100)]))
    store.run(PutOp(A, keep.id, WriteItem("k1", b"kept")))
    store.run(DeleteNamespaceOp(A, ns.id))
    with pytest.raises(NamespaceNotFound):
        store.get(A, ns.id, "k1")
    with pytest.raises(NamespaceNotFound):
        store.run(DeleteNamespaceOp(A, ns.id))
    assert entry_record(store, bytes.fromhex(ns.id) + b"k1") is None
    entry = store.get(A, keep.id, "k1")
    assert entry is not None and entry.value == b"kept"
    again = store.run(CreateNamespaceOp(A, "t"))  # title reusable
    assert store.list_keys(A, again.id, "", 1000, "").keys == []
    last = store.changes_since(0)[-2]
    assert (last.kind, last.namespace_id, last.title) == (ChangeKind.NAMESPACE_DELETE, ns.id, "t")


async def test_put_and_delete_namespace_in_one_group(store: AnyStore) -> None:
    ns = store.run(CreateNamespaceOp(A, "t"))
    put = store.submit(PutOp(A, ns.id, WriteItem("k", b"v")))
    delete = store.submit(DeleteNamespaceOp(A, ns.id))
    late = store.submit(PutOp(A, ns.id, WriteItem("k2", b"v")))
    # Queued in this order, so the writer sees: put ok, delete ok, late put -> not found.
    results = await asyncio.gather(put, delete, late, return_exceptions=True)
    assert results[0].created and results[1] is None  # type: ignore[union-attr]
    assert isinstance(results[2], NamespaceNotFound)
    assert entry_record(store, bytes.fromhex(ns.id) + b"k") is None


def test_list_paging_order_direction(store: AnyStore) -> None:
    titles = ["delta", "alpha", "Charlie", "bravo", "écho"]
    created = [store.run(CreateNamespaceOp(A, t)) for t in titles]
    store.run(CreateNamespaceOp(B, "other"))

    page, total = store.list_namespaces(A, 1, 20, "title", "asc")
    assert total == 5
    assert [n.title for n in page] == ["Charlie", "alpha", "bravo", "delta", "écho"]
    page, _ = store.list_namespaces(A, 1, 20, "title", "desc")
    assert [n.title for n in page] == ["écho", "delta", "bravo", "alpha", "Charlie"]
    page, _ = store.list_namespaces(A, 1, 20, "id", "asc")
    assert [n.id for n in page] == sorted(n.id for n in created)

    p1, t1 = store.list_namespaces(A, 1, 2, "title", "asc")
    p2, _ = store.list_namespaces(A, 2, 2, "title", "asc")
    p3, _ = store.list_namespaces(A, 3, 2, "title", "asc")
    p4, _ = store.list_namespaces(A, 4, 2, "title", "asc")
    assert t1 == 5
    assert [n.title for n in p1 + p2 + p3] == ["Charlie", "alpha", "bravo", "delta", "écho"]
    assert p4 == []
    for bad in [(0, 20, "id", "asc"), (1, 0, "id", "asc"), (1, 20, "name", "asc"), (1, 20, "id", "up")]:
        with pytest.raises(ValidationError):
            store.list_namespaces(A, *bad)
    assert {n.id for n in store.all_namespaces()} >= {n.id for n in created}


def test_namespace_limit(store: AnyStore) -> None:
    # Drive the writer in one group per 200 so the limit holds inside groups too.
    async def fill() -> None:
        for start in range(0, 1000, 200):
            await asyncio.gather(
                *(store.submit(CreateNamespaceOp(A, f"n{i}")) for i in range(start, start + 200))
            )

    asyncio.run(fill())
    with pytest.raises(TooManyNamespaces):
        store.run(CreateNamespaceOp(A, "one-too-many"))
    store.run(CreateNamespaceOp(B, "fine"))
    victim = store.list_namespaces(A, 1, 1, "title", "asc")[0][0]
    store.run(DeleteNamespaceOp(A, victim.id))
    store.run(CreateNamespaceOp(A, "fits-again"))


def test_namespaces_survive_reopen(open_store: StoreOpener) -> None:
    with open_store() as s:
        ns = s.run(CreateNamespaceOp(A, "t"))
        s.run(RenameNamespaceOp(A, ns.id, "u"))
        gone = s.run(CreateNamespaceOp(A, "gone"))
        s.run(DeleteNamespaceOp(A, gone.id))
    with open_store() as s:
        assert s.all_namespaces() == [ns.__class__(ns.id, A, "u")]
        with pytest.raises(DuplicateTitle):
            s.run(CreateNamespaceOp(A, "u"))
        s.run(CreateNamespaceOp(A, "gone"))


# ---------------------------------------------------------------- tokens


def test_create_token_stores_only_the_hash(store: AnyStore) -> None:
    token, secret = create_token(store, A, Permission.WRITE)
    assert len(secret) >= 40 and re.fullmatch(r"[0-9a-f]{32}", token.id)
    assert token.secret_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert store.token_by_hash(token.secret_hash) == token
    assert store.token_by_hash(hashlib.sha256(b"nope").hexdigest()) is None
    assert not any(secret.encode() in k + v for _, k, v in stored_bytes(store))
    [change] = store.changes_since(0)
    assert change.kind is ChangeKind.TOKEN_PUT and change.token == token and change.account_id == A


def test_token_with_given_secret_list_and_revoke(open_store: StoreOpener) -> None:
    with open_store() as s:
        t1, secret = create_token(s, A, Permission.READ, secret="dev-secret-0123456789")
        assert secret == "dev-secret-0123456789"
        t2, _ = create_token(s, B, Permission.WRITE)
        assert s.list_tokens(A) == [t1]
        assert {t.id for t in s.list_tokens()} == {t1.id, t2.id}
        with pytest.raises(ValidationError):
            s.run(RevokeTokenOp("0" * 32))
        with pytest.raises(ValidationError):
            create_token(s, A, "admin")  # type: ignore[arg-type]
    with open_store() as s:
        assert s.token_by_hash(t1.secret_hash) == t1
        s.run(RevokeTokenOp(t1.id))
        assert s.token_by_hash(t1.secret_hash) is None
        assert s.list_tokens(A) == []
        change = s.changes_since(0)[-1]
        assert change.kind is ChangeKind.TOKEN_REVOKE and change.token == t1
    with open_store() as s:
        assert s.token_by_hash(t1.secret_hash) is None
        assert s.token_by_hash(t2.secret_hash) == t2


def test_shared_secret_survives_revoking_one(store: AnyStore) -> None:
    t1, _ = create_token(store, A, Permission.READ, secret="same-secret-0123456789")
    t2, _ = create_token(store, A, Permission.READ, secret="same-secret-0123456789")
    store.run(RevokeTokenOp(t2.id))
    assert store.token_by_hash(t1.secret_hash) == t1


def test_chosen_secret_has_a_minimum_length(store: AnyStore) -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        create_token(store, A, Permission.READ, secret="short")
