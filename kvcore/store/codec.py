"""Byte encodings of everything `RocksStore` keeps in RocksDB.

All keys are chosen so RocksDB's bytewise comparator gives the order we need:

* entries: 16 raw bytes of namespace id + the UTF-8 key, so iterating a namespace
  is UTF-8 byte order of key names (what Cloudflare's list-keys promises) and a
  whole namespace is one contiguous range;
* change log and expiry index: big-endian integers first, so numeric order is
  byte order and a trim or purge is a prefix range.

Records are packed with `struct` rather than JSON: the value is appended raw after a
fixed header, so a read never copies it through a text codec. Metadata stays the
JSON text it arrived as (see kvcore.model).
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Final, NamedTuple

from kvcore.errors import ValidationError
from kvcore.limits import MAX_KEY_BYTES
from kvcore.model import Change, ChangeKind, Entry, KeyInfo, Namespace, Permission, Token

NS_ID_BYTES: Final = 16
# UTF-8 never contains 0xFF, so (ns + b"\xff") sorts after every key of the namespace:
# the exclusive end of a namespace's range.
_NS_END: Final = b"\xff"

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_F64 = struct.Struct(">d")
# Entry header: version (seq), expiration (0 = never), metadata length + 1 (0 = none).
_ENTRY = struct.Struct(">QqI")
# Change header: kind, commit_time, expiration (0 = none), flags.
_CHANGE = struct.Struct(">BdqB")
_HAS_METADATA: Final = 1
_HAS_TOKEN: Final = 2

META_LAST_SEQ: Final = b"last_seq"


# ---------------------------------------------------------------- integers


def u64(n: int) -> bytes:
    return _U64.pack(n)


def read_u64(raw: bytes) -> int:
    return int(_U64.unpack_from(raw)[0])


# ---------------------------------------------------------------- entry keys


def ns_bytes(namespace_id: str) -> bytes:
    return bytes.fromhex(namespace_id)


def entry_key(ns: bytes, key: str) -> bytes:
    return ns + key.encode("utf-8")


def entry_name(ekey: bytes) -> str:
    return ekey[NS_ID_BYTES:].decode("utf-8")


def namespace_range(ns: bytes) -> tuple[bytes, bytes]:
    """[begin, end) covering every entry of a namespace."""
    return ns, ns + _NS_END


def expiry_key(expiration: int, ekey: bytes) -> bytes:
    return _U64.pack(expiration) + ekey


def split_expiry_key(raw: bytes) -> tuple[int, bytes]:
    return int(_U64.unpack_from(raw)[0]), raw[8:]


# ---------------------------------------------------------------- entry records


class RecordHeader(NamedTuple):
    version: int
    expiration: int  # 0 = never
    metadata_json: str | None
    value_offset: int


def encode_entry(version: int, expiration: int | None, metadata_json: str | None, value: bytes) -> bytes:
    if metadata_json is None:
        return _ENTRY.pack(version, expiration or 0, 0) + value
    meta = metadata_json.encode("utf-8")
    return b"".join((_ENTRY.pack(version, expiration or 0, len(meta) + 1), meta, value))


def entry_header(raw: bytes) -> RecordHeader:
    version, expiration, meta_len = _ENTRY.unpack_from(raw)
    offset = _ENTRY.size
    if meta_len == 0:
        return RecordHeader(version, expiration, None, offset)
    end = offset + meta_len - 1
    return RecordHeader(version, expiration, raw[offset:end].decode("utf-8"), end)


def entry_version_expiration(raw: bytes) -> tuple[int, int]:
    """The two fields the writer needs to decide create/update and conditions."""
    version, expiration, _ = _ENTRY.unpack_from(raw)
    return int(version), int(expiration)


def decode_entry(key: str, raw: bytes) -> Entry:
    h = entry_header(raw)
    return Entry(key, raw[h.value_offset :], h.metadata_json, h.expiration or None, h.version)


def decode_key_info(key: str, raw: bytes) -> KeyInfo:
    h = entry_header(raw)
    return KeyInfo(key, h.expiration or None, h.metadata_json)


def is_live(expiration: int, now: float) -> bool:
    """A value expires at its expiration second: live while expiration > now."""
    return expiration == 0 or expiration > now


# ---------------------------------------------------------------- strings


def _pack_strs(*items: str) -> bytes:
    parts: list[bytes] = []
    for s in items:
        b = s.encode("utf-8")
        parts.append(_U32.pack(len(b)))
        parts.append(b)
    return b"".join(parts)


def _unpack_strs(raw: bytes, offset: int, count: int) -> tuple[list[str], int]:
    out: list[str] = []
    for _ in range(count):
        (n,) = _U32.unpack_from(raw, offset)
        offset += 4
        out.append(raw[offset : offset + n].decode("utf-8"))
        offset += n
    return out, offset


# ---------------------------------------------------------------- namespaces


def encode_namespace(ns: Namespace) -> bytes:
    return _pack_strs(ns.account_id, ns.title)


def decode_namespace(key: bytes, raw: bytes) -> Namespace:
    (account_id, title), _ = _unpack_strs(raw, 0, 2)
    return Namespace(key.hex(), account_id, title)


def title_key(account_id: str, title: str) -> bytes:
    # Account ids are [0-9A-Za-z_-] (validated), so NUL separates unambiguously.
    return account_id.encode("utf-8") + b"\x00" + title.encode("utf-8")


# ---------------------------------------------------------------- tokens


def encode_token(token: Token) -> bytes:
    return _pack_strs(token.account_id, str(token.permission), token.secret_hash) + _F64.pack(token.created)


def decode_token(key: bytes, raw: bytes) -> Token:
    (account_id, permission, secret_hash), offset = _unpack_strs(raw, 0, 3)
    (created,) = _F64.unpack_from(raw, offset)
    return Token(key.decode("ascii"), account_id, Permission(permission), secret_hash, created)


# ---------------------------------------------------------------- change log


def encode_change(change: Change) -> bytes:
    """The log record: everything in a Change except its seq (the key) and value."""
    flags = (_HAS_METADATA if change.metadata_json is not None else 0) | (
        _HAS_TOKEN if change.token is not None else 0
    )
    head = _CHANGE.pack(int(change.kind), change.commit_time, change.expiration or 0, flags)
    body = _pack_strs(
        change.namespace_id, change.account_id, change.key, change.metadata_json or "", change.title
    )
    if change.token is None:
        return head + body
    return head + body + _pack_strs(change.token.id) + encode_token(change.token)


def decode_change(seq: int, raw: bytes) -> Change:
    kind, commit_time, expiration, flags = _CHANGE.unpack_from(raw)
    (ns, account, key, meta, title), offset = _unpack_strs(raw, _CHANGE.size, 5)
    token = None
    if flags & _HAS_TOKEN:
        (token_id,), offset = _unpack_strs(raw, offset, 1)
        token = decode_token(token_id.encode("ascii"), raw[offset:])
    return Change(
        seq=seq,
        kind=ChangeKind(kind),
        commit_time=commit_time,
        namespace_id=ns,
        account_id=account,
        key=key,
        expiration=expiration or None,
        metadata_json=meta if flags & _HAS_METADATA else None,
        title=title,
        token=token,
    )


# ---------------------------------------------------------------- list cursors


def encode_cursor(position: bytes) -> str:
    """Opaque cursor: the key name bytes the next page starts after."""
    return base64.urlsafe_b64encode(position).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> bytes:
    try:
        raw = cursor.encode("ascii")
        decoded = base64.b64decode(raw + b"=" * (-len(raw) % 4), altchars=b"-_", validate=True)
        decoded.decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError) as exc:
        raise ValidationError("cursor: malformed cursor") from exc
    if not 0 < len(decoded) <= MAX_KEY_BYTES:
        raise ValidationError("cursor: malformed cursor")
    return decoded
