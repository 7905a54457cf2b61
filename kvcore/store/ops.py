"""The write vocabulary: one class per kind of write, used end to end.

An operation is a value: the REST handlers and central's gRPC servicers build one from
their request (validated there, with kvcore.limits, where the input enters), a replica
forwards it to central (`kvcore.rpc.client.CentralClient.submit`), and the store
commits it (`Store.submit`), as etcd's client sends `Do(ctx, OpPut(...))`. `Op[R]` is
an operation whose result is an `R`; `kind` is its `edgekv_writes_total{op}` label.

Each `apply` runs on the writer thread against a `Txn`: it decides against the state
as of this point in the group (create vs update, conditions, titles), stages writes
and change-log records, and returns the caller's result or raises a KVError. Only
state-dependent rules are checked here.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol, TypeVar

from kvcore import limits
from kvcore.errors import (
    DuplicateTitle,
    InternalError,
    KVError,
    NamespaceNotFound,
    PreconditionFailed,
    TooManyNamespaces,
    Unavailable,
    ValidationError,
)
from kvcore.limits import MAX_NAMESPACES_PER_ACCOUNT
from kvcore.model import (
    MIN_TOKEN_SECRET_CHARS,
    NO_CONDITION,
    BulkResult,
    Change,
    ChangeKind,
    Condition,
    Namespace,
    Permission,
    Token,
    WriteItem,
    WriteResult,
    token_hash,
)
from kvcore.settings import MAX_PUSH_VALUE_BYTES
from kvcore.store import codec
from kvcore.store.txn import CF, Txn

log = logging.getLogger(__name__)

_OP_OVERHEAD: Final = 128  # bytes counted per item towards the group bound

R_co = TypeVar("R_co", covariant=True)


class Op(Protocol[R_co]):
    """One write whose result is an `R_co`."""

    @property
    def kind(self) -> str:
        """What it is, as the `op` label of `edgekv_writes_total` ("put", "namespace_create"...)."""
        ...

    @property
    def size(self) -> int:
        """Approximate bytes this operation adds to a batch (for the group bound)."""
        ...

    def apply(self, txn: Txn) -> R_co:
        """Stage the operation's writes in `txn`; raise KVError to fail it alone."""
        ...


def _namespace(txn: Txn, account_id: str, namespace_id: str) -> Namespace:
    ns = txn.catalog.namespace(namespace_id)
    if ns is None or ns.account_id != account_id:
        raise NamespaceNotFound()
    return ns


def _live_version(txn: Txn, ekey: bytes) -> tuple[int | None, int]:
    """(version of the live value or None, stored expiration or 0 when no record)."""
    raw = txn.get(CF.DATA, ekey)
    if raw is None:
        return None, 0
    version, expiration = codec.entry_version_expiration(raw)
    return (version if codec.is_live(expiration, txn.now) else None), expiration


def _check(condition: Condition, live_version: int | None) -> None:
    if condition.if_match is not None and live_version != condition.if_match:
        raise PreconditionFailed()
    if condition.if_none_match and live_version is not None:
        raise PreconditionFailed("precondition failed: the key already has a value")


def _put_one(txn: Txn, ns: Namespace, nsb: bytes, item: WriteItem, condition: Condition) -> Change:
    ekey = codec.entry_key(nsb, item.key)
    live, old_expiration = _live_version(txn, ekey)
    _check(condition, live)
    if old_expiration:
        txn.delete(CF.EXPIRY, codec.expiry_key(old_expiration, ekey))
    # A create carries its value to the change feed, which pushes it to every region
    # at once (C1) without reading it back from the store.
    pushed = item.value if live is None and len(item.value) <= MAX_PUSH_VALUE_BYTES else None
    change = txn.log(
        ChangeKind.KEY_CREATE if live is None else ChangeKind.KEY_UPDATE,
        namespace_id=ns.id,
        account_id=ns.account_id,
        key=item.key,
        expiration=item.expiration,
        metadata_json=item.metadata_json,
        value=pushed,
    )
    txn.put(CF.DATA, ekey, codec.encode_entry(change.seq, item.expiration, item.metadata_json, item.value))
    if item.expiration:
        txn.put(CF.EXPIRY, codec.expiry_key(item.expiration, ekey), b"")
    return change


def _delete_one(txn: Txn, ns: Namespace, nsb: bytes, key: str, condition: Condition) -> Change | None:
    ekey = codec.entry_key(nsb, key)
    live, old_expiration = _live_version(txn, ekey)
    _check(condition, live)
    if old_expiration:
        txn.delete(CF.EXPIRY, codec.expiry_key(old_expiration, ekey))
    if live is None:
        if old_expiration:
            # An expired value not yet purged: drop it quietly, it was already gone.
            txn.delete(CF.DATA, ekey)
        return None
    txn.delete(CF.DATA, ekey)
    return txn.log(ChangeKind.KEY_DELETE, namespace_id=ns.id, account_id=ns.account_id, key=key)


