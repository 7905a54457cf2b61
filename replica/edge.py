"""The edge: what a replica holds locally, and every rule for reading and changing it. No I/O.

"Edge" in this code means this and only this: the replica's local state, `EdgeState`:
the hot-key cache, the negative cache, the race guard and the `Directory` of
namespaces and tokens. It applies change-stream batches, read-through results and the
replica's own acknowledged writes; `ReplicaBackend` only calls central and
`StreamSubscriber` only moves batches, so the rules are unit-tested by feeding domain
objects. Its counters are plain ints, exported by `replica.metrics`.

Read rules (DESIGN.md C4, C5, C7):
- Every read counts in the frequency sketch, hit or miss: admission ranks reads.
- A plain read of a key in a namespace known here (and the caller's) is answered
  locally: a live cached copy, with its age (seconds since this version was installed
  or confirmed), or a negative entry, "not found". Anything else reads through:
  strong reads (C5), namespaces not known here (central checks them), misses.
- A metadata read fetches only the metadata, unless the key is hot enough to be
  admitted: then the whole value, so it can be cached.
- After a read-through, a copy newer than central's answer that arrived on the stream
  meanwhile is served instead (C4). Local copies keep answering while central is away
  (C7); `ReplicaBackend` fails what needs central fast.

Change rules (C1-C4):
- Versions never go back (C4): a cached entry is replaced only by a higher version;
  a negative entry taken at seq A is dropped by a change with seq > A, kept
  otherwise. Removing what is cached is always safe (the next read goes to
  central); installing needs proof that nothing newer has been applied, which is
  what the `RecentChanges` guard gives for results read at central's `as_of_seq`.
  A version served by central (read-through, metadata or bulk read) is remembered
  either way, so no older copy can be installed and served after it.
- Creates drop the key's negative entry (C1). A carried value is *offered* to the
  cache (frequency admission), not forced: a key that readers were just asking for
  (and got 404) has reads in the sketch and is installed at once; a key nobody read
  here stays central and is read through on its first read, which central answers
  with the new value anyway. Forcing every create into every region's cache would
  let a write burst evict the regions' hot sets.
- Deletes from the stream invalidate but add no negative entry: a lazily flushed
  delete can arrive after a newer create of the same key (held changes are older
  than the creates pushed past them), and a negative entry would then hide a live
  key. A read of it caches the negative answer with central's seq instead.
- The replica's own acknowledged writes are installed at once (C3). A value the stream
  brings for a key with a put of this region's still on its way (`own_puts`; usually
  that put's own change, which central pushes before it acknowledges) is not offered
  to the cache: the acknowledgement installs that version right after, and a put that
  is never acknowledged here leaves the key to be read from central.
- Entries are installed only for namespaces in the directory: without the stream
  nothing would ever invalidate them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kvcore.cache import HotKeyCache, NegativeCache, entry_size
from kvcore.clock import Clock
from kvcore.errors import KeyNotFound
from kvcore.model import (
    KEY_KINDS,
    BulkResult,
    Change,
    ChangeBatch,
    ChangeKind,
    Entry,
    Namespace,
    ReadResult,
    WriteItem,
    WriteResult,
)
from kvcore.settings import ReplicaSettings
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    Op,
    PutOp,
    RenameNamespaceOp,
)
from replica.directory import Directory
from replica.recent import RecentChanges

KeyRef = tuple[str, str]  # (namespace_id, key)


@dataclass(slots=True)
class Cached:
    """A cached value: `installed_at` (wall clock) is when this version entered the cache."""

    entry: Entry
    installed_at: float


@dataclass(frozen=True, slots=True)
class ReadThrough:
    """A read local state cannot answer: ask central for `ref` (only its metadata when
    `metadata_only`), then give the answer to `EdgeState.after_read_through`."""

    ref: KeyRef
    metadata_only: bool = False


class EdgeState:
    def __init__(
        self,
        *,
        clock: Clock,
        cache_bytes: int,
        admit_threshold: int = 2,
        half_life_s: float = 60.0,
        negative_ttl_s: float = 60.0,
        sketch_items: int = 100_000,
        negative_max: int = 100_000,
        recent_window_s: float = 10.0,
        recent_max: int = 100_000,
    ) -> None:
        self.clock = clock
        self.cache: HotKeyCache[KeyRef, Cached] = HotKeyCache(
            cache_bytes,
            admit_threshold=admit_threshold,
            clock=clock,
            sketch_items=sketch_items,
            half_life_s=half_life_s,
        )
        self.negative: NegativeCache[KeyRef] = NegativeCache(negative_max, ttl_s=negative_ttl_s, clock=clock)
        self.recent: RecentChanges[KeyRef] = RecentChanges(
            window_s=recent_window_s, max_keys=recent_max, clock=clock
        )
        self.directory = Directory()
        # Keys with a put of this region's forwarded and not yet answered (key -> how many).
        self.own_puts: dict[KeyRef, int] = {}
        self.applied_seq = 0  # every change <= it has been applied
        self.committed_seq = 0  # central's, as last heard
        # Value reads by outcome (edgekv_cache_requests_total{result}).
        self.hits = self.negative_hits = self.misses = 0

    @classmethod
    def from_settings(cls, settings: ReplicaSettings, clock: Clock) -> EdgeState:
        """The edge of a replica process (`edgekv replica`'s flags)."""
        return cls(
            clock=clock,
            cache_bytes=settings.cache_bytes,
            admit_threshold=settings.admit_threshold,
            half_life_s=settings.frequency_half_life_s,
            negative_ttl_s=settings.negative_ttl_s,
        )

    # ------------------------------------------------------------------ reads

    def read_local(
        self, ref: KeyRef, account_id: str, *, strong: bool = False, metadata_only: bool = False
    ) -> ReadResult | ReadThrough:
        """The local answer to `account_id`'s read of `ref` (source "cache"), or what to ask
        central; counts the read. Raises KeyNotFound on a negative entry, NamespaceNotFound
        for a namespace of another account. The rules are the module docstring's."""
        local = self.directory.owns(account_id, ref[0])
        freq = self.cache.record_read(ref)
        if local and not strong:
            cached = self.lookup(ref)
            if cached is not None:
                self.hits += 1
                return ReadResult(cached.entry, max(0.0, self.clock.now() - cached.installed_at), "cache")
            if ref in self.negative:
                self.negative_hits += 1
                raise KeyNotFound()
        self.misses += 1
        return ReadThrough(ref, metadata_only and freq < self.cache.admit_threshold)

    def after_read_through(self, read: ReadThrough, entry: Entry | None, as_of_seq: int) -> ReadResult:
        """Central's answer to `read` (the entry or None, read at its committed seq
        `as_of_seq`): installed by the rules, then served unless a newer copy is here
        (source "cache" then, else "read-through"). Raises KeyNotFound for None."""
        ref = read.ref
        if read.metadata_only and entry is not None:
            self._saw_version(ref, entry.version)  # no value to install
        else:
            self._install_read(ref, entry, as_of_seq)
        cached = self.lookup(ref)
        if cached is not None and (entry is None or cached.entry.version > entry.version):
            return ReadResult(cached.entry, 0.0, "cache")
        if entry is None:
            raise KeyNotFound()
        return ReadResult(entry, 0.0, "read-through")

    def after_bulk_read(
        self, namespace_id: str, keys: Sequence[str], entries: Sequence[Entry | None]
    ) -> None:
        """A bulk read at central served these versions (no seq comes with it, so nothing
        is installed): older local copies may not be served after them (C4)."""
        for key, entry in zip(keys, entries, strict=False):
            if entry is not None:
                self._saw_version((namespace_id, key), entry.version)

    def cached_read(
        self, secret_hash: str, account_id: str, namespace_id: str, key: str
    ) -> tuple[Entry, float] | None:
        """The REST hot path's read (kvcore.rest.fastpath `CachedReader`): the cached entry
        of a key and its age in seconds, for a live token of `account_id`, counted as a
        read and a hit exactly as `read_local` counts it; None (nothing counted) whenever
        the full path must answer instead: unknown token, other account, namespace not
        known here, not cached, expired. A tuple, not a ReadResult: this runs on every
        hot read, and a frozen dataclass costs more to build than the lookup itself."""
        directory = self.directory
        token = directory.tokens.get(secret_hash)
        if token is None or token.account_id != account_id:
            return None
        ns = directory.namespaces.get(namespace_id)
        if ns is None or ns.account_id != account_id:
            return None
        cache = self.cache
        record = cache.entry((namespace_id, key))  # then `record_hit`: one lookup, not two
        if record is None:
            return None
        cached = record.value
        entry = cached.entry
        now = self.clock.now()
        if entry.expiration is not None and entry.expiration <= now:
            return None  # `read_local` drops it (`lookup`) and reads through
        cache.record_hit(record)
        self.hits += 1
        age_s = now - cached.installed_at
        return entry, age_s if age_s > 0.0 else 0.0

    def lookup(self, ref: KeyRef) -> Cached | None:
        """The cached live copy of `ref`, not counted as a read; an expired one is dropped
        and reported missing."""
        c = self.peek(ref)
        if c is None and ref in self.cache:
            self.cache.invalidate(ref)  # expired
        return c

    def peek(self, ref: KeyRef) -> Cached | None:
        """The cached live copy of `ref`, looked at without any effect: not counted as a
        read, an expired copy reported missing but left for `lookup` to drop."""
        c = self.cache.get(ref)
        if c is None:
            return None
        exp = c.entry.expiration
        return c if exp is None or exp > self.clock.now() else None

    def local_namespace(self, account_id: str, namespace_id: str) -> bool:
        """`Directory.owns`: known here and the account's (True), not known (False), or
        NamespaceNotFound for another account's."""
        return self.directory.owns(account_id, namespace_id)

    # ------------------------------------------------------------------ installs

    def _may_install(self, ref: KeyRef, seq: int, *, use_floor: bool) -> bool:
        if ref[0] not in self.directory.namespaces:
            return False
        if self.recent.newer_than(ref, seq, use_floor=use_floor):
            return False
        neg = self.negative.as_of(ref)
        return neg is None or neg <= seq

    def _install(self, ref: KeyRef, entry: Entry, *, force: bool) -> bool:
        """Put `entry` in the cache unless an equal or newer version is there. The caller
        has checked `_may_install`."""
        now = self.clock.now()
        if entry.expiration is not None and entry.expiration <= now:
            self.cache.invalidate(ref)
            return False
        old = self.cache.get(ref)
        if old is not None and old.entry.version >= entry.version:
            if old.entry.version == entry.version:
                old.installed_at = now  # confirmed current
            return True
        size = entry_size(ref[0], ref[1], entry.value, entry.metadata_json)
        item = Cached(entry, now)
        if force:
            return self.cache.force_put(ref, item, size)
        if old is not None:
            return self.cache.put(ref, item, size)
        return self.cache.offer(ref, item, size)

    def _drop_older(self, ref: KeyRef, seq: int) -> None:
        """Invalidate the cached copy of `ref` if it is older than `seq`."""
        old = self.cache.get(ref)
        if old is not None and old.entry.version < seq:
            self.cache.invalidate(ref)

    def _drop_negative_older(self, ref: KeyRef, seq: int) -> None:
        neg = self.negative.as_of(ref)
        if neg is not None and neg < seq:
            self.negative.discard(ref)

    def _install_read(self, ref: KeyRef, entry: Entry | None, as_of_seq: int) -> None:
        """A read-through result, read at central's committed seq `as_of_seq`: offered to
        the cache (or cached negatively) unless a newer change has been applied since."""
        may = self._may_install(ref, as_of_seq, use_floor=True)
        if entry is not None:
            self.recent.record(ref, entry.version)
            if not may:
                self._drop_older(ref, entry.version)
        if not may:
            return
        if entry is None:
            old = self.cache.get(ref)
            if old is not None and old.entry.version > as_of_seq:
                return
            self.cache.invalidate(ref)
            self.negative.add(ref, as_of_seq)
        else:
            self._install(ref, entry, force=False)

    def _saw_version(self, ref: KeyRef, version: int) -> None:
        """Central served `version` with no value to install: drop any older cached copy
        and remember it, so the next read cannot go back."""
        self._drop_older(ref, version)
        self.recent.record(ref, version)

    # ------------------------------------------------------------------ own writes (C3)

    def put_forwarded(self, ref: KeyRef) -> None:
        """A put of this region's to `ref` is on its way to central (see `own_puts`)."""
        self.own_puts[ref] = self.own_puts.get(ref, 0) + 1

    def put_answered(self, ref: KeyRef) -> None:
        """Central answered that put (or it failed); `after_write` applies a success."""
        n = self.own_puts.pop(ref, 1) - 1
        if n:
            self.own_puts[ref] = n

    def after_write(self, op: Op[Any], result: Any) -> None:
        """Apply this replica's own write, acknowledged by central with `result`, to the
        local state at once (C3: a region reads its own writes)."""
        if isinstance(op, PutOp):
            self._own_put((op.namespace_id, op.item.key), op.item, result)
        elif isinstance(op, DeleteOp):
            self._own_delete((op.namespace_id, op.key), result)
        elif isinstance(op, BulkPutOp):
            self._own_bulk(op.namespace_id, [i.key for i in op.items], result, deleted=False)
        elif isinstance(op, BulkDeleteOp):
            self._own_bulk(op.namespace_id, op.keys, result, deleted=True)
        elif isinstance(op, CreateNamespaceOp | RenameNamespaceOp):
            self.add_namespace(result)
        elif isinstance(op, DeleteNamespaceOp):
            self.drop_namespace(op.namespace_id)

    def _own_put(self, ref: KeyRef, item: WriteItem, result: WriteResult) -> None:
        seq = result.seq
        if seq <= 0:
            return
        self._drop_negative_older(ref, seq)
        entry = Entry(item.key, item.value, item.metadata_json, item.expiration, seq)
        if self._may_install(ref, seq, use_floor=True):
            self._install(ref, entry, force=True)
        else:
            self._drop_older(ref, seq)
        self.recent.record(ref, seq)

    def _own_delete(self, ref: KeyRef, result: WriteResult) -> None:
        seq = result.seq
        if seq <= 0:
            # Nothing was live at central: whatever is cached is gone too.
            self.cache.invalidate(ref)
            return
        may = self._may_install(ref, seq, use_floor=True)
        self._drop_older(ref, seq)
        if may and ref not in self.cache:
            self.negative.add(ref, seq)
        self.recent.record(ref, seq)

    def _own_bulk(self, namespace_id: str, keys: Iterable[str], result: BulkResult, *, deleted: bool) -> None:
        """Bulk writes report one seq for the batch, not each key's version: cached copies
        are dropped (the next read fetches the new one); deletes are cached negatively."""
        failed = set(result.unsuccessful_keys)
        seq = result.seq
        for key in keys:
            if key in failed:
                continue
            ref = (namespace_id, key)
            if seq <= 0:
                self.cache.invalidate(ref)
                continue
            self._drop_older(ref, seq)
            if deleted:
                if self._may_install(ref, seq, use_floor=True) and ref not in self.cache:
                    self.negative.add(ref, seq)
            else:
                self._drop_negative_older(ref, seq)
            self.recent.record(ref, seq)

    def add_namespace(self, ns: Namespace) -> None:
        self.directory.add(ns)

    def drop_namespace(self, namespace_id: str) -> None:
        self.directory.namespaces.pop(namespace_id, None)
        self._drop_keys_of({namespace_id})

    def _drop_keys_of(self, namespace_ids: set[str]) -> None:
        self.cache.invalidate_where(lambda r: r[0] in namespace_ids)
        self.negative.discard_where(lambda r: r[0] in namespace_ids)

    # ------------------------------------------------------------------ the stream

    def apply_batch(self, batch: ChangeBatch) -> None:
        """Apply one change-stream message (see module docstring for the rules)."""
        if batch.reset:
            self.cache.clear()
            self.negative.clear()
            # Changes before the reset point were never seen: trust no older read.
            self.recent.raise_floor(max(batch.committed_seq, batch.safe_seq))
        if batch.snapshot is not None:
            gone = self.directory.load(batch.snapshot)
            if gone:
                self._drop_keys_of(gone)
        top = self.applied_seq
        for change in batch.changes:
            self._apply_change(change)
            top = max(top, change.seq)
        self.applied_seq = max(top, batch.safe_seq)
        self.committed_seq = max(self.committed_seq, batch.committed_seq)

    def _apply_change(self, change: Change) -> None:
        if change.kind in KEY_KINDS:
            self._apply_key_change(change)
        elif change.kind is ChangeKind.NAMESPACE_DELETE:
            self.drop_namespace(change.namespace_id)
        else:
            self.directory.apply(change)

    def _apply_key_change(self, change: Change) -> None:
        ref = (change.namespace_id, change.key)
        seq = change.seq
        if change.kind is ChangeKind.KEY_DELETE:
            self._drop_older(ref, seq)
        else:
            self._drop_negative_older(ref, seq)  # C1: a create is visible at once
            cached = self.cache.get(ref)
            if cached is not None and cached.entry.version >= seq:
                pass  # a newer version is cached already (C4)
            elif (
                change.has_value
                and change.value is not None
                and ref not in self.own_puts
                and self._may_install(ref, seq, use_floor=False)
            ):
                entry = Entry(change.key, change.value, change.metadata_json, change.expiration, seq)
                if not self._install(ref, entry, force=False):
                    self._drop_older(ref, seq)
            else:
                self._drop_older(ref, seq)
        self.recent.record(ref, seq)
