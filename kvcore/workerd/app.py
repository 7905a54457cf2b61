"""workerd's KV service protocol, as an ASGI app over the REST `Backend`.

A workerd `kvNamespace` binding pointed at an external HTTP service turns each call of
Worker code into one HTTP request (workerd `src/workerd/api/kv.c++`; Miniflare serves
the same protocol in `packages/miniflare/src/workers/kv/`). As a probe of workerd
1.20261117 saw it:

- `get(key, type)`, `getWithMetadata(key)`: `GET /<key>?urlencoded=true[&cache_ttl=S]`,
  answered 200 with the value's bytes, `CF-KV-Metadata: <json>` and `CF-Expiration:
  <epoch s>`, or 404, which Worker code sees as `null`;
- `put(key, value, {expiration, expirationTtl, metadata})`: `PUT /<key>?urlencoded=true
  [&expiration=E][&expiration_ttl=S]`, the metadata JSON in `CF-KV-Metadata`, the value
  as the body; 200;
- `delete(key)`: `DELETE /<key>?urlencoded=true`; 200;
- `list({prefix, limit, cursor})`: `GET /?[key_count_limit=N][&prefix=P][&cursor=C]`,
  answered `{"keys": [{"name", "expiration"?, "metadata"?: <json text>}],
  "list_complete", "cursor"?}`;
- `get([k, ...], type)`, `getWithMetadata([k, ...])`: `POST /bulk/get` with
  `{"keys", "type"?, "withMetadata"?, "cacheTtl"?}`, answered `{"<k>": value, or
  {"value", "metadata"} with metadata, or null}`.

Keys are percent-encoded path segments (`/` as `%2F`). Any other status becomes
`Error("KV <METHOD> failed: <status> <reason phrase>")` in Worker code, so an error's
message travels in `REASON_HEADER`, which `kvcore.workerd.server` moves into the status
line (ASGI has no field for the reason phrase).

Who is asking: the workerd config injects `Authorization: Bearer <token>` and
`X-Edgekv-Namespace: <namespace id>`; the token's own account is the account. Auth,
limits and the read rules (edge cache, read-through, C1-C4) are the REST API's:
`kvcore.rest.auth`, `kvcore.limits`, the backend. Differences: a namespace that is not
found is a 400 here, never a 404, which a read would take for a missing key; `list()`
takes the binding's 1 to 1,000 keys a page (`kvcore.workerd.listing`), not REST's 10
to 1,000; and `cache_ttl` / `cacheTtl` is checked (at least 30 s) but otherwise unused,
since C2 already bounds how stale a read can be.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

from kvcore import limits
from kvcore.errors import InternalError, KVError, MethodNotAllowed, NamespaceNotFound, ValidationError
from kvcore.metrics import Metrics
from kvcore.model import NO_CONDITION, WriteItem
from kvcore.rest.auth import authorize
from kvcore.rest.backend import Backend
from kvcore.rest.envelope import dumps
from kvcore.rest.fastpath import body_chunks
from kvcore.rest.handlers import _bulk_value, _key_list  # the REST bulk get's own rules
from kvcore.rest.parsing import decode_segment, parse_json_body, query_int, query_number, read_capped
from kvcore.store.ops import DeleteOp, PutOp
from kvcore.workerd.listing import MIN_BINDING_LIST_LIMIT, binding_page, list_body

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
Reply = tuple[int, Headers, bytes]

NAMESPACE_HEADER: Final = b"x-edgekv-namespace"
METADATA_HEADER: Final = b"cf-kv-metadata"
EXPIRATION_HEADER: Final = b"cf-expiration"
# The error message, for the status line (see kvcore.workerd.server); never sent as a header.
REASON_HEADER: Final = b"x-edgekv-reason"
MAX_REASON_CHARS: Final = 300
_BULK_BODY_BYTES: Final = 1024 * 1024  # 100 keys of at most 512 bytes, and options
_JSON: Final = (b"content-type", b"application/json")
_OCTETS: Final = (b"content-type", b"application/octet-stream")
_METHODS: Final = frozenset({"GET", "PUT", "DELETE", "POST"})
_URLENCODED_ONLY: Final = {"urlencoded": "true"}
_ROUTES: Final = {"GET": "workerd_get", "PUT": "workerd_put", "DELETE": "workerd_delete"}


def _header(scope: Scope, name: bytes) -> bytes | None:
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v)
    return None


def _query(scope: Scope) -> dict[str, str]:
    qs: bytes = scope.get("query_string") or b""
    return dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else {}


# Decoded, validated keys by raw path (a pure function of it): hot keys skip the work.
_KEYS: dict[bytes, str] = {}
_KEYS_MAX: Final = 8192


def key_of(raw_path: bytes, urlencoded: bool) -> str:
    """The key of `/<key>`: percent-decoded when workerd says `urlencoded=true` (it always does)."""
    key = _KEYS.get(raw_path) if urlencoded else None
    if key is not None:
        return key
    raw_key = raw_path[1:]
    if urlencoded:
        key = decode_segment(raw_key, "key")
    else:
        try:
            key = raw_key.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError("key: not valid UTF-8") from exc
    limits.validate_key(key, "key", in_url=True)  # over 512 bytes: 414, as workerd itself says
    if urlencoded:
        if len(_KEYS) >= _KEYS_MAX:
            _KEYS.clear()
        _KEYS[raw_path] = key
    return key


def reason_phrase(message: str) -> bytes:
    """`message` as a status-line reason phrase: printable ASCII, bounded."""
    text = message.encode("ascii", "backslashreplace")[:MAX_REASON_CHARS]
    return bytes(c if 32 <= c < 127 else 63 for c in text)


def error_reply(exc: KVError) -> Reply:
    # A namespace the binding cannot see must fail loudly: a 404 would read as `null`.
    status = 400 if isinstance(exc, NamespaceNotFound) else exc.http_status
    headers = [(b"content-type", b"text/plain;charset=UTF-8"), (REASON_HEADER, reason_phrase(exc.message))]
    return status, headers, exc.message.encode()


def _check_cache_ttl(value: float | None) -> None:
    if value is not None and value < limits.MIN_CACHE_TTL_S:
        raise ValidationError(f"cache_ttl: {value:g} is below the minimum of {limits.MIN_CACHE_TTL_S} s")


class WorkerdKV:
    """The ASGI app of the workerd listener. `backend` answers, as for the REST API."""

    def __init__(self, backend: Backend, metrics: Metrics) -> None:
        self.backend = backend
        self._requests = metrics.http_requests
        self._duration = metrics.http_duration
        self._region = backend.region
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._histograms: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] == "websocket":  # none served: a 403 (returning makes uvicorn log ERROR)
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            return
        start = time.perf_counter()
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        route = "workerd_list" if raw_path == b"/" else _ROUTES.get(method, "workerd_other")
        try:
            status, headers, body = await self._dispatch(method, raw_path, scope, receive)
        except KVError as exc:
            status, headers, body = error_reply(exc)
        except Exception:
            log.exception("workerd %s failed", method)
            status, headers, body = error_reply(InternalError())
        headers.append((b"content-length", b"%d" % len(body)))
        try:
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        finally:
            if raw_path == b"/bulk/get":
                route = "workerd_bulk_get"
            label = method if method in _METHODS else "other"
            self._record(route, label, status, time.perf_counter() - start)

    def _record(self, route: str, method: str, status: int, elapsed_s: float) -> None:
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._requests.labels(self._region, route, method, str(status))
            self._counters[(route, method, status)] = counter
        counter.inc()
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self._histograms[route] = self._duration.labels(self._region, route)
        histogram.observe(elapsed_s)

    async def _who(self, scope: Scope, *, write: bool) -> tuple[str, str]:
        """(account, namespace) of a request, after its token is checked as REST checks it."""
        authorization = _header(scope, b"authorization")
        token = await authorize(
            self.backend, authorization.decode("latin-1") if authorization else None, None, write=write
        )
        raw = _header(scope, NAMESPACE_HEADER)
        if raw is None:
            raise ValidationError("X-Edgekv-Namespace: missing; the workerd config must inject it")
        return token.account_id, limits.validate_namespace_id(raw.decode("latin-1").strip())

    async def _dispatch(self, method: str, raw_path: bytes, scope: Scope, receive: Receive) -> Reply:
        if raw_path == b"/":
            if method != "GET":
                raise MethodNotAllowed()
            return await self._list(scope)
        if raw_path == b"/bulk/get" and method == "POST":
            return await self._bulk_get(scope, receive)
        if method not in _ROUTES:
            raise MethodNotAllowed()
        account_id, namespace_id = await self._who(scope, write=method != "GET")
        q = _URLENCODED_ONLY if scope.get("query_string") == b"urlencoded=true" else _query(scope)
        key = key_of(raw_path, q.get("urlencoded", "").lower() == "true")
        if method == "GET":
            return await self._get(account_id, namespace_id, key, q)
        if method == "PUT":
            return await self._put(account_id, namespace_id, key, q, scope, receive)
        await self.backend.submit(DeleteOp(account_id, namespace_id, key, NO_CONDITION))
        return 200, [], b""

    async def _get(self, account_id: str, namespace_id: str, key: str, q: dict[str, str]) -> Reply:
        if "cache_ttl" in q:
            _check_cache_ttl(query_number(q, "cache_ttl"))
        entry = (await self.backend.get(account_id, namespace_id, key)).entry
        headers = [_OCTETS]
        if entry.metadata_json is not None:
            headers.append((METADATA_HEADER, entry.metadata_json.encode()))
        if entry.expiration is not None:
            headers.append((EXPIRATION_HEADER, b"%d" % entry.expiration))
        return 200, headers, entry.value

    async def _put(
        self, account_id: str, namespace_id: str, key: str, q: dict[str, str], scope: Scope, receive: Receive
    ) -> Reply:
        expiration = limits.resolve_expiration(
            self.backend.now(), query_number(q, "expiration"), query_number(q, "expiration_ttl")
        )
        raw_metadata = _header(scope, METADATA_HEADER)
        metadata_json = None if raw_metadata is None else limits.parse_metadata_json(raw_metadata)
        length = _header(scope, b"content-length")
        value = await read_capped(
            body_chunks(receive), length.decode() if length else None, limits.MAX_VALUE_BYTES, "value"
        )
        item = WriteItem(key=key, value=value, metadata_json=metadata_json, expiration=expiration)
        await self.backend.submit(PutOp(account_id, namespace_id, item, NO_CONDITION))
        return 200, [], b""

    async def _list(self, scope: Scope) -> Reply:
        account_id, namespace_id = await self._who(scope, write=False)
        q = _query(scope)
        limit = query_int(q, "key_count_limit", MIN_BINDING_LIST_LIMIT, limits.MAX_LIST_LIMIT)
        prefix = limits.validate_prefix(q.get("prefix", ""))
        page = await binding_page(
            self.backend,
            account_id,
            namespace_id,
            prefix,
            limit or limits.DEFAULT_LIST_LIMIT,
            q.get("cursor", ""),
        )
        return 200, [_JSON], list_body(page)

    async def _bulk_get(self, scope: Scope, receive: Receive) -> Reply:
        account_id, namespace_id = await self._who(scope, write=False)
        length = _header(scope, b"content-length")
        raw = await read_capped(
            body_chunks(receive), length.decode() if length else None, _BULK_BODY_BYTES, "body"
        )
        body = parse_json_body(raw, "body")
        if not isinstance(body, dict) or "keys" not in body:
            raise ValidationError('body: expected {"keys": [...], "type"?, "withMetadata"?}')
        keys = _key_list(body["keys"], "keys")
        limits.validate_bulk_get_count(len(keys))
        kind = body.get("type") or "text"
        if kind not in ("text", "json"):
            raise ValidationError(f"type: {str(kind)[:40]!r} is not a valid type; use 'json' or 'text'")
        with_metadata = bool(body.get("withMetadata", False))
        if "cacheTtl" in body:
            _check_cache_ttl(query_number({"cacheTtl": str(body["cacheTtl"])}, "cacheTtl"))
        entries = await self.backend.bulk_get(account_id, namespace_id, keys)
        values = {
            k: _bulk_value(k, e, kind == "json", with_metadata) for k, e in zip(keys, entries, strict=True)
        }
        return 200, [_JSON], dumps(values).encode()


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