@dataclass(slots=True)
class InNamespace:
    """The part every operation on an existing namespace shares: which one, of whose."""

    account_id: str
    namespace_id: str

    def _ns(self, txn: Txn) -> tuple[Namespace, bytes]:
        """The namespace (NamespaceNotFound unless it is the account's) and its key prefix."""
        ns = _namespace(txn, self.account_id, self.namespace_id)
        return ns, codec.ns_bytes(ns.id)


# ---------------------------------------------------------------- entries


@dataclass(slots=True)
class PutOp(InNamespace):
    item: WriteItem
    condition: Condition = NO_CONDITION
    kind: ClassVar[str] = "put"

    @property
    def size(self) -> int:
        return len(self.item.value) + _OP_OVERHEAD

    def apply(self, txn: Txn) -> WriteResult:
        change = _put_one(txn, *self._ns(txn), self.item, self.condition)
        return WriteResult(change.seq, change.kind is ChangeKind.KEY_CREATE, txn.now)


@dataclass(slots=True)
class DeleteOp(InNamespace):
    key: str
    condition: Condition = NO_CONDITION
    kind: ClassVar[str] = "delete"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> WriteResult:
        change = _delete_one(txn, *self._ns(txn), self.key, self.condition)
        return WriteResult(change.seq if change else 0, False, txn.now)


@dataclass(slots=True)
class BulkPutOp(InNamespace):
    """Every item in the same batch: all are written or (on error) none."""

    items: Sequence[WriteItem]
    kind: ClassVar[str] = "bulk_put"

    @property
    def size(self) -> int:
        return sum(len(i.value) + _OP_OVERHEAD for i in self.items)

    def apply(self, txn: Txn) -> BulkResult:
        ns, nsb = self._ns(txn)
        changes = [_put_one(txn, ns, nsb, item, NO_CONDITION) for item in self.items]
        return BulkResult(len(self.items), [], changes[-1].seq if changes else 0)


@dataclass(slots=True)
class BulkDeleteOp(InNamespace):
    keys: Sequence[str]
    kind: ClassVar[str] = "bulk_delete"

    @property
    def size(self) -> int:
        return len(self.keys) * _OP_OVERHEAD

    def apply(self, txn: Txn) -> BulkResult:
        ns, nsb = self._ns(txn)
        seqs = [c.seq for key in self.keys if (c := _delete_one(txn, ns, nsb, key, NO_CONDITION))]
        return BulkResult(len(self.keys), [], seqs[-1] if seqs else 0)


@dataclass(slots=True)
class GroupOp:
    """Independent point writes in one commit group (a replica's streamed batch): each
    is staged and kept, or dropped alone with its error, exactly as if it had been
    queued by itself; the results (WriteResult or KVError, in order) are returned
    once the group is durable, like any operation's.

    `deadlines` (optional, one per op: wall-clock seconds or None) withdraws an op
    whose deadline has passed when the writer reaches it (`txn.now`): it fails with
    Unavailable and is not applied, as a unary call's cancelled op is withdrawn."""

    ops: Sequence[PutOp | DeleteOp]
    deadlines: Sequence[float | None] = ()
    size: int = field(init=False)
    kind: ClassVar[str] = "group"  # metered per member, by the member's kind

    def __post_init__(self) -> None:
        self.size = sum(op.size for op in self.ops)

    def apply(self, txn: Txn) -> list[WriteResult | KVError]:
        out: list[WriteResult | KVError] = []
        deadlines = self.deadlines or [None] * len(self.ops)
        for op, deadline in zip(self.ops, deadlines, strict=True):
            if deadline is not None and txn.now > deadline:
                out.append(Unavailable.deadline_passed("withdrawn: deadline passed"))
                continue
            try:
                result = op.apply(txn)
            except KVError as exc:
                txn.rollback_op()
                out.append(exc)
                continue
            except Exception as exc:
                log.exception("store operation %r failed", op)
                txn.rollback_op()
                out.append(InternalError(f"store operation failed: {exc}"))
                continue
            txn.commit_op()
            out.append(result)
        return out


# ---------------------------------------------------------------- namespaces


@dataclass(slots=True)
class CreateNamespaceOp:
    account_id: str
    title: str
    kind: ClassVar[str] = "namespace_create"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> Namespace:
        if txn.catalog.title_owner(self.account_id, self.title) is not None:
            raise DuplicateTitle()
        if txn.catalog.namespace_count(self.account_id) >= MAX_NAMESPACES_PER_ACCOUNT:
            raise TooManyNamespaces()
        ns_id = secrets.token_hex(16)
        while txn.catalog.namespace(ns_id) is not None:  # astronomically unlikely
            ns_id = secrets.token_hex(16)
        ns = Namespace(ns_id, self.account_id, self.title)
        txn.put(CF.NAMESPACES, codec.ns_bytes(ns_id), codec.encode_namespace(ns))
        txn.put(CF.TITLES, codec.title_key(ns.account_id, ns.title), codec.ns_bytes(ns_id))
        txn.catalog.set_namespace(ns_id, ns)
        txn.log(ChangeKind.NAMESPACE_CREATE, namespace_id=ns_id, account_id=ns.account_id, title=ns.title)
        return ns


