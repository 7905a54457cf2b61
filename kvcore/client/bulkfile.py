"""The JSON files of `wrangler kv bulk put|delete|get`, read and checked before anything
is sent, so a malformed file fails whole (naming the item) instead of half-way through.

- bulk put: an array of `{key, value, expiration?, expiration_ttl?, metadata?, base64?}`
  with a string `value` (base64 text when `base64` is true);
- bulk delete and bulk get: an array whose items are key strings or objects naming a
  key by `name` (what `wrangler kv key list` and `edgekv kv key list --json` print, as
  wrangler's own bulk delete/get accept: workers-sdk `src/kv/index.ts`) or by `key` (so
  the file given to bulk put can be reused). Other fields of an object are ignored.
"""

from __future__ import annotations

import binascii
import json
from pathlib import Path
from typing import Any

from kvcore.errors import KVError
from kvcore.limits import encode_metadata, resolve_expiration, validate_key

_PUT_FIELDS = ("key", "value", "expiration", "expiration_ttl", "metadata", "base64")


class BulkFileError(ValueError):
    """The file cannot be read or is not in the expected shape."""


def load_json(path: str | Path) -> Any:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise BulkFileError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise BulkFileError(f"{path}: not UTF-8 text") from exc
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise BulkFileError(f"{path}: not valid JSON ({exc.msg} at {where})") from exc


def _array(doc: Any, path: str | Path, what: str) -> list[Any]:
    if not isinstance(doc, list):
        raise BulkFileError(f"{path}: expected a JSON array of {what}, found {type(doc).__name__}")
    return doc


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise BulkFileError(f"{where}: 'key' must be a string")
    try:
        validate_key(key, "key")
    except KVError as exc:
        raise BulkFileError(f"{where}: {exc.message}") from exc
    return key


def _number(item: dict[str, Any], field: str, where: str) -> None:
    value = item.get(field)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise BulkFileError(f"{where}: '{field}' must be a number")


def parse_put_items(doc: Any, path: str | Path = "<input>", *, now: float) -> list[dict[str, Any]]:
    """The items of a bulk put file, checked (expirations against the API's bounds at `now`,
    epoch seconds) and stripped to the fields the API knows."""
    items: list[dict[str, Any]] = []
    for index, item in enumerate(_array(doc, path, "{key, value} objects")):
        where = f"{path}: item {index}"
        if not isinstance(item, dict):
            raise BulkFileError(f"{where}: expected an object with 'key' and 'value'")
        key = _check_key(item.get("key"), where)
        where = f"{where} ({key!r})"
        if "value" not in item:
            raise BulkFileError(f"{where}: 'value' is missing")
        if not isinstance(item["value"], str):
            raise BulkFileError(f"{where}: 'value' must be a string")
        _number(item, "expiration", where)
        _number(item, "expiration_ttl", where)
        try:
            resolve_expiration(now, item.get("expiration"), item.get("expiration_ttl"))
        except KVError as exc:
            raise BulkFileError(f"{where}: {exc.message}") from exc
        b64 = item.get("base64", False)
        if not isinstance(b64, bool):
            raise BulkFileError(f"{where}: 'base64' must be true or false")
        if b64:
            try:
                binascii.a2b_base64(item["value"].encode("ascii"), strict_mode=True)
            except (binascii.Error, UnicodeEncodeError) as exc:
                raise BulkFileError(f"{where}: 'value' is not valid base64") from exc
        try:
            encode_metadata(item.get("metadata"))
        except KVError as exc:
            raise BulkFileError(f"{where}: {exc.message}") from exc
        items.append({f: item[f] for f in _PUT_FIELDS if f in item and item[f] is not None})
    return items


def _named_key(item: dict[str, Any], where: str) -> Any:
    """The key an object names: `name` (a key listing) or `key` (a bulk put item)."""
    if "name" in item and "key" in item and item["name"] != item["key"]:
        raise BulkFileError(f"{where}: 'name' and 'key' name different keys")
    if "name" not in item and "key" not in item:
        raise BulkFileError(f"{where}: an object must name its key with 'name' or 'key'")
    return item["name"] if "name" in item else item["key"]


def parse_keys(doc: Any, path: str | Path = "<input>") -> list[str]:
    """The keys of a bulk delete or bulk get file."""
    keys: list[str] = []
    for index, item in enumerate(_array(doc, path, "key strings or {name} objects")):
        where = f"{path}: item {index}"
        if isinstance(item, dict):
            item = _named_key(item, where)
        elif not isinstance(item, str):
            raise BulkFileError(f"{where}: expected a key string or an object with 'name' (or 'key')")
        keys.append(_check_key(item, where))
    return keys
