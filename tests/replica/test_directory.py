"""`Directory`: the namespaces and tokens a replica knows from the stream, and what it
answers with them while central is away (C7)."""

from __future__ import annotations

import pytest

from kvcore.errors import NamespaceNotFound, ValidationError
from kvcore.model import Change, ChangeKind, Namespace, Snapshot
from replica.directory import Directory

ACC, OTHER = "a" * 32, "b" * 32


def test_nothing_is_known_before_the_first_snapshot() -> None:
    d = Directory()
    assert not d.loaded and not d.owns(ACC, "1" * 32)
    assert d.listing(ACC, 1, 20, "id", "asc") is None
    d.apply(
        Change(seq=1, kind=ChangeKind.NAMESPACE_CREATE, commit_time=0, namespace_id="1" * 32, account_id=ACC)
    )
    assert d.namespace(ACC, "1" * 32) is None  # a change before the snapshot is not a snapshot


def test_the_local_listing_pages_and_orders_like_central() -> None:
    d = Directory()
    spaces = [Namespace(f"{i}" * 32, ACC, t) for i, t in enumerate(["b", "c", "a"], start=1)]
    assert d.load(Snapshot([*spaces, Namespace("9" * 32, OTHER, "z")], [])) == set()
    assert d.listing(ACC, 1, 2, "title", "asc") == ([spaces[2], spaces[0]], 3)
    assert d.listing(ACC, 2, 2, "title", "asc") == ([spaces[1]], 3)
    assert d.listing(ACC, 1, 5, "id", "desc") == ([spaces[2], spaces[1], spaces[0]], 3)
    with pytest.raises(ValidationError):
        d.listing(ACC, 0, 2, "title", "asc")
    assert d.namespace(ACC, "1" * 32) == spaces[0]
    assert d.namespace(OTHER, "1" * 32) is None
    with pytest.raises(NamespaceNotFound):
        d.owns(OTHER, "1" * 32)
    # A new snapshot reports what is gone, so the edge drops those keys.
    assert d.load(Snapshot(spaces[:1], [])) == {"2" * 32, "3" * 32, "9" * 32}
