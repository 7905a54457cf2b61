"""Central's gRPC servicers: KV and Admin over the store (Replication: replication_api.py).

Thin by design: a write request is decoded (kvcore.wire) into the store's operation
(kvcore.store.ops), validated once with kvcore.limits as it enters, and submitted;
reads go to the store; any KVError becomes a gRPC status through the table in
kvcore.rpc.errors.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from kvcore import limits, wire
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KVError, NamespaceNotFound
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.rpc.errors import status_of, trailing_metadata_of
from kvcore.store.base import Store, Writes
from kvcore.store.ops import (
    CreateNamespaceOp,
    DeleteNamespaceOp,
    DeleteOp,
    PutOp,
    PutTokenOp,
    RenameNamespaceOp,
    RevokeTokenOp,
)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _kv_errors(fn: F) -> F:
    """Abort the call with the KVError's gRPC status and Cloudflare code."""

    @functools.wraps(fn)
    async def wrapper(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fn(self, request, context)
        except KVError as exc:
            context.set_trailing_metadata(trailing_metadata_of(exc))
            await context.abort(status_of(exc), exc.message)

    return wrapper  # type: ignore[return-value]


def _ns(namespace_id: str) -> str:
    if not limits.is_namespace_id(namespace_id):
        raise NamespaceNotFound()
    return namespace_id


def put_op(msg: pb.PutRequest, now: float) -> PutOp:
    """The validated operation of a put request (unary or streamed); `now` is central's
    wall clock (epoch seconds) for the expiration bounds."""
    op = wire.put_from_pb(msg)
    limits.validate_write_item(op.item, now)
    _ns(op.namespace_id)
    return op


def delete_op(msg: pb.DeleteRequest) -> DeleteOp:
    """The validated operation of a delete request (unary or streamed)."""
    op = wire.delete_from_pb(msg)
    limits.validate_point_key(op.key)
    _ns(op.namespace_id)
    return op


class KVService(pb_grpc.KVServicer):  # type: ignore[misc]
    def __init__(self, store: Store, writes: Writes, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._writes = writes
        self._clock = clock

    @_kv_errors
    async def CreateNamespace(self, request: pb.CreateNamespaceRequest, context: Any) -> pb.Namespace:
        limits.validate_account_id(request.account_id)
        op = CreateNamespaceOp(request.account_id, limits.validate_title(request.title))
        return wire.namespace_to_pb(await self._writes.submit(op))

    @_kv_errors
    async def GetNamespace(self, request: pb.NamespaceRef, context: Any) -> pb.Namespace:
        return wire.namespace_to_pb(self._store.get_namespace(request.account_id, _ns(request.namespace_id)))

    @_kv_errors
    async def ListNamespaces(
        self, request: pb.ListNamespacesRequest, context: Any
    ) -> pb.ListNamespacesResponse:
        page, per_page = limits.validate_page(request.page or None, request.per_page or None)
        order, direction = limits.validate_order(request.order or "id", request.direction or "asc")
        items, total = self._store.list_namespaces(request.account_id, page, per_page, order, direction)
        return pb.ListNamespacesResponse(
            namespaces=[wire.namespace_to_pb(n) for n in items], total_count=total
        )

    @_kv_errors
    async def RenameNamespace(self, request: pb.RenameNamespaceRequest, context: Any) -> pb.Namespace:
        title = limits.validate_title(request.title)
        op = RenameNamespaceOp(request.account_id, _ns(request.namespace_id), title)
        return wire.namespace_to_pb(await self._writes.submit(op))

    @_kv_errors
    async def DeleteNamespace(self, request: pb.NamespaceRef, context: Any) -> pb.Empty:
        await self._writes.submit(DeleteNamespaceOp(request.account_id, _ns(request.namespace_id)))
        return pb.Empty()

    @_kv_errors
    async def Put(self, request: pb.PutRequest, context: Any) -> pb.WriteResponse:
        res = await self._writes.submit(put_op(request, self._clock.now()))
        return wire.write_result_to_pb(res)

    @_kv_errors
    async def Get(self, request: pb.GetRequest, context: Any) -> pb.GetResponse:
        limits.validate_point_key(request.key)
        # Read the seq first: the entry is then at least as new as as_of_seq.
        as_of = self._store.committed_seq
        entry = await self._store.read(
            self._store.get, request.account_id, _ns(request.namespace_id), request.key
        )
        return wire.get_response(entry, as_of, with_value=not request.metadata_only)

    @_kv_errors
    async def Delete(self, request: pb.DeleteRequest, context: Any) -> pb.WriteResponse:
        return wire.write_result_to_pb(await self._writes.submit(delete_op(request)))

    @_kv_errors
    async def BulkPut(self, request: pb.BulkPutRequest, context: Any) -> pb.BulkWriteResponse:
        limits.validate_bulk_count(len(request.items))
        op = wire.bulk_put_from_pb(request)
        now = self._clock.now()
        for i, item in enumerate(op.items):
            limits.validate_write_item(item, now, f"[{i}].")
        _ns(op.namespace_id)
        return wire.bulk_result_to_pb(await self._writes.submit(op))

    @_kv_errors
    async def BulkDelete(self, request: pb.BulkDeleteRequest, context: Any) -> pb.BulkWriteResponse:
        limits.validate_bulk_count(len(request.keys), "bulk delete")
        op = wire.bulk_delete_from_pb(request)
        for i, key in enumerate(op.keys):
            limits.validate_key(key, f"body[{i}]")
        _ns(op.namespace_id)
        return wire.bulk_result_to_pb(await self._writes.submit(op))

    @_kv_errors
    async def BulkGet(self, request: pb.BulkGetRequest, context: Any) -> pb.BulkGetResponse:
        limits.validate_bulk_get_count(len(request.keys))
        keys = [limits.validate_key(k, f"keys[{i}]") for i, k in enumerate(request.keys)]
        as_of = self._store.committed_seq
        entries = await self._store.read(
            self._store.bulk_get, request.account_id, _ns(request.namespace_id), keys
        )
        return pb.BulkGetResponse(results=[wire.get_response(e, as_of) for e in entries])

    @_kv_errors
    async def ListKeys(self, request: pb.ListKeysRequest, context: Any) -> pb.ListKeysResponse:
        limit = limits.validate_list_limit(request.limit or None)
        limits.validate_prefix(request.prefix)
        page = await self._store.read(
            self._store.list_keys,
            request.account_id,
            _ns(request.namespace_id),
            request.prefix,
            limit,
            request.cursor,
        )
        return wire.key_page_to_pb(page)


class AdminService(pb_grpc.AdminServicer):  # type: ignore[misc]
    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._clock = clock

    @_kv_errors
    async def CreateToken(self, request: pb.CreateTokenRequest, context: Any) -> pb.CreateTokenResponse:
        op, secret = PutTokenOp.new(
            request.account_id, request.permission, request.secret or None, self._clock.now()
        )
        token = await self._store.submit(op)
        return pb.CreateTokenResponse(token=wire.token_to_pb(token), secret=secret)

    @_kv_errors
    async def ListTokens(self, request: pb.ListTokensRequest, context: Any) -> pb.ListTokensResponse:
        tokens = self._store.list_tokens(request.account_id or None)
        return pb.ListTokensResponse(tokens=[wire.token_to_pb(t) for t in tokens])

    @_kv_errors
    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Any) -> pb.Empty:
        await self._store.submit(RevokeTokenOp(request.token_id))
        return pb.Empty()
