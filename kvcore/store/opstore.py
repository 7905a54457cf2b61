"""`OpStore`: the engine-independent half of a store, shared by RocksDB and PostgreSQL.

Everything here turns a call into a validated operation (ops.py) and hands it to the
group-commit writer (writer.py), or answers from the in-memory catalog of namespaces
and tokens (catalog.py). An engine subclass (`RocksStore`, `PgStore`) supplies the
writer and catalog, the entry and log reads, and maintenance. `_namespace` is the one
hook an engine may widen: a PostgreSQL central refreshes its catalog on a miss, since
another central may have just created the namespace.
"""

from __future__ import annotations

import abc
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from kvcore import limits
from kvcore.clock import Clock
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
from kvcore.store import codec
from kvcore.store.base import ChangeListener, PointWrite
from kvcore.store.catalog import Catalog
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    GroupOp,
    PutOp,
    PutTokenOp,
    RenameNamespaceOp,
    RevokeTokenOp,
)
from kvcore.store.writer import GroupCommitWriter, Op

log = logging.getLogger(__name__)
T = TypeVar("T")


class OpStore(abc.ABC):
    """Subclasses set `_clock`, `_catalog` and `_writer` before serving calls."""

    _clock: Clock
    _catalog: Catalog
    _writer: GroupCommitWriter

    def __init__(self) -> None:
        self._listeners: list[ChangeListener] = []

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

    def add_listener(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

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

    # The engine's sync list read (`get` and `bulk_get` are below), for coroutines.
    list_keys: Callable[[str, str, str, int, str], KeyPage]

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a sync read for a coroutine: in place here (RocksDB point reads and
        iterators take microseconds); an engine whose reads wait on a network overrides it."""
        return fn(*args)

    async def aget(self, account_id: str, namespace_id: str, key: str) -> Entry | None:
        return await self._read(self.get, account_id, namespace_id, key)

    async def abulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        return await self._read(self.bulk_get, account_id, namespace_id, keys)

    async def alist_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage:
        return await self._read(self.list_keys, account_id, namespace_id, prefix, limit, cursor)

    # ---------------------------------------------------------------- entries: point reads

    @abc.abstractmethod
    def _raw_entries(self, entry_keys: Sequence[bytes]) -> list[bytes | None]:
        """The engine's stored bytes for each entry key, in order (None where absent)."""

    def get(self, account_id: str, namespace_id: str, key: str) -> Entry | None:
        return self.bulk_get(account_id, namespace_id, [key])[0]

    def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        """Each key's live entry, in order; an expired entry reads as None."""
        self._namespace(account_id, namespace_id)
        nsb = codec.ns_bytes(namespace_id)
        ekeys = [codec.entry_key(nsb, limits.validate_key(k)) for k in keys]
        if not ekeys:
            return []
        now = self._clock.now()
        out: list[Entry | None] = []
        for key, raw in zip(keys, self._raw_entries(ekeys), strict=True):
            entry = codec.decode_entry(key, raw) if raw is not None else None
            if entry is not None and entry.expiration is not None and entry.expiration <= now:
                entry = None
            out.append(entry)
        return out

    # ---------------------------------------------------------------- entries: list range

    def _list_range(
        self, account_id: str, namespace_id: str, prefix: str, cursor: str
    ) -> tuple[bytes, bytes, bytes]:
        """(namespace bytes, prefix low bound, first entry key to look at) of a list call."""
        self._namespace(account_id, namespace_id)
        nsb = codec.ns_bytes(namespace_id)
        try:
            low = nsb + prefix.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError("prefix: not valid UTF-8") from exc
        start = low
        if cursor:
            # The smallest key after the cursor's key is that key + NUL.
            start = max(low, nsb + codec.decode_cursor(cursor) + b"\x00")
        return nsb, low, start

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
