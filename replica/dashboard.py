"""A replica's side of the web dashboard (`/ui/api`).

- `status`: this region at a glance, from what the replica already measures: the
  stream's state, applied and committed seqs, the mean replication lag and the cache
  hit ratio (read from its own Prometheus registry, as `/metrics` shows them).
- `inspect`: this region's copy of one key, looked at without counting a read: no
  frequency-sketch increment, no hit/miss counter, no read-through, nothing installed
  or dropped. Central's `locate` asks every region this.
- `regions` and `locate` are central's: relayed to it over gRPC, so `/ui` shows the
  same region view on every process.

Every route needs a token that may read `account_id`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute

from kvcore.clock import Clock
from kvcore.errors import KVError
from kvcore.metrics import Metrics
from kvcore.rest import envelope
from kvcore.rest.backend import Backend
from kvcore.rpc.client import CentralClient
from kvcore.ui.api import DashboardApi, Handler, UiRequest, authorize_read, json_handler, key_target, mean
from kvcore.ui.assets import asset_routes
from replica.edge import EdgeState

# The metric families `snapshot` reads (family names, without the _total/_sum suffixes).
_READ_FAMILIES = frozenset({"edgekv_cache_requests", "edgekv_replication_lag_seconds"})
_CENTRAL_ROUTES = ("/ui/api/regions", "/ui/api/locate")


class ReplicaDashboard:
    def __init__(
        self,
        *,
        edge: EdgeState,
        backend: Backend,
        central: CentralClient,
        metrics: Metrics,
        clock: Clock,
        connected: Callable[[], bool],
        staleness_s: Callable[[], float],
    ) -> None:
        self._edge = edge
        self._backend = backend
        self._central = central
        self._metrics = metrics
        self._clock = clock
        self._connected = connected
        self._staleness_s = staleness_s
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
        samples = self._samples()
        reads = {
            result: samples.get(("edgekv_cache_requests_total", result), 0.0)
            for result in ("hit", "miss", "negative_hit")
        }
        total = sum(reads.values())
        lag = {
            kind: mean(
                samples.get(("edgekv_replication_lag_seconds_sum", kind)),
                samples.get(("edgekv_replication_lag_seconds_count", kind)),
            )
            for kind in ("create", "update")
        }
        return {
            "region": edge.region,
            "connected": self._connected(),
            "staleness_s": self._staleness_s(),
            "applied_seq": edge.applied_seq,
            "committed_seq": edge.committed_seq,
            "seq_behind": max(0, edge.committed_seq - edge.applied_seq),
            "lag_s": lag,
            "hit_ratio": (reads["hit"] + reads["negative_hit"]) / total if total else None,
            "reads": int(total),
            "cache_keys": len(edge.cache),
            "cache_bytes": edge.cache.bytes_used,
        }

    def _samples(self) -> dict[tuple[str, str], float]:
        """(sample name, result or kind label) -> value, for the series `snapshot` reads:
        one pass over the registry (`get_sample_value` would collect it once per value)."""
        out: dict[tuple[str, str], float] = {}
        for family in self._metrics.registry.collect():
            if family.name not in _READ_FAMILIES:
                continue
            for sample in family.samples:
                label = sample.labels.get("result") or sample.labels.get("kind")
                if label is not None and "le" not in sample.labels:
                    out[(sample.name, label)] = sample.value
        return out

    async def inspect(self, req: UiRequest) -> dict[str, Any]:
        """{region, namespace_known, cached, version, age_s, expiration, negative_as_of,
        read_frequency}: the copy as it is, looked at without counting a read."""
        _, account_id = await authorize_read(self._backend, req)
        namespace_id, key = key_target(req)
        edge = self._edge
        known = edge.local_namespace(account_id, namespace_id)
        ref = (namespace_id, key)
        cached = edge.cache.get(ref)  # a plain look: no sketch increment, no metrics
        now = self._clock.now()
        if cached is not None and cached.entry.expiration is not None and cached.entry.expiration <= now:
            cached = None  # expired: the next read drops it
        return {
            "region": edge.region,
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
