"""`CentralClient`: central's gRPC API with domain types in and out.

Used by replicas (read-through, write forwarding, the change stream), by the
`edgekv token` commands and by tests. Every unary call has a deadline so a replica
cut off from central fails fast (C7) instead of hanging a request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

import grpc

from kvcore import wire
from kvcore.errors import InternalError, KVError, Unavailable
from kvcore.model import ChangeBatch, Entry, KeyPage, Namespace, Permission, Token
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.rpc.errors import from_rpc_error
from kvcore.rpc.failover import central_channel
from kvcore.rpc.security import SECRET_KEY, speaks_tls
from kvcore.rpc.write_stream import MAX_STREAMED_VALUE_BYTES, StreamedWrites
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

R = TypeVar("R")

DEFAULT_TIMEOUT_S = 5.0
# Large writes (a 25 MiB value, a 10,000-item bulk) get more time than point reads.
WRITE_TIMEOUT_S = 30.0

# The one place an operation of the store's vocabulary (kvcore.store.ops) meets the RPC
# that carries it: op type -> (KV method, request encoder, response decoder, deadline
# in seconds; None = the client's `timeout_s`).
_WRITE_RPCS: dict[type, tuple[str, Callable[[Any], Any], Callable[[Any], Any], float | None]] = {
    PutOp: ("Put", wire.put_to_pb, wire.write_result_from_pb, WRITE_TIMEOUT_S),
    DeleteOp: ("Delete", wire.delete_to_pb, wire.write_result_from_pb, WRITE_TIMEOUT_S),
    BulkPutOp: ("BulkPut", wire.bulk_put_to_pb, wire.bulk_result_from_pb, WRITE_TIMEOUT_S),
    BulkDeleteOp: ("BulkDelete", wire.bulk_delete_to_pb, wire.bulk_result_from_pb, WRITE_TIMEOUT_S),
    CreateNamespaceOp: ("CreateNamespace", wire.create_namespace_to_pb, wire.namespace_from_pb, None),
    RenameNamespaceOp: ("RenameNamespace", wire.rename_namespace_to_pb, wire.namespace_from_pb, None),
    DeleteNamespaceOp: ("DeleteNamespace", wire.namespace_ref_to_pb, lambda _: None, None),
}
# A dashboard call waits for central, which asks every region (about 1.5 s at worst).
RELAY_TIMEOUT_S = 5.0


class CentralClient:
    def __init__(
        self,
        target: str,
        *,
        cluster_secret: str | None = None,
        tls_ca: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        stream_writes: bool = True,
    ) -> None:
        """`stream_writes` (default): point writes (`PutOp`, `DeleteOp`) travel on the shared
        write stream (many writes per message, see kvcore.rpc.write_stream) instead of one
        unary call each; same results, errors and deadlines. With 64 concurrent writers
        that is 5-10k durable puts/s against ~2k/s for unary `Put` calls, whose per-call
        cost in grpc.aio limits central (see the README's benchmark notes). False: one
        unary call per write (tests of the unary RPCs)."""
        self.target = target
        self.stream_writes = stream_writes
        self.timeout_s = timeout_s
        self._metadata: tuple[tuple[str, str], ...] = (
            ((SECRET_KEY, cluster_secret),) if cluster_secret else ()
        )
        self._tls = bool(tls_ca)
        # 'HOST:PORT[,HOST:PORT...]': several centrals on one store fail over (rpc/failover.py).
        self._channel = central_channel(target, tls_ca)
        self._kv = pb_grpc.KVStub(self._channel)
        self._repl = pb_grpc.ReplicationStub(self._channel)
        self._admin = pb_grpc.AdminStub(self._channel)
        self._streamed = StreamedWrites(self._channel, self._metadata)

    async def close(self) -> None:
        await self._streamed.close()
        await self._channel.close()

    async def __aenter__(self) -> CentralClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _error(self, err: grpc.aio.AioRpcError) -> KVError:
        """The KVError for a failed call, with "pass --tls-ca" when a plaintext client
        met a TLS central (gRPC itself only says "Socket closed")."""
        return await self._explained(from_rpc_error(err))

    async def _explained(self, exc: KVError) -> KVError:
        """`exc`, its detail saying "pass --tls-ca" when a plaintext client met a TLS central."""
        plaintext_refused = isinstance(exc, Unavailable) and not self._tls and "Socket closed" in exc.detail
        if plaintext_refused and await speaks_tls(self.target.split(",")[0]):
            exc.detail = f"TLS handshake failed: pass --tls-ca (central speaks TLS) [{exc.detail}]"
        return exc

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        try:
            return await method(request, timeout=timeout or self.timeout_s, metadata=self._metadata)
        except grpc.aio.AioRpcError as err:
            raise await self._error(err) from None

    # -- writes

    async def submit(self, op: Op[R], *, timeout_s: float | None = None) -> R:
        """Commit `op` at central and return its result (as `Store.submit` does there);
        raises the KVError central answered with, or Unavailable when central did not
        answer within `timeout_s` seconds (default: the op's deadline in `_WRITE_RPCS`).
        With `stream_writes`, a `PutOp` (of a value up to `MAX_STREAMED_VALUE_BYTES`)
        or `DeleteOp` travels on the shared write stream, within the same deadline."""
        try:
            method, encode, decode, op_timeout_s = _WRITE_RPCS[type(op)]
        except KeyError:
            raise InternalError(f"no RPC carries a {type(op).__name__}") from None
        timeout_s = timeout_s or op_timeout_s or self.timeout_s
        big = isinstance(op, PutOp) and len(op.item.value) > MAX_STREAMED_VALUE_BYTES
        if self.stream_writes and isinstance(op, PutOp | DeleteOp) and not big:
            try:
                return cast(R, await self._streamed.submit(op, timeout_s))
            except Unavailable as exc:
                raise await self._explained(exc) from None
        return cast(R, decode(await self._call(getattr(self._kv, method), encode(op), timeout_s)))

    @property
    def stream_batches_sent(self) -> int:
        """Messages sent on the write stream so far (tests, benchmarks)."""
        return self._streamed.batches_sent

    # -- reads

    async def get_namespace(self, account_id: str, namespace_id: str) -> Namespace:
        msg = await self._call(
            self._kv.GetNamespace, pb.NamespaceRef(account_id=account_id, namespace_id=namespace_id)
        )
        return wire.namespace_from_pb(msg)

    async def list_namespaces(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int]:
        msg = await self._call(
            self._kv.ListNamespaces,
            pb.ListNamespacesRequest(
                account_id=account_id, page=page, per_page=per_page, order=order, direction=direction
            ),
        )
        return [wire.namespace_from_pb(n) for n in msg.namespaces], msg.total_count

    async def get(
        self, account_id: str, namespace_id: str, key: str, *, metadata_only: bool = False
    ) -> tuple[Entry | None, int]:
        """The live entry (or None) and central's committed seq when it was read."""
        msg = await self._call(
            self._kv.Get,
            pb.GetRequest(
                account_id=account_id, namespace_id=namespace_id, key=key, metadata_only=metadata_only
            ),
        )
        return (wire.entry_from_pb(msg.entry) if msg.found else None), msg.as_of_seq

    async def bulk_get(self, account_id: str, namespace_id: str, keys: Sequence[str]) -> list[Entry | None]:
        msg = await self._call(
            self._kv.BulkGet,
            pb.BulkGetRequest(account_id=account_id, namespace_id=namespace_id, keys=list(keys)),
        )
        return [wire.entry_from_pb(r.entry) if r.found else None for r in msg.results]

    async def list_keys(
        self, account_id: str, namespace_id: str, prefix: str, limit: int, cursor: str
    ) -> KeyPage:
        msg = await self._call(
            self._kv.ListKeys,
            pb.ListKeysRequest(
                account_id=account_id, namespace_id=namespace_id, prefix=prefix, limit=limit, cursor=cursor
            ),
        )
        return wire.key_page_from_pb(msg)

    # -- replication

    async def subscribe(self, region: str, from_seq: int, http_url: str = "") -> AsyncIterator[ChangeBatch]:
        """The change stream; raises a KVError (usually Unavailable) when it breaks.
        `http_url` is this replica's advertised HTTP base URL (for central's dashboard)."""
        call = self._repl.Subscribe(
            pb.SubscribeRequest(region=region, from_seq=from_seq, http_url=http_url), metadata=self._metadata
        )
        try:
            async for msg in call:
                yield wire.batch_from_pb(msg)
        except grpc.aio.AioRpcError as err:
            raise await self._error(err) from None
        finally:
            call.cancel()

    async def report_hot_keys(self, region: str, keys: Sequence[tuple[str, str]]) -> None:
        await self._call(
            self._repl.ReportHotKeys,
            pb.HotKeysReport(region=region, keys=[pb.HotKey(namespace_id=n, key=k) for n, k in keys]),
        )

    # -- dashboard

    async def dashboard_relay(
        self, path: str, query: str, authorization: str, *, timeout_s: float = RELAY_TIMEOUT_S
    ) -> tuple[int, bytes]:
        """Central's answer (HTTP status, JSON body) to one of its `/ui/api` routes."""
        msg = await self._call(
            pb_grpc.DashboardStub(self._channel).Relay,  # a stub is a thin wrapper: made per call
            pb.DashboardRequest(path=path, query=query, authorization=authorization),
            timeout_s,
        )
        return int(msg.status), bytes(msg.body)

    # -- admin

    async def create_token(
        self, account_id: str, permission: Permission, secret: str | None = None
    ) -> tuple[Token, str]:
        msg = await self._call(
            self._admin.CreateToken,
            pb.CreateTokenRequest(account_id=account_id, permission=permission.value, secret=secret or ""),
        )
        return wire.token_from_pb(msg.token), msg.secret

    async def list_tokens(self, account_id: str | None = None) -> list[Token]:
        msg = await self._call(self._admin.ListTokens, pb.ListTokensRequest(account_id=account_id or ""))
        return [wire.token_from_pb(t) for t in msg.tokens]

    async def revoke_token(self, token_id: str) -> None:
        await self._call(self._admin.RevokeToken, pb.RevokeTokenRequest(token_id=token_id))
