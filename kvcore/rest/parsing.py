"""Turning raw HTTP input into validated domain values, with Cloudflare-style 400s.

Nothing here trusts a framework's coercion: path segments (cut from the raw path by
`kvcore.rest.routing`) are percent-decoded strictly, query numbers are parsed by hand, bodies are read with a
cap and multipart bodies are parsed from the capped bytes. Every failure is a
`KVError` naming the field, so the app renders it as the failure envelope.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import parse_qsl, unquote_to_bytes

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header

from kvcore.errors import PayloadTooLarge, ValidationError
from kvcore.model import NO_CONDITION, Condition

# ---------------------------------------------------------------------------- path segments

_BAD_PERCENT: Final = re.compile(rb"%(?![0-9A-Fa-f]{2})")


def decode_segment(raw: bytes, field: str) -> str:
    """Strictly percent-decode one URL segment into text: a `%` not followed by two hex
    digits, or bytes that are not UTF-8, are a 400 naming `field`."""
    if b"%" in raw:
        if _BAD_PERCENT.search(raw):
            raise ValidationError(f"{field}: invalid percent-encoding")
        raw = unquote_to_bytes(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{field}: not valid UTF-8 after percent-decoding") from exc


# ---------------------------------------------------------------------------- query numbers


def header(scope: Mapping[str, Any], name: bytes) -> str | None:
    """A request header (`name` in lowercase, as ASGI gives them) as text, or None."""
    for k, v in scope["headers"]:
        if k == name:
            return bytes(v).decode("latin-1")
    return None


_NO_QUERY: Final[Mapping[str, str]] = MappingProxyType({})


def query(scope: Mapping[str, Any]) -> Mapping[str, str]:
    """A request's query parameters (the last of a repeated name wins, as in starlette)."""
    qs: bytes = scope.get("query_string", b"")
    return dict(parse_qsl(qs.decode("latin-1"), keep_blank_values=True)) if qs else _NO_QUERY


_DECIMAL: Final = re.compile(r"[0-9]{1,24}(?:\.[0-9]{0,24})?\Z")
_MAX_QUERY_NUMBER: Final = float(2**63)


def query_number(params: Mapping[str, str], name: str) -> float | None:
    """A non-negative decimal query parameter (`expiration`, `expiration_ttl`), or None."""
    text = params.get(name)
    if text is None:
        return None
    text = text.strip()
    if text.startswith("-"):
        raise ValidationError(f"{name}: must not be negative")
    if not _DECIMAL.match(text):
        raise ValidationError(f"{name}: must be a non-negative decimal number, got {text[:40]!r}")
    value = float(text)
    if value > _MAX_QUERY_NUMBER:
        raise ValidationError(f"{name}: {text[:40]} is too large")
    return value


def query_whole(params: Mapping[str, str], name: str) -> int | None:
    """A non-negative whole-number query parameter (`page`, `per_page`, `limit`), or None;
    its bounds are `kvcore.limits`' to check."""
    value = query_number(params, name)
    if value is None:
        return None
    if value != int(value):
        raise ValidationError(f"{name}: must be a whole number")
    return int(value)


def query_int(params: Mapping[str, str], name: str, lo: int, hi: int) -> int | None:
    """A whole-number query parameter within [lo, hi], or None."""
    n = query_whole(params, name)
    if n is None:
        return None
    if not lo <= n <= hi:
        raise ValidationError(f"{name}: {n} must be between {lo} and {hi}")
    return n


