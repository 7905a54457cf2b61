"""Cloudflare's response envelope, rendered straight to bytes.

Success: `{"success":true,"errors":[],"messages":[],"result":...}` (plus `result_info` on
list operations). Failure: `{"success":false,"errors":[{"code","message"}],"messages":[],
"result":null}`. Results that already exist as JSON text (stored metadata) are spliced
in as they are instead of being parsed and serialized again.
"""

from __future__ import annotations

import json
from typing import Any, Final

from kvcore.errors import KVError

JSON_CONTENT_TYPE: Final = b"application/json"

_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode

_SUCCESS_HEAD: Final = '{"success":true,"errors":[],"messages":[],"result":'
_FAILURE_HEAD: Final = '{"success":false,"errors":['
_FAILURE_TAIL: Final = '],"messages":[],"result":null}'

NULL_RESULT: Final = (_SUCCESS_HEAD + "null}").encode()


def dumps(obj: Any) -> str:
    """Compact JSON text (UTF-8 kept as is, NaN refused)."""
    return _dumps(obj)


def success(result: Any, result_info: dict[str, Any] | None = None) -> bytes:
    """A success envelope around any JSON-serializable `result`."""
    return success_raw(_dumps(result), result_info)


def success_raw(result_json: str, result_info: dict[str, Any] | None = None) -> bytes:
    """A success envelope around `result_json`, already serialized JSON text."""
    if result_info is None:
        return (_SUCCESS_HEAD + result_json + "}").encode()
    return (_SUCCESS_HEAD + result_json + ',"result_info":' + _dumps(result_info) + "}").encode()


def failure(code: int, message: str) -> bytes:
    return (_FAILURE_HEAD + _dumps({"code": code, "message": message}) + _FAILURE_TAIL).encode()


def error_body(exc: KVError) -> bytes:
    return failure(exc.code, exc.message)
