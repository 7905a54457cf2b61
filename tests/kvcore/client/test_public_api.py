"""`kvcore.client` is a curated surface over private modules (as httpx's `__init__`):
this guards what it exports, so a rename inside cannot drop a public name."""

from __future__ import annotations

import pytest

import kvcore.client
from kvcore import errors

pytestmark = pytest.mark.timeout(10)

# What application code imports today (examples/, the README): none of it may go.
PUBLIC = {"AsyncKVNamespace", "KVNamespace", "KVClient", "PreconditionFailed", "normalize_endpoint"}
PUBLIC |= {"BulkResult", "KeyInfo", "ListResult", "Namespace", "split_batches"}


def test_all_is_the_curated_surface() -> None:
    assert set(kvcore.client.__all__) == PUBLIC
    # As httpx's test: __all__ is sorted and is exactly what the package binds publicly
    # (its submodules aside), so nothing is exported by accident or left out of __all__.
    assert kvcore.client.__all__ == sorted(kvcore.client.__all__)
    modules = {"admin", "binding", "bulkfile", "types", "annotations"}
    bound = {name for name in vars(kvcore.client) if not name.startswith("_")} - modules
    assert bound == set(kvcore.client.__all__)


def test_the_exported_exception_is_the_error_trees() -> None:
    assert kvcore.client.PreconditionFailed is errors.PreconditionFailed
    assert issubclass(kvcore.client.PreconditionFailed, errors.KVError)
    assert (errors.PreconditionFailed.http_status, errors.PreconditionFailed.code) == (412, 10030)
