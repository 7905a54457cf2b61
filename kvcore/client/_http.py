"""The HTTP requests and responses of the REST API, for the sync and async clients:
URLs, request shapes (`Call`), values, versions, and Cloudflare envelopes read back into
results or `kvcore.errors` classes (which class: `kvcore.client._errors`).

Nothing here performs I/O. Each client method builds a `Call`, hands it to its
transport (`kvcore.client._transport`), and parses the `httpx.Response` with the
functions below, so the two flavours cannot drift apart. (`kvcore.wire` is another
thing: protobuf <-> domain, for gRPC.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from kvcore.client._errors import error_from_response, first_error, for_code
from kvcore.errors import InternalError, ValidationError
from kvcore.limits import resolve_expiration, validate_point_key

API_PREFIX = "/client/v4"
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = "edgekv-client/0.1"

ValueType = Literal["text", "json", "bytes"]
Consistency = Literal["strong"]

# Files for httpx multipart: name -> (filename or None, content, content type).
MultipartFiles = dict[str, tuple[str | None, bytes | str, str]]


def normalize_endpoint(endpoint: str) -> str:
    """`127.0.0.1:8000`, `http://h:p`, `http://h:p/` and `http://h:p/client/v4` all mean the
    same API base: return it with a scheme and ending in `/client/v4` (no trailing slash)."""
    text = endpoint.strip()
    if not text:
        raise ValidationError("endpoint: must not be empty")
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValidationError(f"endpoint: {endpoint!r} is not an http(s) URL")
    path = parts.path.rstrip("/")
    if not path.endswith(API_PREFIX):
        path += API_PREFIX
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def quote_key(key: str) -> str:
    """Percent-encode a key as one path segment (every reserved character escaped),
    checked first as the server checks a key in a URL (`limits.validate_point_key`)."""
    validate_point_key(key)
    return quote(key, safe="")


def quote_id(value: str, field: str) -> str:
    if not value:
        raise ValidationError(f"{field}: must not be empty")
    return quote(value, safe="")


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request, independent of the sync or async transport that sends it."""

    method: str
    url: str
    params: dict[str, str] | None = None
    headers: dict[str, str] | None = None
    content: bytes | None = None
    json_body: Any = None
    files: MultipartFiles | None = None

    def send_kwargs(self, base_headers: dict[str, str]) -> dict[str, Any]:
        """The keyword arguments of `httpx.Client.request`: this call's headers over `base_headers`."""
        kwargs: dict[str, Any] = {"headers": {**base_headers, **(self.headers or {})}}
        if self.params:
            kwargs["params"] = self.params
        if self.content is not None:
            kwargs["content"] = self.content
        if self.json_body is not None:
            kwargs["json"] = self.json_body
        if self.files is not None:
            kwargs["files"] = self.files
        return kwargs


class Paths:
    """URL builder for one account under one API base."""

    def __init__(self, endpoint: str, account_id: str) -> None:
        self.base = normalize_endpoint(endpoint)
        self.account_id = account_id
        self.namespaces = f"{self.base}/accounts/{quote_id(account_id, 'account_id')}/storage/kv/namespaces"

    def namespace(self, namespace_id: str) -> str:
        return f"{self.namespaces}/{quote_id(namespace_id, 'namespace_id')}"

    def value(self, namespace_id: str, key: str) -> str:
        return f"{self.namespace(namespace_id)}/values/{quote_key(key)}"

    def metadata(self, namespace_id: str, key: str) -> str:
        return f"{self.namespace(namespace_id)}/metadata/{quote_key(key)}"


def list_params(prefix: str | None, limit: int | None, cursor: str | None) -> dict[str, str]:
    """The query of one page of a key listing (empty parts left out)."""
    params: dict[str, str] = {}
    if prefix:
        params["prefix"] = prefix
    if limit is not None:
        params["limit"] = str(limit)
    if cursor:
        params["cursor"] = cursor
    return params


def check(resp: httpx.Response) -> httpx.Response:
    """The response itself when it succeeded; else raises the error it reports."""
    if resp.is_success:
        return resp
    raise error_from_response(resp.status_code, resp.content)


def envelope(resp: httpx.Response) -> tuple[Any, dict[str, Any]]:
    """`(result, result_info)` of a successful enveloped response."""
    check(resp)
    try:
        doc = resp.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise InternalError(f"HTTP {resp.status_code}: response is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("success") is not True:
        code, message = first_error(resp.content)
        raise (for_code(code) or InternalError)(message or "request failed")
    info = doc.get("result_info")
    return doc.get("result"), (info if isinstance(info, dict) else {})


# -- values -----------------------------------------------------------------------------


def encode_value(value: str | bytes | bytearray | memoryview | dict[str, Any] | list[Any]) -> bytes:
    """str is stored as UTF-8, bytes as they are, a dict or list as its JSON text."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raise TypeError(f"value must be str, bytes, dict or list, not {type(value).__name__}")


def decode_value(body: bytes, type: ValueType) -> Any:
    if type == "bytes":
        return body
    if type == "text":
        return body.decode("utf-8", "replace")
    if type == "json":
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationError(f"value is not valid JSON: {exc}") from exc
    raise ValueError(f"type must be 'text', 'json' or 'bytes', not {type!r}")


def parse_etag(value: str | None) -> str | None:
    """`"42"` or `W/"42"` -> `42`."""
    if not value:
        return None
    text = value.strip()
    if text.startswith("W/"):
        text = text[2:]
    return text.strip('"') or None


def format_etag(version: str | int) -> str:
    text = str(version)
    return text if text.startswith('"') else f'"{text}"'


def condition_headers(if_match: str | int | None, if_none_match: bool) -> dict[str, str]:
    if if_match is not None and if_none_match:
        raise ValueError("if_match and if_none_match are mutually exclusive")
    if if_match is not None:
        return {"If-Match": format_etag(if_match)}
    if if_none_match:
        return {"If-None-Match": "*"}
    return {}


def expiration_params(
    expiration: int | float | None, expiration_ttl: int | float | None, now: float
) -> dict[str, str]:
    """The query parameters of a put, checked first against the server's own rules
    (`kvcore.limits.resolve_expiration`, at `now` by this machine's clock): a bad TTL or a
    millisecond expiration fails here with the server's message, before anything is sent."""
    resolve_expiration(now, expiration, expiration_ttl)
    params: dict[str, str] = {}
    if expiration is not None:
        params["expiration"] = str(int(expiration))
    if expiration_ttl is not None:
        params["expiration_ttl"] = str(int(expiration_ttl))
    return params
