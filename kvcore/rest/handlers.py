"""The KV operations (all but the value read, see `fastpath`), as Starlette endpoints.

Each handler authorizes first (account, then permission, before any namespace is
looked up), then parses and validates everything, and only then calls the backend:
a rejected request writes nothing. Bulk writes are all-or-nothing at validation.
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
from kvcore.model import Entry, KeyInfo, Namespace, WriteItem
from kvcore.rest import envelope
from kvcore.rest.auth import authorize
from kvcore.rest.backend import Backend
from kvcore.rest.fastpath import write_value
from kvcore.rest.parsing import (
    is_multipart,
    key_from_raw_path,
    parse_condition,
    parse_json_body,
    parse_multipart_value,
    query_choice,
    query_int,
    query_number,
    read_capped,
    strong_read,
)
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    PutOp,
    RenameNamespaceOp,
)

_JSON = "application/json"
_SMALL_BODY = 1024 * 1024  # namespace titles, bulk get (100 keys)
_PUT_BODY = limits.MAX_VALUE_BYTES + 64 * 1024  # the value plus multipart framing and metadata


def _ok(body: bytes, headers: dict[str, str] | None = None) -> Response:
    return Response(body, media_type=_JSON, headers=headers)


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
    ctype = request.headers.get("content-type")
    if ctype is None:
        return
    media = ctype.split(";", 1)[0].strip().lower()
    if media not in ("application/json", "") and not media.endswith("+json"):
        raise ValidationError(f"Content-Type: expected application/json, got {media[:80]!r}")


def _metadata(value: Any, field: str) -> str | None:
    try:
        return limits.encode_metadata(value, field)
    except RecursionError as exc:
        raise ValidationError(f"{field}: nested too deeply") from exc
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{field}: not valid UTF-8") from exc


def _namespace_id(request: Request) -> str:
    """The path's namespace id, in its issued form (400 / 10011 otherwise)."""
    return limits.validate_namespace_id(request.path_params["namespace_id"])


class Handlers:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    async def _auth(self, request: Request, *, write: bool) -> str:
        account_id: str = request.path_params["account_id"]
        await authorize(self.backend, request.headers.get("authorization"), account_id, write=write)
        return account_id

    async def _json(self, request: Request, limit: int, what: str) -> Any:
        _check_json_content_type(request)
        body = await read_capped(request.stream(), request.headers.get("content-length"), limit, what)
        return parse_json_body(body, what)

    # -- namespaces

    async def list_namespaces(self, request: Request) -> Response:
        account_id = await self._auth(request, write=False)
        q = request.query_params
        page = query_int(q, "page", 1, 2**31) or 1
        per_page = query_int(q, "per_page", 1, limits.MAX_PER_PAGE) or limits.DEFAULT_PER_PAGE
        order = query_choice(q, "order", ("id", "title")) or "id"
        direction = query_choice(q, "direction", ("asc", "desc")) or "asc"
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
        account_id = await self._auth(request, write=False)
        ns = await self.backend.get_namespace(account_id, _namespace_id(request))
        return _ok(envelope.success(namespace_json(ns)))

    async def rename_namespace(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        namespace_id = _namespace_id(request)
        title = await self._title(request)
        ns = await self.backend.submit(RenameNamespaceOp(account_id, namespace_id, title))
        return _ok(envelope.success(namespace_json(ns)))

    async def delete_namespace(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        await self.backend.submit(DeleteNamespaceOp(account_id, _namespace_id(request)))
        return _ok(envelope.NULL_RESULT)

    # -- keys and values

    async def list_keys(self, request: Request) -> Response:
        account_id = await self._auth(request, write=False)
        namespace_id = _namespace_id(request)
        q = request.query_params
        limit = query_int(q, "limit", limits.MIN_LIST_LIMIT, limits.MAX_LIST_LIMIT)
        prefix = limits.validate_prefix(q.get("prefix") or "")
        cursor = q.get("cursor") or ""
        page = await self.backend.list_keys(
            account_id, namespace_id, prefix, limit or limits.DEFAULT_LIST_LIMIT, cursor
        )
        items = "[" + ",".join(key_info_json(k) for k in page.keys) + "]"
        return _ok(envelope.success_raw(items, {"count": len(page.keys), "cursor": page.cursor}))

    async def get_metadata(self, request: Request) -> Response:
        account_id = await self._auth(request, write=False)
        namespace_id = _namespace_id(request)
        key = key_from_raw_path(request.scope.get("raw_path") or request.url.path.encode())
        strong = strong_read(request.query_params)
        result = await self.backend.get(account_id, namespace_id, key, strong=strong, metadata_only=True)
        return _ok(envelope.success_raw(result.entry.metadata_json or "null"))

    async def put_value(self, request: Request) -> Response:
        ctype = request.headers.get("content-type")
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        if not is_multipart(ctype):
            # A raw value body: normally answered by the fast path in EdgeMiddleware.
            status, headers, body = await write_value(self.backend, request.scope, request.receive, raw_path)
            return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})
        assert ctype is not None
        account_id = await self._auth(request, write=True)
        namespace_id = _namespace_id(request)
        key = key_from_raw_path(raw_path)
        q = request.query_params
        expiration = limits.resolve_expiration(
            self.backend.now(), query_number(q, "expiration"), query_number(q, "expiration_ttl")
        )
        condition = parse_condition(request.headers.get("if-match"), request.headers.get("if-none-match"))
        body = await read_capped(request.stream(), request.headers.get("content-length"), _PUT_BODY, "body")
        upload = parse_multipart_value(ctype, body)
        value, metadata_json = upload.value, upload.metadata_json
        limits.validate_value(value)
        item = WriteItem(key=key, value=value, metadata_json=metadata_json, expiration=expiration)
        result = await self.backend.submit(PutOp(account_id, namespace_id, item, condition))
        return _ok(envelope.NULL_RESULT, {"etag": f'"{result.seq}"'})

    async def delete_value(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        namespace_id = _namespace_id(request)
        key = key_from_raw_path(request.scope.get("raw_path") or request.url.path.encode())
        condition = parse_condition(request.headers.get("if-match"), request.headers.get("if-none-match"))
        await self.backend.submit(DeleteOp(account_id, namespace_id, key, condition))
        return _ok(envelope.NULL_RESULT)

    # -- bulk

    async def bulk_put(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        namespace_id = _namespace_id(request)
        body = await self._json(request, limits.MAX_BULK_BODY_BYTES, "body")
        if not isinstance(body, list):
            raise ValidationError("body: expected a JSON array of {key, value, ...} objects")
        limits.validate_bulk_count(len(body))
        now = self.backend.now()
        items = [_bulk_item(i, raw, now) for i, raw in enumerate(body)]
        result = await self.backend.submit(BulkPutOp(account_id, namespace_id, items))
        return _ok(envelope.success(_bulk_result(result.successful_key_count, result.unsuccessful_keys)))

    async def bulk_delete(self, request: Request) -> Response:
        account_id = await self._auth(request, write=True)
        namespace_id = _namespace_id(request)
        body = await self._json(request, limits.MAX_BULK_BODY_BYTES, "body")
        keys = _key_list(body, "body")
        limits.validate_bulk_count(len(keys), "bulk delete")
        result = await self.backend.submit(BulkDeleteOp(account_id, namespace_id, keys))
        return _ok(envelope.success(_bulk_result(result.successful_key_count, result.unsuccessful_keys)))

    async def bulk_get(self, request: Request) -> Response:
        account_id = await self._auth(request, write=False)
        namespace_id = _namespace_id(request)
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
    metadata_json = _metadata(raw.get("metadata"), f"{where}.metadata")
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