def query_choice(params: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    text = params.get(name)
    if text is None:
        return None
    if text not in choices:
        raise ValidationError(f"{name}: must be one of {', '.join(choices)}")
    return text


def strong_read(params: Mapping[str, str]) -> bool:
    """The edgekv extension `?consistency=strong` (or `eventual`, the default)."""
    return query_choice(params, "consistency", ("strong", "eventual")) == "strong"


# ---------------------------------------------------------------------------- conditions

_ETAG: Final = re.compile(r'(?:W/)?"?([0-9]{1,19})"?\Z')


def parse_condition(if_match: str | None, if_none_match: str | None) -> Condition:
    """`If-Match: "<version>"` (quotes optional) and `If-None-Match: *` (edgekv extension)."""
    if if_match is None and if_none_match is None:
        return NO_CONDITION
    version: int | None = None
    if if_match is not None:
        text = if_match.strip()
        if text == "*":
            raise ValidationError("If-Match: '*' is not supported; send the key's version (its ETag)")
        m = _ETAG.match(text)
        if m is None:
            raise ValidationError('If-Match: expected one version, as the ETag "<version>"')
        version = int(m.group(1))
    none_match = False
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise ValidationError("If-None-Match: only '*' (the key must not exist) is supported")
        none_match = True
    return Condition(if_match=version, if_none_match=none_match)


# ---------------------------------------------------------------------------- bodies


async def read_capped(
    chunks: AsyncIterator[bytes], content_length: str | None, limit: int, what: str
) -> bytes:
    """Read a request body of at most `limit` bytes: refuse it up front by its
    Content-Length, and stop reading as soon as the stream passes the limit."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError as exc:
            raise ValidationError("Content-Length: not a number") from exc
        if declared > limit:
            raise PayloadTooLarge(f"{what}: {declared} bytes exceeds the limit of {limit} bytes")
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"{what}: the request body exceeds the limit of {limit} bytes")
    return bytes(buf)


def parse_json_body(body: bytes, what: str) -> Any:
    if not body.strip():
        raise ValidationError(f"{what}: a JSON body is required")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"{what}: not valid JSON") from exc


def is_multipart(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().lstrip().startswith("multipart/form-data")


@dataclass(slots=True)
class _Part:
    headers: dict[bytes, bytes]
    data: bytearray


@dataclass(frozen=True, slots=True)
class ValueUpload:
    value: bytes
    metadata: Any  # the parsed `metadata` part (None when absent); its limits are the caller's


def parse_multipart_value(content_type: str, body: bytes) -> ValueUpload:
    """The `value` part (file or text, required) and optional `metadata` part (JSON) of a
    `multipart/form-data` PUT body. Truncated or malformed bodies are a 400."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise ValidationError("Content-Type: multipart/form-data without a boundary")
    parts: list[_Part] = []
    field: list[bytes] = []
    value: list[bytes] = []

    def on_part_begin() -> None:
        parts.append(_Part({}, bytearray()))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        parts[-1].data += data[start:end]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        value.append(data[start:end])

    def on_header_end() -> None:
        parts[-1].headers[b"".join(field).strip().lower()] = b"".join(value).strip()
        field.clear()
        value.clear()

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_part_data": on_part_data,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
        },
    )
    try:
        parser.write(body)
    except MultipartParseError as exc:
        raise ValidationError(f"multipart body: malformed ({exc})") from exc
    if parser.state != MultipartState.END:
        raise ValidationError("multipart body: truncated (no closing boundary)")

    found: dict[str, _Part] = {}
    for part in parts:
        _, disp = parse_options_header(part.headers.get(b"content-disposition", b""))
        name = disp.get(b"name", b"").decode("latin-1")
        if name in ("value", "metadata") and name not in found:
            found[name] = part
    if "value" not in found:
        raise ValidationError("value: the multipart body has no 'value' part")
    meta = found.get("metadata")
    return ValueUpload(value=bytes(found["value"].data), metadata=_metadata_part(meta) if meta else None)


def _metadata_part(part: _Part) -> Any:
    """The `metadata` part is JSON text. The Python SDK sends a *string* metadata as a
    bare text/plain part (not JSON-quoted); accept that form as the string it is."""
    raw = bytes(part.data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError("metadata: not valid UTF-8") from exc
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        ctype, _ = parse_options_header(part.headers.get(b"content-type", b""))
        if ctype == b"text/plain":
            return text
        raise ValidationError("metadata: not valid JSON") from exc
