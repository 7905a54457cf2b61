"""The KV operations, as the endpoints of the route table (`kvcore.rest.app`).

Each handler authorizes first (account, then permission, before any namespace is
looked up; `kvcore.rest.target`), then parses and validates everything once, with
`kvcore.limits`, and only then calls the backend: a rejected request writes nothing.
Bulk writes are all-or-nothing at validation. A value PUT takes a raw body (the value)
or a `multipart/form-data` one (value and metadata) through the same handler.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kvcore import limits
from kvcore.errors import ValidationError
from kvcore.model import Condition, Entry, KeyInfo, Namespace, WriteItem
from kvcore.rest import envelope, target
from kvcore.rest.backend import Backend
from kvcore.rest.fastpath import HotReads, body_chunks, value_headers
from kvcore.rest.parsing import (
    header,
    is_multipart,
    parse_condition,
    parse_json_body,
    parse_multipart_value,
    query,
    query_number,
    query_whole,
    read_capped,
    strong_read,
)
from kvcore.rest.routing import RawResponse
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    PutOp,
    RenameNamespaceOp,
)

_JSON_TYPE = (b"content-type", envelope.JSON_CONTENT_TYPE)
_SMALL_BODY = 1024 * 1024  # namespace titles, bulk get (100 keys)
_PUT_BODY = limits.MAX_VALUE_BYTES + 64 * 1024  # the value plus multipart framing and metadata


def _ok(body: bytes, *headers: tuple[bytes, bytes]) -> Response:
    """A 200 with a JSON body (and `headers`)."""
    return RawResponse(200, [_JSON_TYPE, (b"content-length", b"%d" % len(body)), *headers], body)


def namespace_json(ns: Namespace) -> dict[str, Any]:
    return {"id": ns.id, "title": ns.title, "supports_url_encoding": True}


def key_info_json(info: KeyInfo) -> str:
    out = '{"name":' + envelope.dumps(info.name)
    if info.expiration is not None:
        out += f',"expiration":{int(info.expiration)}'
    if info.metadata_json is not None:
        out += ',"metadata":' + info.metadata_json
    return out + "}"


def _check_json_content_type(request: Request) -> None:
    ctype = header(request.scope, b"content-type")
    if ctype is None:
        return
    media = ctype.split(";", 1)[0].strip().lower()
    if media not in ("application/json", "") and not media.endswith("+json"):
        raise ValidationError(f"Content-Type: expected application/json, got {media[:80]!r}")


def client_metadata(value: Any, field: str = "metadata") -> str | None:
    """Client metadata (a JSON value) as stored text, within its limit (`kvcore.limits`)."""
    try:
        return limits.encode_metadata(value, field)
    except RecursionError as exc:
        raise ValidationError(f"{field}: nested too deeply") from exc
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{field}: not valid UTF-8") from exc


def _namespace_id(request: Request) -> str:
    """The path's namespace id, in its issued form (400 / 10011 otherwise)."""
    return target.namespace_id(request.path_params["namespace_id"])


async def _body(request: Request, limit: int, what: str) -> bytes:
    length = header(request.scope, b"content-length")
    return await read_capped(body_chunks(request.receive), length, limit, what)


def _condition(request: Request) -> Condition:
    return parse_condition(header(request.scope, b"if-match"), header(request.scope, b"if-none-match"))


