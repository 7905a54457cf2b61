"""What a replica knows locally, and every rule for changing it. No I/O.

`EdgeState` holds the hot-key cache, the negative cache, the namespace map and the
token table, and applies to them (a) change-stream batches, (b) read-through
results and (c) the replica's own acknowledged writes. The stream task and the
REST backend only move data in and out; the consistency rules live here, so they
are unit-tested by feeding domain objects.

Rules (DESIGN.md C1-C4):
- Versions never go back (C4): a cached entry is replaced only by a higher version;
  a negative entry taken at seq A is dropped by a change with seq > A, kept
  otherwise. Removing what is cached is always safe (the next read goes to
  central); installing needs proof that nothing newer has been applied, which is
  what the `RecentChanges` guard gives for results read at central's `as_of_seq`.
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
- Entries are installed only for namespaces in the local map: without the stream
  nothing would ever invalidate them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kvcore.cache import HotKeyCache, NegativeCache, entry_size
from kvcore.clock import Clock
from kvcore.errors import NamespaceNotFound
from kvcore.metrics import Metrics
from kvcore.model import (
    BulkResult,
    Change,
    ChangeBatch,
    ChangeKind,
    Entry,
    Namespace,
    Snapshot,
    Token,
    WriteItem,
    WriteResult,
)
from replica.recent import RecentChanges

KeyRef = tuple[str, str]  # (namespace_id, key)

_KEY_KINDS = (ChangeKind.KEY_CREATE, ChangeKind.KEY_UPDATE, ChangeKind.KEY_DELETE)


@dataclass(slots=True)
class Cached:
    """A cached value: `installed_at` (wall clock) is when this version entered the cache."""

    entry: Entry
    installed_at: float


class EdgeState:
    def __init__(
        self,
        *,
        metrics: Metrics,
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
        self.metrics = metrics
        self.region = metrics.region
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
        # None until the first snapshot: then account checks and caching are local.
        self.namespaces: dict[str, Namespace] | None = None
        self._tokens: dict[str, Token] = {}  # secret_hash -> token
        self._token_hash: dict[str, str] = {}  # token id -> secret_hash
        self.applied_seq = 0
        self.committed_seq = 0
        self.batches_applied = 0
        self.resets = 0
        self._seen_admissions = 0
        self._seen_evictions = 0
        r = self.region
        self._m_admissions = metrics.cache_admissions.labels(r)
        self._m_evictions = metrics.cache_evictions.labels(r)
        self._m_lag_create = metrics.replication_lag.labels(r, "create")
        self._m_lag_update = metrics.replication_lag.labels(r, "update")
        # Read at scrape time: always in step with the cache.
        metrics.cache_bytes.labels(r).set_function(lambda: self.cache.bytes_used)
        metrics.cache_keys.labels(r).set_function(lambda: len(self.cache))

    # ------------------------------------------------------------------ lookups

    @property
    def loaded(self) -> bool:
        return self.namespaces is not None

    def local_namespace(self, account_id: str, namespace_id: str) -> bool:
        """True when the namespace is known here and belongs to the account (the cache may
        answer); False when it is not known here (ask central, which checks). Raises
        NamespaceNotFound when it is known to belong to another account."""
        if self.namespaces is None:
            return False
        ns = self.namespaces.get(namespace_id)
        if ns is None:
            return False
        if ns.account_id != account_id:
            raise NamespaceNotFound()
        return True

    def lookup(self, ref: KeyRef) -> Cached | None:
        """The cached live copy of `ref`; an expired one is dropped and reported missing."""
        c = self.cache.get(ref)
        if c is None:
            return None
        exp = c.entry.expiration
        if exp is not None and exp <= self.clock.now():
            self.cache.invalidate(ref)
            return None
        return c

    def token(self, secret_hash: str) -> Token | None:
        return self._tokens.get(secret_hash)

    # ------------------------------------------------------------------ installs

    def _may_install(self, ref: KeyRef, seq: int, *, use_floor: bool) -> bool:
        if self.namespaces is None or ref[0] not in self.namespaces:
            return False
        if self.recent.newer_than(ref, seq, use_floor=use_floor):
            return False
        neg = self.negative.as_of(ref)
        return neg is None or neg <= seq

    def _install(self, ref: KeyRef, entry: Entry, *, force: bool) -> bool:
        """Put `entry` in the cache unless an equal or newer version is there. The caller
        has checked `_may_install`."""
        if entry.expiration is not None and entry.expiration <= self.clock.now():
            self.cache.invalidate(ref)
            return False
        now = self.clock.now()
        old = self.cache.get(ref)
        if old is not None and old.entry.version >= entry.version:
            if old.entry.version == entry.version:
                old.installed_at = now  # confirmed current
            return True
        size = entry_size(ref[0], ref[1], entry.value, entry.metadata_json)
        item = Cached(entry, now)
        if force:
            ok = self.cache.force_put(ref, item, size)
        elif old is not None:
            ok = self.cache.put(ref, item, size)
        else:
            ok = self.cache.offer(ref, item, size)
        self.sync_counters()
        return ok

    def _drop_older(self, ref: KeyRef, seq: int) -> None:
        """Invalidate the cached copy of `ref` if it is older than `seq`."""
        old = self.cache.get(ref)
        if old is not None and old.entry.version < seq:
            self.cache.invalidate(ref)

    def _drop_negative_older(self, ref: KeyRef, seq: int) -> None:
        neg = self.negative.as_of(ref)
        if neg is not None and neg < seq:
            self.negative.discard(ref)

    def install_read(self, ref: KeyRef, entry: Entry | None, as_of_seq: int) -> None:
        """A read-through result, read at central's committed seq `as_of_seq`: offered to
        the cache (or cached negatively) unless a newer change has been applied since.
        A served version is remembered either way, so no older copy (a late create
        carrying its value, say) can be installed and served after it (C4)."""
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

    def saw_version(self, ref: KeyRef, version: int) -> None:
        """A read served `version` from central (strong or metadata-only reads too):
        drop any older cached copy and remember it, so the next read cannot go back."""
        self._drop_older(ref, version)
        self.recent.record(ref, version)

    # ------------------------------------------------------------------ own writes (C3)

    def apply_own_put(self, ref: KeyRef, item: WriteItem, result: WriteResult) -> None:
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

    def apply_own_delete(self, ref: KeyRef, result: WriteResult) -> None:
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

    def apply_own_bulk(
        self, namespace_id: str, keys: Iterable[str], result: BulkResult, *, deleted: bool
    ) -> None:
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
        if self.namespaces is not None:
            self.namespaces[ns.id] = ns

    def drop_namespace(self, namespace_id: str) -> None:
        if self.namespaces is not None:
            self.namespaces.pop(namespace_id, None)
        self.cache.invalidate_where(lambda r: r[0] == namespace_id)
        self.negative.discard_where(lambda r: r[0] == namespace_id)

    # ------------------------------------------------------------------ the stream

    def apply_batch(self, batch: ChangeBatch) -> None:
        """Apply one change-stream message (see module docstring for the rules)."""
        if batch.reset:
            self.cache.clear()
            self.negative.clear()
            # Changes before the reset point were never seen: trust no older read.
            self.recent.raise_floor(max(batch.committed_seq, batch.safe_seq))
            self.resets += 1
        if batch.snapshot is not None:
            self._apply_snapshot(batch.snapshot)
        now = self.clock.now()
        top = self.applied_seq
        for change in batch.changes:
            self.apply_change(change, now, observe_lag=not batch.replay)
            top = max(top, change.seq)
        self.applied_seq = max(top, batch.safe_seq)
        self.committed_seq = max(self.committed_seq, batch.committed_seq)
        self.batches_applied += 1
        self.sync_counters()
        r = self.region
        self.metrics.applied_seq.labels(r).set(self.applied_seq)
        self.metrics.committed_seq.labels(r).set(self.committed_seq)

    def _apply_snapshot(self, snap: Snapshot) -> None:
        namespaces = {ns.id: ns for ns in snap.namespaces}
        if self.namespaces is not None:
            gone = set(self.namespaces) - set(namespaces)
            if gone:
                self.cache.invalidate_where(lambda r: r[0] in gone)
                self.negative.discard_where(lambda r: r[0] in gone)
        self.namespaces = namespaces
        self._tokens = {t.secret_hash: t for t in snap.tokens}
        self._token_hash = {t.id: t.secret_hash for t in snap.tokens}

    def apply_change(self, change: Change, now: float, *, observe_lag: bool = True) -> None:
        kind = change.kind
        if kind in _KEY_KINDS:
            self._apply_key_change(change)
            if observe_lag:  # a change replayed on resume was not late, the replica was away
                lag = max(0.0, now - change.commit_time)
                (self._m_lag_create if kind is ChangeKind.KEY_CREATE else self._m_lag_update).observe(lag)
        elif kind in (ChangeKind.NAMESPACE_CREATE, ChangeKind.NAMESPACE_RENAME):
            if self.namespaces is not None:
                self.namespaces[change.namespace_id] = Namespace(
                    change.namespace_id, change.account_id, change.title
                )
        elif kind is ChangeKind.NAMESPACE_DELETE:
            self.drop_namespace(change.namespace_id)
        elif kind is ChangeKind.TOKEN_PUT and change.token is not None:
            self._put_token(change.token)
        elif kind is ChangeKind.TOKEN_REVOKE and change.token is not None:
            self._revoke_token(change.token)

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
                change.has_value and change.value is not None and self._may_install(ref, seq, use_floor=False)
            ):
                entry = Entry(change.key, change.value, change.metadata_json, change.expiration, seq)
                if not self._install(ref, entry, force=False):
                    self._drop_older(ref, seq)
            else:
                self._drop_older(ref, seq)
        self.recent.record(ref, seq)

    def _put_token(self, token: Token) -> None:
        old_hash = self._token_hash.get(token.id)
        if old_hash is not None and old_hash != token.secret_hash:
            self._tokens.pop(old_hash, None)
        self._tokens[token.secret_hash] = token
        self._token_hash[token.id] = token.secret_hash

    def _revoke_token(self, token: Token) -> None:
        h = self._token_hash.pop(token.id, None)
        for secret_hash in (h, token.secret_hash):
            if secret_hash:
                t = self._tokens.get(secret_hash)
                if t is not None and t.id == token.id:
                    del self._tokens[secret_hash]

    # ------------------------------------------------------------------ metrics

    def sync_counters(self) -> None:
        """Carry the cache's admission/eviction counts into the Prometheus counters."""
        a, e = self.cache.admissions, self.cache.evictions
        if a != self._seen_admissions:
            self._m_admissions.inc(a - self._seen_admissions)
            self._seen_admissions = a
        if e != self._seen_evictions:
            self._m_evictions.inc(e - self._seen_evictions)
            self._seen_evictions = e

    def hot_keys(self, n: int) -> Sequence[KeyRef]:
        return self.cache.hot_keys(n)
