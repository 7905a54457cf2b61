"""`kvcore.client` is a curated surface over private modules (as httpx's `__init__`):
this guards what it exports, so a rename inside cannot drop a public name."""

from __future__ import annotations

import pytest

import kvcore.client
from kvcore import errors

pytestmark = pytest.mark.timeout(10)

PUBLIC = {
    "AsyncKVNamespace",
    "BulkResult",
    "KVClient",
    "KVNamespace",
    "KeyInfo",
    "ListResult",
    "Namespace",
    "PreconditionFailed",
    "normalize_endpoint",
    "split_batches",
}


def test_all_is_the_curated_surface() -> None:
    assert set(kvcore.client.__all__) == PUBLIC
    assert len(kvcore.client.__all__) == len(PUBLIC)
    for name in kvcore.client.__all__:
        assert getattr(kvcore.client, name) is not None
    public_modules = {n for n in dir(kvcore.client) if not n.startswith("_") and n not in PUBLIC}
    assert public_modules <= {"admin", "binding", "bulkfile", "types", "annotations"}


def test_the_exported_exception_is_the_error_trees() -> None:
    assert kvcore.client.PreconditionFailed is errors.PreconditionFailed
    assert issubclass(kvcore.client.PreconditionFailed, errors.KVError)
    assert (errors.PreconditionFailed.http_status, errors.PreconditionFailed.code) == (412, 10030)