class Handlers:
    def __init__(self, backend: Backend, hot: HotReads | None = None) -> None:
        self.backend = backend
        self.hot = hot
        self._region = backend.region.encode()

    async def _auth(self, request: Request, *, write: bool) -> str:
        account_id, _ = await target.account(self.backend, request, write=write)
        return account_id

    async def _json(self, request: Request, limit: int, what: str) -> Any:
        _check_json_content_type(request)
        return parse_json_body(await _body(request, limit, what), what)

    # -- namespaces

    async def list_namespaces(self, request: Request) -> Response:
        account_id = await self._auth(request, write=False)
        q = query(request.scope)
        page, per_page = limits.validate_page(query_whole(q, "page"), query_whole(q, "per_page"))
        order, direction = limits.validate_order(q.get("order", "id"), q.get("direction", "asc"))
        items, total = await self.backend.list_namespaces(account_id, page, per_page, order, direction)
        info = {"count": len(items), "page": page, "per_page": per_page, "total_count": total}
        return _ok(envelope.success([namespace_json(n) for n in items], info))

    async def _title(self, request: Request) -> str:
        body = await self._json(request, _SMALL_BODY, "body")
        if not isinstance(body, dict) or "title" not in body:
            raise ValidationError('body: expected {"title": "<namespace title>"}')
        title = limits.validate_title(body["title"])
        try:
            title.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("title: not valid UTF-8") from exc
        return title

    async def create_namespace(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        title = await self._title(request)
        ns = await self.backend.submit(CreateNamespaceOp(account_id, title))
        return _ok(envelope.success(namespace_json(ns)))

    async def get_namespace(self, request: Request) -> Response:
        account_id, namespace_id = await target.namespace(self.backend, request, write=False)
        ns = await self.backend.get_namespace(account_id, namespace_id)
        return _ok(envelope.success(namespace_json(ns)))

    async def rename_namespace(self, request: Request) -> Response:
        account_id, namespace_id = await target.namespace(self.backend, request, write=True)
        title = await self._title(request)
        ns = await self.backend.submit(RenameNamespaceOp(account_id, namespace_id, title))
        return _ok(envelope.success(namespace_json(ns)))

    async def delete_namespace(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        await self.backend.submit(DeleteNamespaceOp(account_id, _namespace_id(request)))
        return _ok(envelope.NULL_RESULT)

    # -- keys and values

    async def list_keys(self, request: Request) -> Response:
        account_id, namespace_id = await target.namespace(self.backend, request, write=False)
        q = query(request.scope)
        limit = limits.validate_list_limit(query_whole(q, "limit"))
        prefix = limits.validate_prefix(q.get("prefix") or "")
        cursor = q.get("cursor") or ""
        page = await self.backend.list_keys(account_id, namespace_id, prefix, limit, cursor)
        items = "[" + ",".join(key_info_json(k) for k in page.keys) + "]"
        return _ok(envelope.success_raw(items, {"count": len(page.keys), "cursor": page.cursor}))

    async def get_value(self, request: Request) -> Response:
        account_id, namespace_id, key = await target.key(self.backend, request, write=False)
        strong = strong_read(query(request.scope))
        result = await self.backend.get(account_id, namespace_id, key, strong=strong)
        if self.hot is not None and result.source == "cache" and not strong:
            self.hot.remember(request.scope, (account_id, namespace_id, key))
        return RawResponse(200, value_headers(result, self._region), result.entry.value)

    async def get_metadata(self, request: Request) -> Response:
        account_id, namespace_id, key = await target.key(self.backend, request, write=False)
        strong = strong_read(query(request.scope))
        result = await self.backend.get(account_id, namespace_id, key, strong=strong, metadata_only=True)
        return _ok(envelope.success_raw(result.entry.metadata_json or "null"))

    async def put_value(self, request: Request) -> Response:
        account_id, namespace_id, key = await target.key(self.backend, request, write=True)
        q = query(request.scope)
        expiration = limits.resolve_expiration(
            self.backend.now(), query_number(q, "expiration"), query_number(q, "expiration_ttl")
        )
        condition = _condition(request)
        ctype = header(request.scope, b"content-type")
        if ctype is not None and is_multipart(ctype):
            upload = parse_multipart_value(ctype, await _body(request, _PUT_BODY, "body"))
            value, metadata_json = limits.validate_value(upload.value), client_metadata(upload.metadata)
        else:  # the body is the value, capped as read (a larger Content-Length is refused unread)
            value, metadata_json = await _body(request, limits.MAX_VALUE_BYTES, "value"), None
        item = WriteItem(key=key, value=value, metadata_json=metadata_json, expiration=expiration)
        result = await self.backend.submit(PutOp(account_id, namespace_id, item, condition))
        return _ok(envelope.NULL_RESULT, (b"etag", b'"%d"' % result.seq))

    async def delete_value(self, request: Request) -> Response:
        account_id, namespace_id, key = await target.key(self.backend, request, write=True)
        condition = _condition(request)
        await self.backend.submit(DeleteOp(account_id, namespace_id, key, condition))
        return _ok(envelope.NULL_RESULT)

    # -- bulk

    async def bulk_put(self, request: Request) -> Response:
        account_id, namespace_id = await target.namespace(self.backend, request, write=True)
        body = await self._json(request, limits.MAX_BULK_BODY_BYTES, "body")
        if not isinstance(body, list):
            raise ValidationError("body: expected a JSON array of {key, value, ...} objects")
        limits.validate_bulk_count(len(body))
        now = self.backend.now()
        items = [_bulk_item(i, raw, now) for i, raw in enumerate(body)]
        result = await self.backend.submit(BulkPutOp(account_id, namespace_id, items))
        return _ok(envelope.success(_bulk_result(result.successful_key_count, result.unsuccessful_keys)))

    async def bulk_delete(self, request: Request) -> Response:
        account_id, namespace_id = await target.namespace(self.backend, request, write=True)
        body = await self._json(request, limits.MAX_BULK_BODY_BYTES, "body")
        keys = _key_list(body, "body")
        limits.validate_bulk_count(len(keys), "bulk delete")
        result = await self.backend.submit(BulkDeleteOp(account_id, namespace_id, keys))
        return _ok(envelope.success(_bulk_result(result.successful_key_count, result.unsuccessful_keys)))

    async def bulk_get(self, request: Request) -> Response:
        account_id, namespace_id = await target.namespace(self.backend, request, write=False)
        body = await self._json(request, _SMALL_BODY, "body")
        if not isinstance(body, dict) or "keys" not in body:
            raise ValidationError('body: expected {"keys": [...], "type"?, "withMetadata"?}')
        keys = _key_list(body["keys"], "keys")
        limits.validate_bulk_get_count(len(keys))
        as_json = body.get("type", "text")
        if as_json not in ("text", "json"):
            raise ValidationError("type: must be 'text' or 'json'")
        with_metadata = body.get("withMetadata", False)
        if not isinstance(with_metadata, bool):
            raise ValidationError("withMetadata: must be a boolean")
        entries = await self.backend.bulk_get(account_id, namespace_id, keys)
        values: dict[str, Any] = {}
        for key, entry in zip(keys, entries, strict=True):
            values[key] = _bulk_value(key, entry, as_json == "json", with_metadata)
        return _ok(envelope.success({"values": values}))


def _bulk_result(count: int, unsuccessful: Sequence[str]) -> dict[str, Any]:
    return {"successful_key_count": count, "unsuccessful_keys": list(unsuccessful)}


def _key_list(raw: Any, field: str) -> list[str]:
    if not isinstance(raw, list):
        raise ValidationError(f"{field}: expected a JSON array of key names")
    for i, key in enumerate(raw):
        if not isinstance(key, str):
            raise ValidationError(f"{field}[{i}]: must be a string")
        limits.validate_key(key, f"{field}[{i}]")
    return raw


def _bulk_item(i: int, raw: Any, now: float) -> WriteItem:
    where = f"[{i}]"
    if not isinstance(raw, dict):
        raise ValidationError(f"{where}: expected an object with key and value")
    key = raw.get("key")
    if not isinstance(key, str):
        raise ValidationError(f"{where}.key: required, must be a string")
    limits.validate_key(key, f"{where}.key")
    text = raw.get("value")
    if not isinstance(text, str):
        raise ValidationError(f"{where}.value: required, must be a string")
    b64 = raw.get("base64", False)
    if not isinstance(b64, bool):
        raise ValidationError(f"{where}.base64: must be a boolean")
    if b64:
        try:
            value = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(f"{where}.value: not valid base64") from exc
    else:
        try:
            value = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError(f"{where}.value: not valid UTF-8") from exc
    limits.validate_value(value, f"{where}.value")
    expiration = limits.resolve_expiration(
        now, raw.get("expiration"), raw.get("expiration_ttl"), field_prefix=f"{where}."
    )
    metadata_json = client_metadata(raw.get("metadata"), f"{where}.metadata")
    return WriteItem(key=key, value=value, metadata_json=metadata_json, expiration=expiration)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def _bulk_value(key: str, entry: Entry | None, as_json: bool, with_metadata: bool) -> Any:
    if entry is None:
        return None
    # Bytes that are not UTF-8 read as U+FFFD, as Miniflare's bulk get (TextDecoder) does:
    # one binary value does not fail the batch; GET .../values/{key} serves exact bytes.
    value: Any = entry.value.decode("utf-8", "replace")
    if as_json:
        try:
            value = json.loads(value, parse_constant=_no_constant, parse_float=_finite_float)
        except (ValueError, RecursionError) as exc:
            raise ValidationError(f"keys: the value of {key!r} is not valid JSON (type=json)") from exc
    if not with_metadata:
        return value
    out: dict[str, Any] = {
        "value": value,
        "metadata": json.loads(entry.metadata_json) if entry.metadata_json is not None else None,
    }
    if entry.expiration is not None:
        out["expiration"] = entry.expiration
    return out
