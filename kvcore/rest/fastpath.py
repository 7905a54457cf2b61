"""The hot read: a repeat `GET .../values/{key}` of a value in a replica's edge cache,
answered before the router runs, and the response headers of every value read.

The first read of a key goes through the route table like any request (its endpoint
is `Handlers.get_value`); when the replica served it from its cache, the endpoint
remembers the request here: (raw path, Authorization header) -> (account, namespace,
key, token secret hash). A repeat of the same request skips the route match, the
header parsing and the hashing, and asks the backend's `cached_read`, which looks the
token up again every time (a revocation still takes effect at once) and counts the
read as the full path would. Whatever is not a cached repeat goes to the router.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol, cast

from kvcore.errors import KVError, ValidationError
from kvcore.model import Entry, ReadResult
from kvcore.rest.auth import secret_hash_of
from kvcore.rest.routing import raw_path

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_OCTET_STREAM: Final = (b"content-type", b"application/octet-stream")
_FROM_CACHE: Final = (b"x-edgekv-source", b"cache")
_MEMO_MAX: Final = 8192


class CachedReader(Protocol):
    """What a backend may offer the hot path (the replica does; central does not)."""

    def cached_read(
        self, secret_hash: str, account_id: str, namespace_id: str, key: str
    ) -> tuple[Entry, float] | None:
        """(entry, age in seconds) served from memory with no I/O, for a live token of
        `account_id`, counted as a read; or None, counting nothing (the full path runs)."""
        ...


def entry_headers(entry: Entry, region: bytes) -> Headers:
    """The headers of a value read that depend on the entry (and the region) alone."""
    return [
        _OCTET_STREAM,
        (b"etag", b'"%d"' % entry.version),
        (b"content-length", b"%d" % len(entry.value)),
        (b"x-edgekv-region", region),
    ]


def tail_headers(entry: Entry, age_s: float, source: bytes) -> Headers:
    tail: Headers = [(b"age", b"%d" % age_s), (b"x-edgekv-source", source)]
    if entry.expiration is not None:
        tail.append((b"expiration", b"%d" % entry.expiration))
    return tail


def value_headers(result: ReadResult, region: bytes) -> Headers:
    """All headers of a `GET .../values/{key}` that found `result`."""
    entry = result.entry
    return [*entry_headers(entry, region), *tail_headers(entry, result.age_s, result.source.encode())]


def raw_header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client gone before the end is a 400."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationError("body: the client went away before sending it whole")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class HotReads:
    """The memo of cached value reads and the answer to their repeats (see above)."""

    def __init__(self, reader: CachedReader, region: str) -> None:
        self._cached_read = reader.cached_read
        self._region = region.encode()
        self._memo: dict[tuple[bytes, bytes], tuple[str, str, str, str]] = {}
        # The last hot entry's entry-only headers: reused while the same entry object
        # is served, which is what a hot key is.
        self._entry: Entry | None = None
        self._headers: Headers = []

    @staticmethod
    def of(backend: object, region: str) -> HotReads | None:
        """The hot path of a backend that offers `cached_read`, else None."""
        return HotReads(cast(CachedReader, backend), region) if hasattr(backend, "cached_read") else None

    def remember(self, scope: Scope, target: tuple[str, str, str]) -> None:
        """Called by the value-read endpoint after a read served from the cache."""
        authorization = raw_header(scope, b"authorization")
        if authorization is None:
            return
        try:
            digest = secret_hash_of(authorization.decode("latin-1"))
        except KVError:
            return
        if len(self._memo) >= _MEMO_MAX:
            self._memo.clear()
        self._memo[(raw_path(scope), authorization)] = (*target, digest)

    def __contains__(self, request: tuple[bytes, bytes]) -> bool:
        return request in self._memo

    async def serve(self, scope: Scope, send: Send) -> bool:
        """Answer a repeat GET of a cached value; False (nothing sent, nothing counted)
        when the request is not one."""
        if scope["method"] != "GET" or scope.get("query_string"):
            return False
        memo = self._memo.get((raw_path(scope), raw_header(scope, b"authorization") or b""))
        hot = self._cached_read(memo[3], memo[0], memo[1], memo[2]) if memo is not None else None
        if hot is None:
            return False
        entry, age_s = hot
        if entry is not self._entry:
            self._headers = entry_headers(entry, self._region)
            self._entry = entry
        headers = [*self._headers, (b"age", b"%d" % age_s), _FROM_CACHE]
        if entry.expiration is not None:
            headers.append((b"expiration", b"%d" % entry.expiration))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": entry.value})
        return True
