"""The hot read: a repeat `GET .../values/{key}` of a value in a replica's edge cache,
answered before the router runs, and the response headers of every value read.

The first read of a key goes through the route table like any request (its endpoint
is `Handlers.get_value`); when the replica served it from its cache, the endpoint
remembers the request here: (raw path, Authorization header) -> (decoded path, account,
namespace, key, token secret hash); a repeat must match the decoded path too, so it is
routed exactly as the first. A repeat of the same request skips the route match, the
header parsing and the hashing, and asks the backend's `cached_read`, which looks the
token up again every time (a revocation still takes effect at once) and counts the
read as the full path would. Whatever is not a cached repeat goes to the router.

A repeat is answered in one of two shapes: the two ASGI messages (`answer`, for any
ASGI server) or the HTTP/1.1 response as bytes (`write_response`, to the socket, for
`kvcore.serving`'s protocol, before uvicorn starts an ASGI task).
Both come from the same headers, so the bytes are the ones uvicorn would have written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol, cast

from kvcore.errors import KVError, ValidationError
from kvcore.model import Entry, ReadResult
from kvcore.rest.auth import secret_hash_of

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
HotResponse = Callable[[Scope, Callable[[bytes], object]], bool]
"""(ASGI scope, a transport's `write`) -> whether it answered: `RestApp.hot_response`,
which `kvcore.serving.HotReadProtocol` calls."""

_OCTET_STREAM: Final = (b"content-type", b"application/octet-stream")
_MEMO_MAX: Final = 8192
_STATUS_200: Final = b"HTTP/1.1 200 OK\r\n"
JOIN_MAX_BYTES: Final = 64 * 1024
"""Values up to this size go out in one write with their headers (one copy, one
syscall); larger ones are written after the headers as they are (no copy)."""


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
        # (request's raw path, Authorization) -> (its path, account, namespace, key,
        # token secret hash). Keyed by the path as received and checked against the
        # decoded one, so a hit is a request the table would route exactly as the one
        # remembered (`routing.raw_path` is a function of both) without calling it.
        self._memo: dict[tuple[bytes, bytes], tuple[str, str, str, str, str]] = {}
        # The last answer's headers, reused while the same entry object (a hot key) is
        # served at the same whole age: [age_lo_s, age_hi_s) is the age range they hold for.
        # Each answer sends a copy (a server or middleware may keep or change its list).
        self._entry: Entry | None = None
        self._entry_headers: Headers = []
        self._headers: Headers = []
        self._head: bytes | None = None  # `_headers` as bytes, built on first use
        self._age_lo_s = self._age_hi_s = 0.0

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
        path: str = scope["path"]
        raw = scope.get("raw_path")
        self._memo[(path.encode() if raw is None else raw, authorization)] = (path, *target, digest)

    def __contains__(self, request: tuple[bytes, bytes]) -> bool:
        """Whether (raw path as received, Authorization header) is remembered."""
        return request in self._memo

    def answer(self, scope: Scope) -> tuple[Message, Message] | None:
        """The two ASGI messages (start, body) answering a repeat GET of a cached value,
        the read counted by `cached_read`; None (nothing counted) when the request is
        not one. Synchronous: the caller sends them, so no coroutine per request."""
        entry = self._find(scope)
        if entry is None:
            return None
        return (
            {"type": "http.response.start", "status": 200, "headers": [*self._headers]},
            {"type": "http.response.body", "body": entry.value},
        )

    def write_response(self, scope: Scope, write: Callable[[bytes], object]) -> bool:
        """`answer` as HTTP/1.1 bytes (status line, headers, blank line, body), exactly as
        uvicorn writes those messages with no default headers, handed to `write` (a
        transport's): one buffer, or head and body apart for a value over
        `JOIN_MAX_BYTES` (not copied). Whether it answered; False as `answer`'s None.
        Everything that can fail happens before the first `write`."""
        entry = self._find(scope)
        if entry is None:
            return False
        head = self._head
        if head is None:
            lines = [_STATUS_200, *(b"%s: %s\r\n" % h for h in self._headers), b"\r\n"]
            head = self._head = b"".join(lines)
        value = entry.value
        if len(value) <= JOIN_MAX_BYTES:
            write(head + value)
        else:
            write(head)
            write(value)
        return True

    def _find(self, scope: Scope) -> Entry | None:
        """The cached entry a repeat GET asks for (counted by `cached_read`), with
        `self._headers` made its headers; None when the request is not one."""
        # GET only: a HEAD (answered by the GET route, kvcore.rest.routing) must go
        # through ASGI, where uvicorn leaves the body out; this path writes the value.
        if scope["method"] != "GET" or scope.get("query_string"):
            return None
        authorization = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = bytes(value)
                break
        raw = scope.get("raw_path")
        path: str = scope["path"]
        memo = self._memo.get((path.encode() if raw is None else raw, authorization))
        if memo is None or memo[0] != path:
            return None
        hot = self._cached_read(memo[4], memo[1], memo[2], memo[3])
        if hot is None:
            return None
        entry, age_s = hot
        if entry is not self._entry:
            self._entry_headers = entry_headers(entry, self._region)
            self._entry = entry
            self._age_hi_s = -1.0  # rebuild below
        if not self._age_lo_s <= age_s < self._age_hi_s:
            whole_s = int(age_s)
            self._headers = [*self._entry_headers, *tail_headers(entry, whole_s, b"cache")]
            self._head = None
            self._age_lo_s, self._age_hi_s = whole_s, whole_s + 1.0
        return entry
