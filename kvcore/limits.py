"""Cloudflare Workers KV limits and the validation that enforces them.

Every entry point (REST, gRPC, CLI) validates through these functions, so a limit is
stated once. Errors name the field and the limit.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from kvcore.errors import KeyTooLong, MalformedNamespaceId, PayloadTooLarge, ValidationError
from kvcore.model import WriteItem

MAX_KEY_BYTES: Final = 512
MAX_VALUE_BYTES: Final = 25 * 1024 * 1024  # 26,214,400
MAX_METADATA_BYTES: Final = 1024
# Expirations: a TTL of at least 60 s, an absolute expiration at least 60 s ahead, both
# in whole seconds (Cloudflare's "Expiration TTL must be at least 60"; Miniflare's
# validator floors now to the second before comparing).
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
# The latest expiration, 2^31-1 (2038-01-19T03:14:07Z): Cloudflare's runtime types
# put()'s `expiration` and `expirationTtl` as 32-bit ints (workerd api/kv.h `PutOptions`;
# "Value out of range", miniflare issue #485), and a value past it is almost always
# epoch milliseconds. Applies to an absolute expiration and to now + expiration_ttl.
MAX_EXPIRATION_EPOCH_S: Final = 2**31 - 1
_MAX_EXPIRATION_TEXT: Final = "2038-01-19T03:14:07Z"
_MS_LOOKALIKE: Final = 10**11  # epoch ms since 1973; epoch seconds in the year 5138

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_ACCOUNT = re.compile(r"^[0-9A-Za-z_-]{1,32}$")


def validate_key(key: str, field: str = "key_name", *, in_url: bool = False) -> str:
    """A key of 1 to 512 UTF-8 bytes, not '.' or '..'. Over 512 bytes a key named in a URL
    is Cloudflare's 414 (`KeyTooLong`); one in a request body, a 400. Both say it as
    Cloudflare does: "UTF-8 encoded length of 513 exceeds key length limit of 512."."""
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{field}: not valid UTF-8") from exc
    if size == 0:
        raise ValidationError(f"{field}: must not be empty")
    if size > MAX_KEY_BYTES:
        check_key_length(size, field, in_url=in_url)
    if key in (".", ".."):
        raise ValidationError(f"{field}: must not be '.' or '..'")
    return key


def validate_point_key(key: str) -> str:
    """The key of a single-key write or read, as the REST path names it (`key_name`, 414
    over 512 bytes): the same field and message whether it came by URL or by gRPC."""
    return validate_key(key, "key_name", in_url=True)


def validate_write_item(item: WriteItem, now: float, where: str = "") -> WriteItem:
    """A written item as it enters a process from another (gRPC `Put`/`BulkPut`, the
    write stream): its key (`validate_point_key`, or `{where}key` in a bulk), value and
    metadata sizes, and an absolute expiration as `check_forwarded_expiration` takes it
    at `now` (epoch seconds). Field names follow the REST API's: `value`, `metadata`,
    `expiration`, prefixed with `where` (a bulk's "[3]."). Raises the KVError naming it."""
    if where:
        validate_key(item.key, f"{where}key")
    else:
        validate_point_key(item.key)
    validate_value(item.value, f"{where}value")
    if item.metadata_json is not None:
        check_metadata_json(item.metadata_json, f"{where}metadata")
    check_forwarded_expiration(now, item.expiration, f"{where}expiration")
    return item


def check_key_length(size: int, field: str, *, in_url: bool) -> None:
    """Refuse a key (or list prefix) of `size` UTF-8 bytes over MAX_KEY_BYTES."""
    if size > MAX_KEY_BYTES:
        text = f"UTF-8 encoded length of {size} exceeds key length limit of {MAX_KEY_BYTES}."
        if in_url:
            raise KeyTooLong(text)
        raise ValidationError(f"{field}: {text}")


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
    """Turn `expiration` / `expiration_ttl` (epoch seconds / seconds) into one absolute
    epoch second, or None; the TTL wins when both are given (an `expiration` past the
    upper bound is refused even then, as workerd's int32 options are). Fractions are dropped.

    In whole seconds, as Cloudflare and Miniflare (`now = floor(ms / 1000)`): a TTL of at
    least 60, an expiration at least `floor(now) + 60`. Either way the result must not
    pass `MAX_EXPIRATION_EPOCH_S`. Raises `ValidationError` naming the field; the texts
    follow Cloudflare's ("Invalid expiration_ttl of 59. Expiration TTL must be at least 60.").
    """
    now_s = math.floor(now)
    if expiration_ttl is not None:
        if expiration is not None:  # ignored, but a unit mistake is refused, as the runtime does
            check_expiration_bound(
                _whole_number(expiration, f"{field_prefix}expiration"), field_prefix + "expiration"
            )
        field = f"{field_prefix}expiration_ttl"
        ttl = _whole_number(expiration_ttl, field)
        if ttl < MIN_EXPIRATION_TTL_S:
            raise ValidationError(
                f"{field}: Invalid expiration_ttl of {ttl}. "
                f"Expiration TTL must be at least {MIN_EXPIRATION_TTL_S}."
            )
        if now_s + ttl > MAX_EXPIRATION_EPOCH_S:
            raise ValidationError(
                f"{field}: Invalid expiration_ttl of {ttl}. Now + {ttl} is after {MAX_EXPIRATION_EPOCH_S} "
                f"({_MAX_EXPIRATION_TEXT}), the latest expiration; expiration_ttl is in seconds, "
                "not milliseconds."
            )
        return now_s + ttl
    if expiration is not None:
        field = f"{field_prefix}expiration"
        exp = _whole_number(expiration, field)
        check_expiration_bound(exp, field)
        if exp < now_s + MIN_EXPIRATION_AHEAD_S:
            raise ValidationError(
                f"{field}: Invalid expiration of {exp}. Expiration times must be at least "
                f"{MIN_EXPIRATION_AHEAD_S} seconds in the future (epoch seconds, now {now_s})."
            )
        return exp
    return None


def check_expiration_bound(expiration: int, field: str = "expiration") -> int:
    """An absolute expiration within (0, MAX_EXPIRATION_EPOCH_S]; past the upper bound the
    message names the likely mistake, milliseconds (now in ms is ~1.7e12)."""
    if expiration > MAX_EXPIRATION_EPOCH_S:
        hint = (
            "it looks like epoch milliseconds; expiration is in epoch seconds"
            if expiration >= _MS_LOOKALIKE
            else "expiration is in epoch seconds, not milliseconds"
        )
        raise ValidationError(
            f"{field}: Invalid expiration of {expiration}. It is after {MAX_EXPIRATION_EPOCH_S} "
            f"({_MAX_EXPIRATION_TEXT}), the latest expiration: {hint}."
        )
    if expiration <= 0:
        raise ValidationError(
            f"{field}: Invalid expiration of {expiration}. Must be a positive epoch second."
        )
    return expiration


def check_forwarded_expiration(now: float, expiration: int | None, field: str = "expiration") -> int | None:
    """An absolute expiration resolved by a caller (gRPC: a replica resolved the request's
    TTL against its own clock): within the bounds and after `floor(now)`. The 60-second
    minimum was the caller's to check; holding it again here would refuse writes from a
    replica whose clock runs a few seconds behind, so up to 60 s of skew is tolerated."""
    if expiration is None:
        return None
    check_expiration_bound(expiration, field)
    if expiration <= math.floor(now):
        raise ValidationError(
            f"{field}: Invalid expiration of {expiration}. Please specify an integer greater than "
            "the current number of seconds since the UNIX epoch."
        )
    return expiration


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


def is_namespace_id(namespace_id: str) -> bool:
    """Whether `namespace_id` has the one form edgekv (and Cloudflare) issues: 32 lowercase hex."""
    return _HEX32.match(namespace_id) is not None


def validate_namespace_id(namespace_id: str) -> str:
    """A namespace id from a request (REST): 400, code 10011, unless it has the issued form,
    as Cloudflare answers ("could not parse UUID"); a well-formed id naming nothing is
    then the backend's 404 / 10013. Uppercase and hyphenated UUID forms are refused too,
    not normalized: the id is compared as issued."""
    if not _HEX32.match(namespace_id):
        raise MalformedNamespaceId(
            f"could not parse UUID from request's namespace_id: {namespace_id[:64]!r} "
            "(expected 32 lowercase hex characters)"
        )
    return namespace_id


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
    """A list prefix (a query parameter) is at most a key's length."""
    check_key_length(len(prefix.encode("utf-8", "surrogatepass")), "prefix", in_url=True)
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
