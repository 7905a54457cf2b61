"""`RocksStore`: the `Store` over RocksDB (rocksdict, raw mode).

Reads run on the caller's thread straight against RocksDB (a point read is one get;
namespace ownership is checked against the in-memory catalog). Every write is an
operation handed to the group-commit writer (writer.py), which owns seq assignment,
the change log and durability. A maintenance thread periodically purges expired
entries and trims the change log, both through the writer so they never race a
concurrent put of the same key.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from rocksdict import Options, Rdict

from kvcore import limits
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KVError, NamespaceNotFound, ValidationError
from kvcore.model import (
    MIN_TOKEN_SECRET_CHARS,
    NO_CONDITION,
    BulkResult,
    Change,
    Condition,
    Entry,
    KeyPage,
    Namespace,
    Permission,
    Token,
    WriteItem,
    WriteResult,
    token_hash,
)
from kvcore.store import codec, scan
from kvcore.store.base import ChangeListener, LogTruncated, PointWrite, Store
from kvcore.store.catalog import Catalog
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    GroupOp,
    PurgeOp,
    PutOp,
    PutTokenOp,
    RenameNamespaceOp,
    RevokeTokenOp,
    TrimLogOp,
)
from kvcore.store.txn import CF
from kvcore.store.writer import GroupCommitWriter, Op

log = logging.getLogger(__name__)

PURGE_BATCH: Final = 1000


class RocksStore:
    def __init__(
        self,
        path: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        log_retention: int = 1_000_000,
        purge_interval_s: float = 1.0,
        sync: bool = True,
    ) -> None:
        if log_retention < 1:
            raise ValueError("log_retention must be at least 1")
        self._clock = clock
        self._log_retention = log_retention
        self._purge_interval_s = purge_interval_s
        self._listeners: list[ChangeListener] = []

        options = Options(raw_mode=True)
        options.create_if_missing(True)
        options.create_missing_column_families(True)
        options.increase_parallelism(4)
        families = {cf.value: Options(raw_mode=True) for cf in CF}
        self._db = Rdict(path, options=options, column_families=families)
        self._cfs: dict[CF, Any] = {cf: self._db.get_column_family(cf.value) for cf in CF}
        self._handles: dict[CF, Any] = {cf: self._db.get_column_family_handle(cf.value) for cf in CF}
        self._data = self._cfs[CF.DATA]

        self._catalog = Catalog(
            (codec.decode_namespace(k, v) for k, v in self._cfs[CF.NAMESPACES].items()),
            (codec.decode_token(k, v) for k, v in self._cfs[CF.TOKENS].items()),
        )
        seq, self._oldest = self._recover_seqs()
        self._writer = GroupCommitWriter(
            self._db,
            self._cfs,
            self._handles,
            self._catalog,
            clock,
            seq=seq,
            sync=sync,
            on_commit=self._notify,
        )
        self._stop = threading.Event()
        self._maintenance = threading.Thread(target=self._maintain, name="edgekv-store-purge", daemon=True)
        self._maintenance.start()
        self._closed = False

    # ---------------------------------------------------------------- lifecycle

    def _recover_seqs(self) -> tuple[int, int]:
        """(last committed seq, oldest retained seq) as found on disk."""
        raw = self._cfs[CF.META].get(codec.META_LAST_SEQ)
        seq = codec.read_u64(raw) if raw is not None else 0
        bounds = scan.log_bounds(self._cfs[CF.LOG])
        if bounds is None:
            return seq, seq + 1
        # The meta record is written in the same batch as the log, so they agree; take
        # the max anyway so a damaged meta record can never make a seq repeat.
        return max(seq, bounds[1]), bounds[0]

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._maintenance.join()
        self._writer.close()
        # Every column-family object keeps RocksDB open; drop them all so the same
        # path can be reopened in this process.
        for cf in self._cfs.values():
            cf.close()
        self._cfs.clear()
        self._handles.clear()
        del self._data
        self._db.close()

    def __enter__(self) -> RocksStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, op: Op) -> Any:
        return self._writer.submit(op).result()

    async def _asubmit(self, op: Op) -> Any:
        # No thread per waiter: the writer resolves this loop's futures in one callback.
        return await self._writer.submit_async(op)

    def _notify(self, changes: Sequence[Change]) -> None:
        for listener in list(self._listeners):
            try:
                listener(changes)
            except Exception:
                log.exception("change listener %r failed", listener)

    # ---------------------------------------------------------------- namespaces

    def _namespace(self, account_id: str, namespace_id: str) -> Namespace:
        ns = self._catalog.namespaces.get(namespace_id)
        if ns is None or ns.account_id != account_id:
            raise NamespaceNotFound()
        return ns

    @staticmethod
    def _check_account(account_id: str) -> None:
        limits.validate_account_id(account_id)

    def create_namespace(self, account_id: str, title: str) -> Namespace:
        self._check_account(account_id)
        result: Namespace = self._submit(CreateNamespaceOp(account_id, limits.validate_title(title)))
        return result

    async def acreate_namespace(self, account_id: str, title: str) -> Namespace:
        self._check_account(account_id)
        result: Namespace = await self._asubmit(CreateNamespaceOp(account_id, limits.validate_title(title)))
        return result

    def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        return self._namespace(account_id, namespace_id)

    def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        page, per_page = limits.validate_page(page, per_page)
        limits.validate_order(order, direction)
        items = self._catalog.account_namespaces(account_id)
        # Python str order is code-point order, which is UTF-8 byte order.
        by_title = order == "title"
        items.sort(key=lambda n: n.title if by_title else n.id, reverse=direction == "desc")
        start = (page - 1) * per_page
        return items[start : start + per_page], len(items)

    def all_namespaces(self) -> list[Namespace]:
        return self._catalog.all_namespaces()

    def rename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace:
        op = RenameNamespaceOp(account_id, namespace_id, limits.validate_title(title))
        result: Namespace = self._submit(op)
        return result

    async def arename_namespace(self, account_id: str, namespace_id: str, title: str) -> Namespace:
        op = RenameNamespaceOp(account_id, namespace_id, limits.validate_title(title))
        result: Namespace = await self._asubmit(op)
        return result

    def delete_namespace(self, account_id: str, namespace_id: str) -> None:
        self._submit(DeleteNamespaceOp(account_id, namespace_id))

    async def adelete_namespace(self, account_id: str, namespace_id: str) -> None:
        await self._asubmit(DeleteNamespaceOp(account_id, namespace_id))

    # ---------------------------------------------------------------- entries: writes

    @staticmethod
    def _check_item(item: WriteItem, field: str = "") -> WriteItem:
        # Callers validate with kvcore.limits already; checking again here is cheap and
        # keeps a bad item from ever reaching a batch (one bad item fails the whole bulk).
        limits.validate_key(item.key, f"{field}key" if field else "key_name")
        limits.validate_value(item.value, f"{field}value")
        if item.metadata_json is not None:
            limits.check_metadata_json(item.metadata_json, f"{field}metadata")
        exp = item.expiration
        if exp is not None and (not isinstance(exp, int) or not 0 < exp <= limits.MAX_EXPIRATION_EPOCH_S):
            raise ValidationError(f"{field}expiration: {item.expiration} is out of range")
        return item

    def _put_op(self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition) -> PutOp:
        self._namespace(account_id, namespace_id)  # fail fast; the writer checks again
        return PutOp(account_id, namespace_id, self._check_item(item), condition)

    def put(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition = NO_CONDITION
    ) -> WriteResult:
        result: WriteResult = self._submit(self._put_op(account_id, namespace_id, item, condition))
        return result

    async def aput(
        self, account_id: str, namespace_id: str, item: WriteItem, condition: Condition = NO_CONDITION
    ) -> WriteResult:
        result: WriteResult = await self._asubmit(self._put_op(account_id, namespace_id, item, condition))
        return result

    def _delete_op(self, account_id: str, namespace_id: str, key: str, condition: Condition) -> DeleteOp:
        self._namespace(account_id, namespace_id)
        return DeleteOp(account_id, namespace_id, limits.validate_key(key), condition)

    def delete(
        self, account_id: str, namespace_id: str, key: str, condition: Condition = NO_CONDITION
    ) -> WriteResult:
        result: WriteResult = self._submit(self._delete_op(account_id, namespace_id, key, condition))
        return result

    async def adelete(
        self, account_id: str, namespace_id: str, key: str, condition: Condition = NO_CONDITION
    ) -> WriteResult:
        result: WriteResult = await self._asubmit(self._delete_op(account_id, namespace_id, key, condition))
        return result

    async def awrite_many(self, writes: Sequence[PointWrite]) -> list[WriteResult | KVError]:
        out: list[WriteResult | KVError | None] = []
        ops: list[PutOp | DeleteOp] = []
        for w in writes:
            try:
                if w.item is not None:
                    ops.append(self._put_op(w.account_id, w.namespace_id, w.item, w.condition))
                else:
                    ops.append(self._delete_op(w.account_id, w.namespace_id, w.key, w.condition))
                out.append(None)
            except KVError as exc:
                out.append(exc)
        if ops:
            results: list[WriteResult | KVError] = await self._asubmit(GroupOp(ops))
            it = iter(results)
            out = [next(it) if r is None else r for r in out]
        return [r for r in out if r is not None]

    def _bulk_put_op(self, account_id: str, namespace_id: str, items: Sequence[WriteItem]) -> BulkPutOp:
        self._namespace(account_id, namespace_id)
        limits.validate_bulk_count(len(items))
        checked = [self._check_item(item, f"[{n}].") for n, item in enumerate(items)]
        return BulkPutOp(account_id, namespace_id, checked)

    def bulk_put(self, account_id: str, namespace_id: str, items: Sequence[WriteItem]) -> BulkResult:
        result: BulkResult = self._submit(self._bulk_put_op(account_id, namespace_id, items))
        return result

    async def abulk_put(self, account_id: str, namespace_id: str, items: Sequence[WriteItem]) -> BulkResult:
        result: BulkResult = await self._asubmit(self._bulk_put_op(account_id, namespace_id, items))
        return result

    def _bulk_delete_op(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkDeleteOp:
        self._namespace(account_id, namespace_id)
        limits.validate_bulk_count(len(keys), "bulk delete")
        checked = [limits.validate_key(key, f"[{n}]") for n, key in enumerate(keys)]
        return BulkDeleteOp(account_id, namespace_id, checked)

    def bulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult:
        result: BulkResult = self._submit(self._bulk_delete_op(account_id, namespace_id, keys))
        return result

    async def abulk_delete(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> BulkResult:
        result: BulkResult = await self._asubmit(self._bulk_delete_op(account_id, namespace_id, keys))
        return result

    # ---------------------------------------------------------------- entries: reads

    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None:
        self._namespace(account_id, namespace_id)
        limits.validate_key(key)
        raw = self._data.get(codec.entry_key(codec.ns_bytes(namespace_id), key))
        if raw is None:
            return None
        entry = codec.decode_entry(key, raw)
        if entry.expiration is not None and entry.expiration <= self._clock.now():
            return None
        return entry

    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        self._namespace(account_id, namespace_id)
        nsb = codec.ns_bytes(namespace_id)
        ekeys = [codec.entry_key(nsb, limits.validate_key(k)) for k in keys]
        if not ekeys:
            return []
        raws: list[bytes | None] = self._data.get(ekeys)  # one multi-get
        now = self._clock.now()
        out: list[Entry | None] = []
        for key, raw in zip(keys, raws, strict=True):
            entry = codec.decode_entry(key, raw) if raw is not None else None
            if entry is not None and entry.expiration is not None and entry.expiration <= now:
                entry = None
            out.append(entry)
        return out

    def list_keys(self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str) -> KeyPage:
        self._namespace(account_id, namespace_id)
        limit = limits.validate_list_limit(limit)
        nsb = codec.ns_bytes(namespace_id)
        try:
            low = nsb + prefix.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("prefix: not valid UTF-8") from exc
        start = low
        if cursor:
            # The smallest key after the cursor's key is that key + NUL.
            start = max(low, nsb + codec.decode_cursor(cursor) + b"\x00")
        return scan.key_page(self._data, nsb, low, start, limit, self._clock.now())

    # ---------------------------------------------------------------- tokens

    def create_token(
        self, account_id: str, permission: Permission, secret: str | None = None
    ) -> tuple[Token, str]:
        self._check_account(account_id)
        try:
            perm = Permission(permission)
        except ValueError as exc:
            raise ValidationError("permission: must be 'read' or 'write'") from exc
        if secret is None:
            secret = secrets.token_urlsafe(32)
        elif len(secret) < MIN_TOKEN_SECRET_CHARS:
            raise ValidationError(f"secret: at least {MIN_TOKEN_SECRET_CHARS} characters")
        token = Token(
            id=secrets.token_hex(16),
            account_id=account_id,
            permission=perm,
            secret_hash=token_hash(secret),
            created=self._clock.now(),
        )
        self._submit(PutTokenOp(token))
        return token, secret

    def list_tokens(self, account_id: str | None = None) -> list[Token]:
        tokens = [t for t in self._catalog.all_tokens() if account_id is None or t.account_id == account_id]
        tokens.sort(key=lambda t: (t.created, t.id))
        return tokens

    def revoke_token(self, token_id: str) -> None:
        self._submit(RevokeTokenOp(token_id))

    def token_by_hash(self, secret_hash: str) -> Token | None:
        return self._catalog.by_hash.get(secret_hash)

    # ---------------------------------------------------------------- change log

    @property
    def committed_seq(self) -> int:
        return self._writer.seq

    @property
    def oldest_retained_seq(self) -> int:
        return self._oldest

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        seq = max(seq, 0)
        if seq < self._oldest - 1:
            raise LogTruncated(f"seq {seq} is older than the retained log (oldest {self._oldest})")
        committed = self.committed_seq
        if seq >= committed or limit <= 0:
            return []
        # Only committed changes: a batch being written is not yet acknowledged.
        out = scan.log_range(self._cfs[CF.LOG], seq, committed, limit)
        if not out or out[0].seq != seq + 1:
            # A trim ran between the check above and the read.
            raise LogTruncated(f"seq {seq} is older than the retained log (oldest {self._oldest})")
        return out

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    # ---------------------------------------------------------------- maintenance

    def purge_expired(self) -> int:
        """Delete every entry expired as of the clock's now; returns how many."""
        total = 0
        while True:
            expired = scan.expired_index_keys(self._cfs[CF.EXPIRY], self._clock.now(), PURGE_BATCH)
            if not expired:
                return total
            total += int(self._submit(PurgeOp(expired)))
            if len(expired) < PURGE_BATCH:
                return total

    def trim_log(self) -> int:
        """Drop change-log records beyond the newest `log_retention`; returns the oldest kept."""
        oldest = self.committed_seq - self._log_retention + 1
        if oldest > self._oldest:
            # Raise the floor first: a reader racing the trim gets LogTruncated, never a gap.
            self._oldest = oldest
            self._submit(TrimLogOp(oldest))
        return self._oldest

    def _maintain(self) -> None:
        while not self._stop.wait(self._purge_interval_s):
            try:
                self.purge_expired()
                self.trim_log()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("store maintenance failed")


if TYPE_CHECKING:
    # mypy proves the structural match with the Store protocol here, in strict kvcore.
    def _conforms(store: RocksStore) -> Store:
        return store
