"""A replica's side of the web dashboard (`/ui/api`).

- `status`: this region at a glance, from what the replica already measures: the
  stream's state, applied and committed seqs, the cache hit ratio (the edge's read
  counts, as `/metrics` shows them) and the mean replication lag (read from its own
  Prometheus registry).
- `inspect`: this region's copy of one key, looked at without counting a read: no
  frequency-sketch increment, no hit/miss counter, no read-through, nothing installed
  or dropped. Central's `locate` asks every region this.
- `regions` and `locate` are central's: relayed to it over gRPC, so `/ui` shows the
  same region view on every process.

Every route needs a token that may read `account_id`.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from kvcore.errors import KVError
from kvcore.metrics import Metrics
from kvcore.rest import envelope
from kvcore.rpc.client import CentralClient
from kvcore.ui.api import DashboardApi, Handler, UiRequest, authorize_read, json_handler, key_target, mean
from kvcore.ui.assets import asset_routes
from replica.backend import ReplicaBackend
from replica.edge import EdgeState
from replica.stream import StreamStatus

_LAG_FAMILY = "edgekv_replication_lag_seconds"
_CENTRAL_ROUTES = ("/ui/api/regions", "/ui/api/locate")


class ReplicaDashboard:
    def __init__(
        self,
        *,
        edge: EdgeState,
        backend: ReplicaBackend,
        central: CentralClient,
        metrics: Metrics,
        stream: StreamStatus,
    ) -> None:
        self._edge = edge
        self._backend = backend
        self._central = central
        self._registry = metrics.registry
        self._stream = stream
        handlers: dict[str, Handler] = {
            "/ui/api/status": json_handler(self.status),
            "/ui/api/inspect": json_handler(self.inspect),
        }
        handlers.update({path: self.relay for path in _CENTRAL_ROUTES})
        self.api = DashboardApi(handlers)

    def routes(self) -> list[BaseRoute]:
        """The page's files at `/ui` and the JSON routes under `/ui/api`."""
        return [*asset_routes(), *self.api.routes()]

    async def status(self, req: UiRequest) -> dict[str, Any]:
        await authorize_read(self._backend, req)
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """This region's state: {region, connected, staleness_s, applied_seq, committed_seq,
        seq_behind, lag_s: {create, update} (mean seconds, None before any), hit_ratio
        (None before any read), reads, cache_keys, cache_bytes}."""
        edge = self._edge
        reads = edge.hits + edge.negative_hits + edge.misses
        return {
            "region": self._backend.region,
            "connected": self._stream.connected,
            "staleness_s": self._stream.staleness(),
            "applied_seq": edge.applied_seq,
            "committed_seq": edge.committed_seq,
            "seq_behind": max(0, edge.committed_seq - edge.applied_seq),
            "lag_s": self._mean_lags(),
            "hit_ratio": (edge.hits + edge.negative_hits) / reads if reads else None,
            "reads": reads,
            "cache_keys": len(edge.cache),
            "cache_bytes": edge.cache.bytes_used,
        }

    def _mean_lags(self) -> dict[str, float | None]:
        """{create, update}: mean replication lag in seconds (None before any), from the
        histogram's sum and count: one pass over the registry."""
        sums: dict[tuple[str, str], float] = {}
        for family in self._registry.collect():
            if family.name == _LAG_FAMILY:
                for sample in family.samples:
                    sums[(sample.name, sample.labels.get("kind", ""))] = sample.value
        return {
            kind: mean(sums.get((f"{_LAG_FAMILY}_sum", kind)), sums.get((f"{_LAG_FAMILY}_count", kind)))
            for kind in ("create", "update")
        }

    async def inspect(self, req: UiRequest) -> dict[str, Any]:
        """{region, namespace_known, cached, version, age_s, expiration, negative_as_of,
        read_frequency}: the copy as it is, looked at without counting a read."""
        _, account_id = await authorize_read(self._backend, req)
        namespace_id, key = key_target(req)
        edge = self._edge
        known = edge.local_namespace(account_id, namespace_id)
        ref = (namespace_id, key)
        cached = edge.peek(ref)
        now = edge.clock.now()
        return {
            "region": self._backend.region,
            "namespace_known": known,
            "cached": cached is not None,
            "version": cached.entry.version if cached else None,
            "age_s": max(0.0, now - cached.installed_at) if cached else None,
            "expiration": cached.entry.expiration if cached else None,
            "negative_as_of": edge.negative.as_of(ref),
            "read_frequency": edge.cache.frequency(ref),
        }

    async def relay(self, req: UiRequest) -> tuple[int, bytes]:
        """Central's answer to the same route, as it is."""
        try:
            return await self._central.dashboard_relay(req.path, req.query, req.authorization)
        except KVError as exc:  # central unreachable or too slow: Unavailable (503)
            return exc.http_status, envelope.error_body(exc)