@dataclass(slots=True)
class RenameNamespaceOp(InNamespace):
    title: str
    kind: ClassVar[str] = "namespace_rename"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> Namespace:
        ns, nsb = self._ns(txn)
        owner = txn.catalog.title_owner(self.account_id, self.title)
        if owner is not None and owner != ns.id:
            raise DuplicateTitle()
        if ns.title == self.title:
            return ns  # nothing changes, so nothing to log
        renamed = Namespace(ns.id, ns.account_id, self.title)
        txn.delete(CF.TITLES, codec.title_key(ns.account_id, ns.title))
        txn.put(CF.TITLES, codec.title_key(ns.account_id, self.title), nsb)
        txn.put(CF.NAMESPACES, nsb, codec.encode_namespace(renamed))
        txn.catalog.set_namespace(ns.id, renamed)
        txn.log(ChangeKind.NAMESPACE_RENAME, namespace_id=ns.id, account_id=ns.account_id, title=self.title)
        return renamed


@dataclass(slots=True)
class DeleteNamespaceOp(InNamespace):
    kind: ClassVar[str] = "namespace_delete"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> None:
        ns, nsb = self._ns(txn)
        # One range tombstone for every key; the expiry index keeps stale pointers that
        # the purge drops when it finds no matching entry.
        txn.delete_range(CF.DATA, *codec.namespace_range(nsb))
        txn.delete(CF.NAMESPACES, nsb)
        txn.delete(CF.TITLES, codec.title_key(ns.account_id, ns.title))
        txn.catalog.set_namespace(ns.id, None)
        txn.log(ChangeKind.NAMESPACE_DELETE, namespace_id=ns.id, account_id=ns.account_id, title=ns.title)


# ---------------------------------------------------------------- tokens


@dataclass(slots=True)
class PutTokenOp:
    token: Token
    kind: ClassVar[str] = "token_put"
    size: ClassVar[int] = _OP_OVERHEAD

    @classmethod
    def new(
        cls, account_id: str, permission: Permission | str, secret: str | None, now: float
    ) -> tuple[PutTokenOp, str]:
        """A new token of `account_id` as the op that stores it, and its secret: `secret`
        (at least MIN_TOKEN_SECRET_CHARS) or a fresh random one. Only the SHA-256 of the
        secret is stored. `now`: epoch seconds, its `created`. Raises ValidationError."""
        limits.validate_account_id(account_id)
        try:
            perm = Permission(permission)
        except ValueError as exc:
            raise ValidationError("permission: must be 'read' or 'write'") from exc
        if secret is None:
            secret = secrets.token_urlsafe(32)
        elif len(secret) < MIN_TOKEN_SECRET_CHARS:
            raise ValidationError(f"secret: at least {MIN_TOKEN_SECRET_CHARS} characters")
        token = Token(secrets.token_hex(16), account_id, perm, token_hash(secret), now)
        return cls(token), secret

    def apply(self, txn: Txn) -> Token:
        txn.put(CF.TOKENS, self.token.id.encode("ascii"), codec.encode_token(self.token))
        txn.catalog.set_token(self.token.id, self.token)
        txn.log(ChangeKind.TOKEN_PUT, account_id=self.token.account_id, token=self.token)
        return self.token


@dataclass(slots=True)
class RevokeTokenOp:
    token_id: str
    kind: ClassVar[str] = "token_revoke"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> None:
        token = txn.catalog.token(self.token_id)
        if token is None:
            raise ValidationError("token_id: unknown token")
        txn.delete(CF.TOKENS, self.token_id.encode("ascii"))
        txn.catalog.set_token(self.token_id, None)
        txn.log(ChangeKind.TOKEN_REVOKE, account_id=token.account_id, token=token)


# ---------------------------------------------------------------- maintenance


@dataclass(slots=True)
class PurgeOp:
    """Delete up to `limit` expired entries via the expiry index. Logs nothing:
    readers already hide expired values, replicas check expirations themselves."""

    expired: Sequence[bytes]  # expiry-index keys with expiration <= now, read by the caller
    kind: ClassVar[str] = "purge"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> int:
        purged = 0
        for ikey in self.expired:
            expiration, ekey = codec.split_expiry_key(ikey)
            txn.delete(CF.EXPIRY, ikey)
            raw = txn.get(CF.DATA, ekey)
            if raw is None:
                continue
            _, current = codec.entry_version_expiration(raw)
            # Only if the entry is still the one this index key points at, and still
            # expired at this group's time (a put in the same group may have replaced it).
            if current == expiration and not codec.is_live(current, txn.now):
                txn.delete(CF.DATA, ekey)
                purged += 1
        return purged


@dataclass(slots=True)
class TrimLogOp:
    """Drop change-log records older than `oldest` (one range tombstone)."""

    oldest: int
    kind: ClassVar[str] = "trim_log"
    size: ClassVar[int] = _OP_OVERHEAD

    def apply(self, txn: Txn) -> int:
        txn.delete_range(CF.LOG, codec.u64(0), codec.u64(self.oldest))
        return self.oldest
