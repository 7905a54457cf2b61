"""Central's gRPC servicers: KV and Admin over the store (Replication: replication_api.py).

Thin by design: requests are validated with kvcore.limits and converted with
kvcore.wire, the store does the work, and any KVError becomes a gRPC status through
the table in kvcore.rpc.errors.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from central.writes import MeteredWrites
from kvcore import limits, wire
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KVError, NamespaceNotFound, ValidationError
from kvcore.model import Permission, WriteItem
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.rpc.errors import status_of, trailing_metadata_of
from kvcore.store.base import Store

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


def _item(msg: pb.WriteItem, now: float, field: str = "item") -> WriteItem:
    item = wire.write_item_from_pb(msg)
    limits.validate_key(item.key, f"{field}.key")
    limits.validate_value(item.value, f"{field}.value")
    if item.metadata_json is not None:
        limits.check_metadata_json(item.metadata_json, f"{field}.metadata")
    limits.check_forwarded_expiration(now, item.expiration, f"{field}.expiration")
    return item


class KVService(pb_grpc.KVServicer):  # type: ignore[misc]
    def __init__(self, store: Store, writes: MeteredWrites, clock: Clock = SYSTEM_CLOCK) -> None:
        self._store = store
        self._writes = writes
        self._clock = clock

    @_kv_errors
    async def CreateNamespace(self, request: pb.CreateNamespaceRequest, context: Any) -> pb.Namespace:
        title = limits.validate_title(request.title)
        return wire.namespace_to_pb(await self._writes.acreate_namespace(request.account_id, title))

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
        ns = await self._writes.arename_namespace(request.account_id, _ns(request.namespace_id), title)
        return wire.namespace_to_pb(ns)

    @_kv_errors
    async def DeleteNamespace(self, request: pb.NamespaceRef, context: Any) -> pb.Empty:
        await self._writes.adelete_namespace(request.account_id, _ns(request.namespace_id))
        return pb.Empty()

    @_kv_errors
    async def Put(self, request: pb.PutRequest, context: Any) -> pb.WriteResponse:
        item = _item(request.item, self._clock.now())
        cond = wire.condition_from_pb(request.condition)
        res = await self._writes.aput(request.account_id, _ns(request.namespace_id), item, cond)
        return wire.write_result_to_pb(res)

    @_kv_errors
    async def Get(self, request: pb.GetRequest, context: Any) -> pb.GetResponse:
        limits.validate_key(request.key, "key")
        # Read the seq first: the entry is then at least as new as as_of_seq.
        as_of = self._store.committed_seq
        entry = await self._store.aget(request.account_id, _ns(request.namespace_id), request.key)
        return wire.get_response(entry, as_of, with_value=not request.metadata_only)

    @_kv_errors
    async def Delete(self, request: pb.DeleteRequest, context: Any) -> pb.WriteResponse:
        limits.validate_key(request.key, "key")
        cond = wire.condition_from_pb(request.condition)
        res = await self._writes.adelete(request.account_id, _ns(request.namespace_id), request.key, cond)
        return wire.write_result_to_pb(res)

    @_kv_errors
    async def BulkPut(self, request: pb.BulkPutRequest, context: Any) -> pb.BulkWriteResponse:
        limits.validate_bulk_count(len(request.items))
        now = self._clock.now()
        items = [_item(m, now, f"items[{i}]") for i, m in enumerate(request.items)]
        res = await self._writes.abulk_put(request.account_id, _ns(request.namespace_id), items)
        return wire.bulk_result_to_pb(res)

    @_kv_errors
    async def BulkDelete(self, request: pb.BulkDeleteRequest, context: Any) -> pb.BulkWriteResponse:
        limits.validate_bulk_count(len(request.keys), "bulk delete")
        keys = [limits.validate_key(k, f"keys[{i}]") for i, k in enumerate(request.keys)]
        res = await self._writes.abulk_delete(request.account_id, _ns(request.namespace_id), keys)
        return wire.bulk_result_to_pb(res)

    @_kv_errors
    async def BulkGet(self, request: pb.BulkGetRequest, context: Any) -> pb.BulkGetResponse:
        limits.validate_bulk_get_count(len(request.keys))
        keys = [limits.validate_key(k, f"keys[{i}]") for i, k in enumerate(request.keys)]
        as_of = self._store.committed_seq
        entries = await self._store.abulk_get(request.account_id, _ns(request.namespace_id), keys)
        return pb.BulkGetResponse(results=[wire.get_response(e, as_of) for e in entries])

    @_kv_errors
    async def ListKeys(self, request: pb.ListKeysRequest, context: Any) -> pb.ListKeysResponse:
        limit = limits.validate_list_limit(request.limit or None)
        page = await self._store.alist_keys(
            request.account_id, _ns(request.namespace_id), request.prefix, limit, request.cursor
        )
        return wire.key_page_to_pb(page)


class AdminService(pb_grpc.AdminServicer):  # type: ignore[misc]
    def __init__(self, store: Store) -> None:
        self._store = store

    @_kv_errors
    async def CreateToken(self, request: pb.CreateTokenRequest, context: Any) -> pb.CreateTokenResponse:
        limits.validate_account_id(request.account_id)
        try:
            permission = Permission(request.permission)
        except ValueError:
            raise ValidationError("permission: must be 'read' or 'write'") from None
        token, secret = await asyncio.to_thread(
            self._store.create_token, request.account_id, permission, request.secret or None
        )
        return pb.CreateTokenResponse(token=wire.token_to_pb(token), secret=secret)

    @_kv_errors
    async def ListTokens(self, request: pb.ListTokensRequest, context: Any) -> pb.ListTokensResponse:
        tokens = self._store.list_tokens(request.account_id or None)
        return pb.ListTokensResponse(tokens=[wire.token_to_pb(t) for t in tokens])

    @_kv_errors
    async def RevokeToken(self, request: pb.RevokeTokenRequest, context: Any) -> pb.Empty:
        await asyncio.to_thread(self._store.revoke_token, request.token_id)
        return pb.Empty()
