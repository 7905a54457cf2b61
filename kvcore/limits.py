"""Cloudflare Workers KV limits and the validation that enforces them.

Every entry point (REST, gRPC, CLI) validates through these functions, so a limit is
stated once. Errors name the field and the limit.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from kvcore.errors import PayloadTooLarge, ValidationError

MAX_KEY_BYTES: Final = 512
MAX_VALUE_BYTES: Final = 25 * 1024 * 1024  # 26,214,400
MAX_METADATA_BYTES: Final = 1024
MIN_EXPIRATION_TTL_S: Final = 60
MIN_EXPIRATION_AHEAD_S: Final = 60
MAX_BULK_ITEMS: Final = 10_000
MAX_BULK_BODY_BYTES: Final = 100 * 1000 * 1000  # "less than 100 megabytes"
MAX_BULK_GET_KEYS: Final = 100
MIN_LIST_LIMIT: Final = 10
# Workers' `get(key, {cacheTtl})`: edge cache time, at least 30 s (edgekv keeps C2 instead).
MIN_CACHE_TTL_S: Final = 30
MAX_LIST_LIMIT: Final = 1000
DEFAULT_LIST_LIMIT: Final = 1000
MAX_TITLE_CHARS: Final = 512
MAX_PER_PAGE: Final = 1000
DEFAULT_PER_PAGE: Final = 20
MAX_NAMESPACES_PER_ACCOUNT: Final = 1000
# Expirations beyond this are surely a unit mistake (milliseconds); also keeps the
# value inside a signed 64-bit field everywhere.
MAX_EXPIRATION_EPOCH_S: Final = 2**53

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_ACCOUNT = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


def validate_key(key: str, field: str = "key_name") -> str:
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{field}: not valid UTF-8") from exc
    if size == 0:
        raise ValidationError(f"{field}: must not be empty")
    if size > MAX_KEY_BYTES:
        raise ValidationError(f"{field}: {size} bytes exceeds the limit of {MAX_KEY_BYTES} bytes")
    if key in (".", ".."):
        raise ValidationError(f"{field}: must not be '.' or '..'")
    return key


def validate_value(value: bytes, field: str = "value") -> bytes:
    if len(value) > MAX_VALUE_BYTES:
        raise PayloadTooLarge(
            f"{field}: {len(value)} bytes exceeds the limit of {MAX_VALUE_BYTES} bytes (25 MiB)"
        )
    return value


def encode_metadata(metadata: Any, field: str = "metadata") -> str | None:
    """Serialize metadata compactly and check the 1024-byte limit on the result."""
    if metadata is None:
        return None
    try:
        text = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{field}: not serializable as JSON ({exc})") from exc
    return check_metadata_json(text, field)


def check_metadata_json(text: str, field: str = "metadata") -> str:
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise PayloadTooLarge(
            f"{field}: {size} bytes serialized exceeds the limit of {MAX_METADATA_BYTES} bytes"
        )
    return text


def parse_metadata_json(text: str | bytes, field: str = "metadata") -> str | None:
    """Parse client-supplied metadata JSON text; return its canonical serialization."""
    try:
        parsed = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{field}: not valid JSON") from exc
    return encode_metadata(parsed, field)


def resolve_expiration(
    now: float, expiration: float | None, expiration_ttl: float | None, field_prefix: str = ""
) -> int | None:
    """Turn `expiration` / `expiration_ttl` into one absolute epoch second (TTL wins)."""
    if expiration_ttl is not None:
        ttl = _whole_number(expiration_ttl, f"{field_prefix}expiration_ttl")
        if ttl < MIN_EXPIRATION_TTL_S:
            raise ValidationError(
                f"{field_prefix}expiration_ttl: {ttl} is below the minimum of {MIN_EXPIRATION_TTL_S} seconds"
            )
        if ttl > MAX_EXPIRATION_EPOCH_S:
            raise ValidationError(f"{field_prefix}expiration_ttl: {ttl} is too large")
        return int(now) + ttl
    if expiration is not None:
        exp = _whole_number(expiration, f"{field_prefix}expiration")
        if exp > MAX_EXPIRATION_EPOCH_S:
            raise ValidationError(f"{field_prefix}expiration: {exp} is too large (epoch seconds expected)")
        if exp < now + MIN_EXPIRATION_AHEAD_S:
            raise ValidationError(
                f"{field_prefix}expiration: {exp} must be at least {MIN_EXPIRATION_AHEAD_S} seconds "
                "in the future (epoch seconds)"
            )
        return exp
    return None


def _whole_number(value: float, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field}: must be a number")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValidationError(f"{field}: must be a finite number")
    return int(value)


def validate_title(title: Any) -> str:
    if not isinstance(title, str):
        raise ValidationError("title: must be a string")
    if not title.strip():
        raise ValidationError("title: must not be empty")
    if len(title) > MAX_TITLE_CHARS:
        raise ValidationError(f"title: {len(title)} characters exceeds the limit of {MAX_TITLE_CHARS}")
    return title


def validate_namespace_id(namespace_id: str) -> str:
    """A well-formed id that matches nothing is a 404; a malformed one cannot exist either,
    so both read as 'namespace not found' (callers raise NamespaceNotFound)."""
    return namespace_id if _HEX32.match(namespace_id) else ""


def is_valid_account_id(account_id: str) -> bool:
    return bool(_ACCOUNT.match(account_id))


def validate_account_id(account_id: str) -> str:
    if not is_valid_account_id(account_id):
        raise ValidationError("account_id: must be 1 to 32 characters of [0-9A-Za-z_-]")
    return account_id


NAMESPACE_ORDERS: Final = ("id", "title")
DIRECTIONS: Final = ("asc", "desc")


def validate_order(order: str, direction: str) -> tuple[str, str]:
    if order not in NAMESPACE_ORDERS:
        raise ValidationError("order: must be 'id' or 'title'")
    if direction not in DIRECTIONS:
        raise ValidationError("direction: must be 'asc' or 'desc'")
    return order, direction


def validate_list_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIST_LIMIT
    if not MIN_LIST_LIMIT <= limit <= MAX_LIST_LIMIT:
        raise ValidationError(f"limit: {limit} must be between {MIN_LIST_LIMIT} and {MAX_LIST_LIMIT}")
    return limit


def validate_prefix(prefix: str) -> str:
    """A list prefix is at most a key's length."""
    if len(prefix.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise ValidationError(f"prefix: longer than {MAX_KEY_BYTES} bytes")
    return prefix


def validate_page(page: int | None, per_page: int | None) -> tuple[int, int]:
    p = 1 if page is None else page
    pp = DEFAULT_PER_PAGE if per_page is None else per_page
    if p < 1 or p > 2**31:
        raise ValidationError(f"page: {p} must be at least 1")
    if not 1 <= pp <= MAX_PER_PAGE:
        raise ValidationError(f"per_page: {pp} must be between 1 and {MAX_PER_PAGE}")
    return p, pp


def validate_bulk_count(count: int, what: str = "bulk write") -> None:
    if count > MAX_BULK_ITEMS:
        raise PayloadTooLarge(f"{what}: {count} items exceeds the limit of {MAX_BULK_ITEMS}")


def validate_bulk_get_count(count: int) -> None:
    if count > MAX_BULK_GET_KEYS:
        raise ValidationError(f"keys: {count} keys exceeds the bulk get limit of {MAX_BULK_GET_KEYS}")
    if count == 0:
        raise ValidationError("keys: at least one key is required")
