"""Python clients of the edgekv REST API (the Cloudflare Workers KV API plus extensions).

- `KVNamespace` / `AsyncKVNamespace`: a binding shaped like the Workers KV runtime API,
  for application code, working against central or any region.
- `KVClient`: account-level operations (namespaces, key listing, bulk), used by
  `edgekv kv`.

Errors are the `kvcore.errors` classes the server raised, rebuilt from the Cloudflare
error envelope (code and HTTP status); an unreachable endpoint is `Unavailable`.

This module is the curated surface (`__all__`, guarded by a test). Behind it, private
modules: `_http` (requests and responses, no I/O), `_errors` (response -> error class,
derived from the tree), `_transport` (the sync and async httpx senders).
"""

from kvcore.client._http import normalize_endpoint
from kvcore.client.admin import KVClient, split_batches
from kvcore.client.binding import AsyncKVNamespace, KVNamespace
from kvcore.client.types import BulkResult, KeyInfo, ListResult, Namespace
from kvcore.errors import PreconditionFailed

__all__ = [
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
]
