"""Python clients of the edgekv REST API (the Cloudflare Workers KV API plus extensions).

- `KVNamespace` / `AsyncKVNamespace`: a binding shaped like the Workers KV runtime API,
  for application code, working against central or any region.
- `KVClient`: account-level operations (namespaces, key listing, bulk), used by
  `edgekv kv`.

Errors are the `kvcore.errors` classes the server raised, rebuilt from the Cloudflare
error envelope (code and HTTP status); an unreachable endpoint is `Unavailable`.
"""

from kvcore.client._wire import normalize_endpoint
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
