"""Protobuf <-> domain conversion, in one place.

The generated `edgekv_pb2` types never travel further than this module and the gRPC
boundaries (central's servicers, `kvcore.rpc.client`): everything else sees `kvcore.model`.
Conventions of the wire (see proto/edgekv.proto): expiration 0 = never, metadata as
JSON text with a `has_metadata` flag, Condition.if_match 0 = unset.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kvcore.model import (
    BulkResult,
    Change,
    ChangeBatch,
    ChangeKind,
    Condition,
    Entry,
    KeyInfo,
    KeyPage,
    Namespace,
    Permission,
    Snapshot,
    Token,
    WriteItem,
    WriteResult,
)
from kvcore.pb import edgekv_pb2 as pb
from kvcore.store.ops import (
    BulkDeleteOp,
    BulkPutOp,
    CreateNamespaceOp,
    DeleteOp,
    InNamespace,
    PutOp,
    RenameNamespaceOp,
)


def _exp_out(expiration: int | None) -> int:
    return expiration or 0


def _exp_in(expiration: int) -> int | None:
    return expiration or None


def _meta_in(has: bool, text: str) -> str | None:
    return text if has else None


def _meta_out(metadata_json: str | None) -> dict[str, Any]:
    """The two wire fields of optional metadata (JSON text and whether there is any)."""
    return {"metadata_json": metadata_json or "", "has_metadata": metadata_json is not None}


# -- namespaces


def namespace_to_pb(ns: Namespace) -> pb.Namespace:
    return pb.Namespace(id=ns.id, account_id=ns.account_id, title=ns.title)


def namespace_from_pb(msg: pb.Namespace) -> Namespace:
    return Namespace(id=msg.id, account_id=msg.account_id, title=msg.title)


# -- entries and writes


def write_item_to_pb(item: WriteItem) -> pb.WriteItem:
    msg = pb.WriteItem()
    write_item_into(msg, item)
    return msg


def write_item_into(msg: pb.WriteItem, item: WriteItem) -> None:
    """Fill an empty `msg` with `item`, in place (see `put_into`)."""
    msg.key, msg.value = item.key, item.value
    if item.metadata_json is not None:
        msg.metadata_json, msg.has_metadata = item.metadata_json, True
    msg.expiration = _exp_out(item.expiration)


def write_item_from_pb(msg: pb.WriteItem | pb.Entry) -> WriteItem:
    """The item of a write (an `Entry` message has the same fields, and a version)."""
    return WriteItem(
        key=msg.key,
        value=msg.value,
        metadata_json=_meta_in(msg.has_metadata, msg.metadata_json),
        expiration=_exp_in(msg.expiration),
    )


def entry_to_pb(entry: Entry, *, with_value: bool = True) -> pb.Entry:
    return pb.Entry(
        key=entry.key,
        value=entry.value if with_value else b"",
        **_meta_out(entry.metadata_json),
        expiration=_exp_out(entry.expiration),
        version=entry.version,
    )


def entry_from_pb(msg: pb.Entry) -> Entry:
    item = write_item_from_pb(msg)
    return Entry(item.key, item.value, item.metadata_json, item.expiration, msg.version)


def get_response(entry: Entry | None, as_of_seq: int, *, with_value: bool = True) -> pb.GetResponse:
    if entry is None:
        return pb.GetResponse(found=False, as_of_seq=as_of_seq)
    return pb.GetResponse(found=True, entry=entry_to_pb(entry, with_value=with_value), as_of_seq=as_of_seq)


def condition_into(msg: pb.Condition, cond: Condition) -> None:
    msg.if_match, msg.if_none_match = cond.if_match or 0, cond.if_none_match


def condition_from_pb(msg: pb.Condition) -> Condition:
    return Condition(if_match=msg.if_match or None, if_none_match=msg.if_none_match)


# -- writes: the store's operations (kvcore.store.ops) as requests, both ways. Decoding
# does not validate: the servicer checks what enters with kvcore.limits.


def put_to_pb(op: PutOp) -> pb.PutRequest:
    """Unary `KV.Put`; no condition when unset."""
    req = pb.PutRequest()
    put_into(req, op)
    return req


def put_into(req: pb.PutRequest, op: PutOp) -> None:
    """Fill an empty `req` (a field of the write stream's message, say) with `op`, in
    place: cheaper than building a submessage, which upb copies when it is passed to
    a constructor (the figures are in the README, regional writes)."""
    req.account_id, req.namespace_id = op.account_id, op.namespace_id
    write_item_into(req.item, op.item)
    if op.condition.is_set:
        condition_into(req.condition, op.condition)


def put_from_pb(msg: pb.PutRequest) -> PutOp:
    item = write_item_from_pb(msg.item)
    return PutOp(msg.account_id, msg.namespace_id, item, condition_from_pb(msg.condition))


def delete_to_pb(op: DeleteOp) -> pb.DeleteRequest:
    """Unary `KV.Delete`; no condition when unset."""
    req = pb.DeleteRequest()
    delete_into(req, op)
    return req


def delete_into(req: pb.DeleteRequest, op: DeleteOp) -> None:
    """Fill an empty `req` with `op`, in place (see `put_into`)."""
    req.account_id, req.namespace_id, req.key = op.account_id, op.namespace_id, op.key
    if op.condition.is_set:
        condition_into(req.condition, op.condition)


def delete_from_pb(msg: pb.DeleteRequest) -> DeleteOp:
    return DeleteOp(msg.account_id, msg.namespace_id, msg.key, condition_from_pb(msg.condition))


def bulk_put_to_pb(op: BulkPutOp) -> pb.BulkPutRequest:
    items = [write_item_to_pb(i) for i in op.items]
    return pb.BulkPutRequest(account_id=op.account_id, namespace_id=op.namespace_id, items=items)


def bulk_put_from_pb(msg: pb.BulkPutRequest) -> BulkPutOp:
    return BulkPutOp(msg.account_id, msg.namespace_id, [write_item_from_pb(m) for m in msg.items])


def bulk_delete_to_pb(op: BulkDeleteOp) -> pb.BulkDeleteRequest:
    return pb.BulkDeleteRequest(account_id=op.account_id, namespace_id=op.namespace_id, keys=list(op.keys))


def bulk_delete_from_pb(msg: pb.BulkDeleteRequest) -> BulkDeleteOp:
    return BulkDeleteOp(msg.account_id, msg.namespace_id, list(msg.keys))


def create_namespace_to_pb(op: CreateNamespaceOp) -> pb.CreateNamespaceRequest:
    return pb.CreateNamespaceRequest(account_id=op.account_id, title=op.title)


def rename_namespace_to_pb(op: RenameNamespaceOp) -> pb.RenameNamespaceRequest:
    return pb.RenameNamespaceRequest(account_id=op.account_id, namespace_id=op.namespace_id, title=op.title)


def namespace_ref_to_pb(op: InNamespace) -> pb.NamespaceRef:
    """`KV.DeleteNamespace` of a `DeleteNamespaceOp` (and `KV.GetNamespace`)."""
    return pb.NamespaceRef(account_id=op.account_id, namespace_id=op.namespace_id)


def write_result_to_pb(res: WriteResult) -> pb.WriteResponse:
    return pb.WriteResponse(seq=res.seq, created=res.created, commit_time=res.commit_time)


def write_result_from_pb(msg: pb.WriteResponse) -> WriteResult:
    return WriteResult(seq=msg.seq, created=msg.created, commit_time=msg.commit_time)


def bulk_result_to_pb(res: BulkResult) -> pb.BulkWriteResponse:
    return pb.BulkWriteResponse(
        successful_key_count=res.successful_key_count, unsuccessful_keys=res.unsuccessful_keys, seq=res.seq
    )


def bulk_result_from_pb(msg: pb.BulkWriteResponse) -> BulkResult:
    return BulkResult(
        successful_key_count=msg.successful_key_count,
        unsuccessful_keys=list(msg.unsuccessful_keys),
        seq=msg.seq,
    )


def key_page_to_pb(page: KeyPage) -> pb.ListKeysResponse:
    return pb.ListKeysResponse(
        keys=[
            pb.KeyInfo(
                name=k.name,
                expiration=_exp_out(k.expiration),
                **_meta_out(k.metadata_json),
            )
            for k in page.keys
        ],
        cursor=page.cursor,
    )


def key_page_from_pb(msg: pb.ListKeysResponse) -> KeyPage:
    return KeyPage(
        keys=[
            KeyInfo(
                name=k.name,
                expiration=_exp_in(k.expiration),
                metadata_json=_meta_in(k.has_metadata, k.metadata_json),
            )
            for k in msg.keys
        ],
        cursor=msg.cursor,
    )


# -- tokens


def token_to_pb(token: Token) -> pb.TokenRecord:
    return pb.TokenRecord(
        id=token.id,
        account_id=token.account_id,
        permission=token.permission.value,
        secret_hash=token.secret_hash,
        created=token.created,
    )


def token_from_pb(msg: pb.TokenRecord) -> Token:
    return Token(
        id=msg.id,
        account_id=msg.account_id,
        permission=Permission(msg.permission),
        secret_hash=msg.secret_hash,
        created=msg.created,
    )


# -- replication


def change_to_pb(change: Change) -> pb.Change:
    msg = pb.Change(
        seq=change.seq,
        kind=int(change.kind),  # type: ignore[arg-type]
        commit_time=change.commit_time,
        namespace_id=change.namespace_id,
        account_id=change.account_id,
        key=change.key,
        expiration=_exp_out(change.expiration),
        **_meta_out(change.metadata_json),
        title=change.title,
        has_value=change.has_value,
    )
    if change.token is not None:
        msg.token.CopyFrom(token_to_pb(change.token))
    if change.has_value and change.value is not None:
        msg.value = change.value
    return msg


_CHANGE_KINDS = {kind.value: kind for kind in ChangeKind}  # a dict lookup, not an Enum call


def change_from_pb(msg: pb.Change) -> Change:
    return Change(
        seq=msg.seq,
        kind=_CHANGE_KINDS[msg.kind],
        commit_time=msg.commit_time,
        namespace_id=msg.namespace_id,
        account_id=msg.account_id,
        key=msg.key,
        expiration=_exp_in(msg.expiration),
        metadata_json=_meta_in(msg.has_metadata, msg.metadata_json),
        title=msg.title,
        token=token_from_pb(msg.token) if msg.HasField("token") else None,
        value=msg.value if msg.has_value else None,
        has_value=msg.has_value,
    )


def snapshot_to_pb(namespaces: Iterable[Namespace], tokens: Iterable[Token]) -> pb.Snapshot:
    return pb.Snapshot(
        namespaces=[namespace_to_pb(n) for n in namespaces],
        tokens=[token_to_pb(t) for t in tokens],
    )


def snapshot_from_pb(msg: pb.Snapshot) -> Snapshot:
    return Snapshot(
        namespaces=[namespace_from_pb(n) for n in msg.namespaces],
        tokens=[token_from_pb(t) for t in msg.tokens],
    )


def batch_to_pb(batch: ChangeBatch) -> pb.ChangeBatch:
    msg = pb.ChangeBatch(
        changes=[change_to_pb(c) for c in batch.changes],
        safe_seq=batch.safe_seq,
        committed_seq=batch.committed_seq,
        reset=batch.reset,
        has_snapshot=batch.snapshot is not None,
        replay=batch.replay,
        heartbeat=batch.heartbeat,
    )
    if batch.snapshot is not None:
        msg.snapshot.CopyFrom(snapshot_to_pb(batch.snapshot.namespaces, batch.snapshot.tokens))
    return msg


def batch_from_pb(msg: pb.ChangeBatch) -> ChangeBatch:
    return ChangeBatch(
        changes=[change_from_pb(c) for c in msg.changes],
        safe_seq=msg.safe_seq,
        committed_seq=msg.committed_seq,
        reset=msg.reset,
        snapshot=snapshot_from_pb(msg.snapshot) if msg.has_snapshot else None,
        replay=msg.replay,
        heartbeat=msg.heartbeat,
    )
