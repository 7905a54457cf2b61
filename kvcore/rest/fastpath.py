"""The outermost layer of the REST app, as plain ASGI: HTTP metrics for every request
and the two hot paths, `GET .../values/{key}` and a raw-body `PUT .../values/{key}`,
served without FastAPI's routing, dependency injection and response classes (which
cost more than the durable write itself; the figures are in bench/writes.py).

Everything else, multipart PUTs included, is passed on to FastAPI. The value read is
answered by the same function (`read_value`) whichever way a request arrives, so
both render alike.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any, Final, Protocol
from urllib.parse import parse_qsl

from kvcore import limits
from kvcore.errors import InternalError, KVError, NotFoundRoute, ValidationError
from kvcore.metrics import Metrics
from kvcore.model import Entry, WriteItem
from kvcore.rest import envelope
from kvcore.rest.auth import authorize, secret_hash_of
from kvcore.rest.backend import Backend
from kvcore.rest.parsing import (
    decode_segment,
    is_multipart,
    parse_condition,
    query_number,
    read_capped,
    strong_read,
)
from kvcore.store.ops import PutOp

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_VALUE_GET: Final = re.compile(
    rb"/client/v4/accounts/([^/]+)/storage/kv/namespaces/([^/]+)/values/(.*)\Z", re.DOTALL
)
_KV_PREFIX: Final = "/client/v4/accounts/"
_METHODS: Final = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS"})
_SIMPLE_ROUTES: Final = {"/metrics": "metrics", "/healthz": "healthz", "/readyz": "readyz"}
_SUB_ROUTES: Final = {"keys": "keys", "metadata": "metadata", "values": "values"}
_JSON_HEADERS: Final = [(b"content-type", envelope.JSON_CONTENT_TYPE)]
_OCTET_STREAM: Final = (b"content-type", b"application/octet-stream")
_FROM_CACHE: Final = (b"x-edgekv-source", b"cache")


def route_label(path: str, method: str) -> str:
    """A small fixed vocabulary for the `route` label, never the raw path."""
    if not path.startswith(_KV_PREFIX):
        return _SIMPLE_ROUTES.get(path, "other")
    parts = path.split("/", 11)
    n = len(parts)
    if n < 8 or parts[5] != "storage" or parts[6] != "kv" or parts[7] != "namespaces":
        return "other"
    if n == 8:
        return "namespaces"
    if n == 9:
        return "namespace"
    sub = parts[9]
    if sub == "bulk":
        if n == 10:
            return "bulk_delete" if method == "DELETE" else "bulk"
        return {"delete": "bulk_delete", "get": "bulk_get"}.get(parts[10], "other")
    return _SUB_ROUTES.get(sub, "other")


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v).decode("latin-1")
    return None


def _segment(raw: bytes, field: str) -> str:
    return raw.decode("ascii") if raw.isascii() and b"%" not in raw else decode_segment(raw, field)


# Parsed value paths (raw path -> account, namespace, key): a pure function of the
# path, so hot keys skip the regex, the percent-decoding and the validation.
_PARSED: dict[bytes, tuple[str, str, str]] = {}
_PARSED_MAX: Final = 8192


class CachedReader(Protocol):
    """What a backend may offer the hot path (the replica does; central does not)."""

    def cached_read(
        self, secret_hash: str, account_id: str, namespace_id: str, key: str
    ) -> tuple[Entry, float] | None:
        """(entry, age in seconds) served from memory with no I/O, for a live token of
        `account_id`, counted as a read; or None, counting nothing (the full path runs)."""
        ...


# The hot-read memo: (raw path, Authorization header) -> (account, namespace, key,
# secret hash) of a GET that passed auth and parsing before. A repeat of the same
# request skips the regex, the header parsing and the hashing; the token itself is
# looked up again by the backend on every request, so a revocation still takes
# effect at once.
_HOT: dict[tuple[bytes, bytes], tuple[str, str, str, str]] = {}
_HOT_MAX: Final = 8192


def _remember_hot(raw_path: bytes, authorization: bytes | None, target: tuple[str, str, str]) -> None:
    if authorization is None:
        return
    try:
        digest = secret_hash_of(authorization.decode("latin-1"))
    except KVError:
        return
    if len(_HOT) >= _HOT_MAX:
        _HOT.clear()
    _HOT[(raw_path, authorization)] = (*target, digest)


def is_value_path(raw_path: bytes) -> bool:
    return raw_path in _PARSED or _VALUE_GET.match(raw_path) is not None


async def _value_target(
    backend: Backend, scope: Scope, raw_path: bytes, *, write: bool, op: str
) -> tuple[str, str, str]:
    """(account, namespace, key) of a value path, after the caller is authorized."""
    parsed = _PARSED.get(raw_path)
    if parsed is not None:
        account_id, namespace_id, key = parsed
        await authorize(backend, _header(scope, b"authorization"), account_id, write=write)
        return parsed
    m = _VALUE_GET.match(raw_path)
    if m is None:
        raise NotFoundRoute()
    raw_account, raw_namespace, raw_key = m.groups()
    account_id = _segment(raw_account, "account_id")
    # Auth before anything about the namespace or key is looked at or reported.
    await authorize(backend, _header(scope, b"authorization"), account_id, write=write)
    namespace_id = limits.validate_namespace_id(_segment(raw_namespace, "namespace_id"))
    key = limits.validate_key(decode_segment(raw_key, "key_name"), in_url=True)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[raw_path] = (account_id, namespace_id, key)
    return account_id, namespace_id, key


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationError("body: the client went away before sending it whole")
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


async def write_value(
    backend: Backend, scope: Scope, receive: Receive, raw_path: bytes
) -> tuple[int, Headers, bytes]:
    """Status, headers and body of `PUT .../values/{key}` with a raw value body (the
    same rules as the FastAPI route, which keeps multipart bodies)."""
    try:
        account_id, namespace_id, key = await _value_target(backend, scope, raw_path, write=True, op="put")
        qs = scope.get("query_string")
        q = dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else {}
        expiration = limits.resolve_expiration(
            backend.now(), query_number(q, "expiration"), query_number(q, "expiration_ttl")
        )
        condition = parse_condition(_header(scope, b"if-match"), _header(scope, b"if-none-match"))
        value = await read_capped(
            body_chunks(receive), _header(scope, b"content-length"), limits.MAX_VALUE_BYTES, "value"
        )
        item = WriteItem(key=key, value=value, expiration=expiration)
        result = await backend.submit(PutOp(account_id, namespace_id, item, condition))
    except KVError as exc:
        return exc.http_status, list(_JSON_HEADERS), envelope.error_body(exc)
    return 200, [*_JSON_HEADERS, (b"etag", b'"%d"' % result.seq)], envelope.NULL_RESULT


async def read_value(backend: Backend, scope: Scope, raw_path: bytes) -> tuple[int, Headers, bytes]:
    """Status, headers and body of `GET .../values/{key}` (raw bytes, or the failure envelope)."""
    try:
        account_id, namespace_id, key = await _value_target(backend, scope, raw_path, write=False, op="get")
        strong = False
        qs = scope.get("query_string")
        if qs:
            strong = strong_read(dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)))
        result = await backend.get(account_id, namespace_id, key, strong=strong)
    except KVError as exc:
        return exc.http_status, list(_JSON_HEADERS), envelope.error_body(exc)
    if result.source == "cache" and not strong:
        _remember_hot(raw_path, _raw_header(scope, b"authorization"), (account_id, namespace_id, key))
    entry = result.entry
    region = (b"x-edgekv-region", backend.region.encode())
    return (
        200,
        [*_entry_headers(entry), region, *_tail_headers(entry, result.age_s, result.source)],
        entry.value,
    )


def _entry_headers(entry: Entry) -> Headers:
    """The headers of a value read that depend on the entry alone."""
    return [_OCTET_STREAM, (b"etag", b'"%d"' % entry.version), (b"content-length", b"%d" % len(entry.value))]


def _tail_headers(entry: Entry, age_s: float, source: str) -> Headers:
    tail: Headers = [(b"age", b"%d" % age_s), (b"x-edgekv-source", source.encode())]
    if entry.expiration is not None:
        tail.append((b"expiration", b"%d" % entry.expiration))
    return tail


def _raw_header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


class EdgeMiddleware:
    """Metrics around every HTTP request, and the value-read fast path."""

    def __init__(self, app: ASGIApp, *, backend: Backend, metrics: Metrics) -> None:
        self.app = app
        self.backend = backend
        self.metrics = metrics
        self.region = backend.region
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[str, Any] = {}
        self._region_bytes = self.region.encode()
        reader: CachedReader | None = backend if hasattr(backend, "cached_read") else None  # type: ignore[assignment]
        self._cached_read = reader.cached_read if reader is not None else None
        # The last hot entry's entry-only headers (with the region): reused while the
        # same entry object is served, which is what a hot key is.
        self._hot_entry: Entry | None = None
        self._hot_headers: Headers = []
        self._hot_count = metrics.http_requests.labels(self.region, "values", "GET", "200")
        self._hot_duration = metrics.http_duration.labels(self.region, "values")

    def _record(self, route: str, method: str, status: int, elapsed: float) -> None:
        if method not in _METHODS:
            method = "other"
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self.metrics.http_requests.labels(self.region, route, method, str(status))
            self._counters[(route, method, status)] = counter
        counter.inc()
        hist = self._histograms.get(route)
        if hist is None:
            hist = self._histograms[route] = self.metrics.http_duration.labels(self.region, route)
        hist.observe(elapsed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        method: str = scope["method"]
        status = 500
        if method == "GET" and self._cached_read is not None and not scope.get("query_string"):
            # A repeat GET of a cached value (see `_HOT`): None means this request is not
            # one, nothing was counted, and the full path below takes it.
            auth = _raw_header(scope, b"authorization")
            memo = _HOT.get((scope.get("raw_path") or b"", auth or b""))
            hot = self._cached_read(memo[3], memo[0], memo[1], memo[2]) if memo is not None else None
            if hot is not None:
                entry, age_s = hot
                if entry is not self._hot_entry:
                    self._hot_headers = [*_entry_headers(entry), (b"x-edgekv-region", self._region_bytes)]
                    self._hot_entry = entry
                headers = [*self._hot_headers, (b"age", b"%d" % age_s), _FROM_CACHE]
                if entry.expiration is not None:
                    headers.append((b"expiration", b"%d" % entry.expiration))
                try:
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
                    await send({"type": "http.response.body", "body": entry.value})
                finally:
                    self._hot_count.inc()
                    self._hot_duration.observe(time.perf_counter() - start)
                return
        if method == "GET" or method == "PUT":
            raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8")
            if is_value_path(raw_path) and (
                method == "GET" or not is_multipart(_header(scope, b"content-type"))
            ):
                try:
                    if method == "GET":
                        status, headers, body = await read_value(self.backend, scope, raw_path)
                    else:
                        status, headers, body = await write_value(self.backend, scope, receive, raw_path)
                except Exception:
                    log.exception("value %s failed", method)
                    exc = InternalError()
                    status, headers, body = exc.http_status, list(_JSON_HEADERS), envelope.error_body(exc)
                if status != 200 or method != "GET":
                    headers.append((b"content-length", b"%d" % len(body)))
                try:
                    await send({"type": "http.response.start", "status": status, "headers": headers})
                    await send({"type": "http.response.body", "body": body})
                finally:
                    self._record("values", method, status, time.perf_counter() - start)
                return

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self._record(route_label(scope["path"], method), method, status, time.perf_counter() - start)
