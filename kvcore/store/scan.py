"""Iterator-based reads over column families: key pages, the log, the expiry index.

Kept apart from rocks.py because each owns a RocksDB iterator whose lifetime matters
(an open iterator pins the DB, so every one is dropped before returning).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from rocksdict import ReadOptions

from kvcore.model import Change, KeyInfo, KeyPage
from kvcore.store import codec

# A list page gives up scanning past expired (not yet purged) entries after this many
# and returns what it has with a cursor, so one request's work stays bounded.
LIST_SCAN_BUDGET: Final = 10_000


def iter_rows(cf: Any, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) of a column family in key order over [start, end); the iterator is
    dropped when the generator is closed or exhausted."""
    opts = ReadOptions()
    opts.set_iterate_upper_bound(end)
    it = cf.iter(opts)
    try:
        it.seek(start)
        while it.valid():
            yield it.key(), it.value()
            it.next()
    finally:
        del it


def key_page(rows: Iterable[tuple[bytes, bytes]], nsb: bytes, low: bytes, limit: int, now: float) -> KeyPage:
    """Up to `limit` live keys of namespace `nsb` prefixed by `low`, from `rows`: the
    namespace's (entry key, record) pairs in key order from the list's start on (any
    engine's scan). The cursor is set only when a live key remains after the page (or
    the scan budget ran out), so an empty cursor always means the listing is complete.
    """
    keys: list[KeyInfo] = []
    last = b""  # last key consumed: the resume point
    more = False
    skipped = 0
    for ekey, raw in rows:
        if not ekey.startswith(low):
            break
        _, expiration = codec.entry_version_expiration(raw)
        if codec.is_live(expiration, now):
            if len(keys) == limit:
                more = True
                break
            keys.append(codec.decode_key_info(codec.entry_name(ekey), raw))
            last = ekey
        else:
            skipped += 1
            if skipped >= LIST_SCAN_BUDGET:
                # Too many expired entries in a row: stop, resume after them.
                last, more = ekey, True
                break
    if hasattr(rows, "close"):
        rows.close()
    return KeyPage(keys, codec.encode_cursor(last[len(nsb) :]) if more else "")


def log_range(log: Any, after: int, upto: int, limit: int) -> list[Change]:
    """Changes with after < seq <= upto, at most `limit`, in seq order."""
    opts = ReadOptions()
    opts.set_iterate_upper_bound(codec.u64(upto + 1))
    out: list[Change] = []
    it = log.iter(opts)
    try:
        it.seek(codec.u64(after + 1))
        while it.valid() and len(out) < limit:
            out.append(codec.decode_change(codec.read_u64(it.key()), it.value()))
            it.next()
    finally:
        del it
    return out


def log_bounds(log: Any) -> tuple[int, int] | None:
    """(first, last) seq present in the log, or None when it is empty."""
    it = log.iter()
    try:
        it.seek_to_first()
        if not it.valid():
            return None
        first = codec.read_u64(it.key())
        it.seek_to_last()
        return first, codec.read_u64(it.key())
    finally:
        del it


def expired_index_keys(expiry: Any, now: float, limit: int) -> list[bytes]:
    """Up to `limit` expiry-index keys with expiration <= now, oldest first."""
    opts = ReadOptions()
    opts.set_iterate_upper_bound(codec.u64(int(now) + 1))
    out: list[bytes] = []
    it = expiry.iter(opts)
    try:
        it.seek_to_first()
        while it.valid() and len(out) < limit:
            out.append(it.key())
            it.next()
    finally:
        del it
    return out
