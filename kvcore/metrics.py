"""Prometheus metrics with the names of DESIGN.md, one registry per process.

Every series carries `region` (central is region "central"). Each process builds one
`Metrics` and passes it to what records; nothing uses the global default registry,
so several processes' worth of metrics can live in one test interpreter.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "HttpMetrics", "Metrics"]

# `*_created` series double the exposition for no use on dashboards.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Request latencies span cache hits (well under a millisecond) to 25 MiB uploads.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Replication lag spans creates (ms) to lazily flushed updates (up to the propagation delay).
_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 90.0, 120.0)
_WRITE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)


class LoopCounterSeries:
    """One labelled series of a `LoopCounter`."""

    __slots__ = ("_key", "_values")

    def __init__(self, values: dict[tuple[str, ...], float], key: tuple[str, ...]) -> None:
        self._values = values
        self._key = key
        values.setdefault(key, 0.0)

    def inc(self, amount: float = 1.0) -> None:
        self._values[self._key] += amount


class LoopCounter:
    """A labelled counter for per-request hot paths, without prometheus-client's lock.

    prometheus-client takes a lock on every increment (four per value read; the cost
    is in bench/reads.py); these series are only ever touched and scraped on the process's event-loop
    thread, so a plain float add is exact. Exposed exactly like a `Counter`."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry):
        self._name, self._doc, self._labelnames = name, documentation, list(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        self._series: dict[tuple[str, ...], LoopCounterSeries] = {}
        registry.register(self)

    def labels(self, *values: str) -> LoopCounterSeries:
        series = self._series.get(values)
        if series is None:
            series = self._series[values] = LoopCounterSeries(self._values, values)
        return series

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self._name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._doc, labels=self._labelnames)
        for key, value in list(self._values.items()):
            family.add_metric(list(key), value)
        yield family


class LoopHistogramSeries:
    """One labelled series of a `LoopHistogram`."""

    __slots__ = ("_bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last slot is +Inf
        self.total = 0.0

    def observe(self, value: float, times: int = 1) -> None:
        """Count `value` `times` times (a group of writes that took one duration)."""
        self.counts[bisect_left(self._bounds, value)] += times
        self.total += value * times


class LoopHistogram:
    """A labelled histogram with the same event-loop-only contract as `LoopCounter`."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ):
        self._name, self._doc, self._labelnames = name, documentation, list(labelnames)
        self._bounds = tuple(sorted(buckets))
        self._children: dict[tuple[str, ...], LoopHistogramSeries] = {}
        registry.register(self)

    def labels(self, *values: str) -> LoopHistogramSeries:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = LoopHistogramSeries(self._bounds)
        return child

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._doc, labels=self._labelnames)
        for key, child in list(self._children.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*self._bounds, float("inf")), child.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
            family.add_metric(list(key), buckets, child.total)
        yield family


_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "OPTIONS"})


class Metrics:
    def __init__(self, region: str) -> None:
        self.region = region
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
        # process_start_time_seconds, ... of this process (Linux /proc).
        ProcessCollector(registry=r)
        lr = ["region"]

        def gauge(name: str, documentation: str) -> Gauge:
            return Gauge(name, documentation, lr, registry=r)

        def counter(name: str, documentation: str) -> Counter:
            return Counter(name, documentation, lr, registry=r)

        # -- every process
        # Touched on every request: the lock-free kinds (see LoopCounter).
        self.http_requests = LoopCounter(
            "edgekv_http_requests", "HTTP requests served", [*lr, "route", "method", "code"], r
        )
        self.http_duration = LoopHistogram(
            "edgekv_http_request_duration_seconds",
            "HTTP request latency",
            [*lr, "route"],
            _LATENCY_BUCKETS,
            r,
        )
        # -- replica cache
        self.cache_requests = LoopCounter(
            "edgekv_cache_requests", "Value reads by cache outcome", [*lr, "result"], r
        )
        self.cache_bytes = gauge("edgekv_cache_bytes", "Bytes of keys and values in the edge cache")
        self.cache_keys = gauge("edgekv_cache_keys", "Keys in the edge cache")
        self.cache_evictions = counter("edgekv_cache_evictions", "Entries evicted from the cache")
        self.cache_admissions = counter("edgekv_cache_admissions", "Entries admitted to the cache")
        # -- replication
        self.applied_seq = gauge(
            "edgekv_replication_applied_seq", "Highest seq applied from the change stream"
        )
        self.committed_seq = gauge(
            "edgekv_central_committed_seq", "Central's last committed seq (as known here)"
        )
        # Observed for every key change a replica applies, on its event loop only.
        self.replication_lag = LoopHistogram(
            "edgekv_replication_lag_seconds",
            "Central commit to applied at the replica",
            [*lr, "kind"],
            _LAG_BUCKETS,
            r,
        )
        self.replication_connected = gauge("edgekv_replication_connected", "1 while the change stream is up")
        self.replication_staleness = gauge(
            "edgekv_replication_staleness_seconds",
            "Seconds since the replica last heard from central (0 while connected)",
        )
        # -- central
        self.pending_updates = gauge(
            "edgekv_replication_pending_updates", "Updates held for lazy propagation"
        )
        self.coalesced = counter("edgekv_replication_coalesced", "Updates superseded before they were sent")
        self.subscribers = gauge("edgekv_replication_subscribers", "Replicas subscribed to the change stream")
        self.subscriber_resets = counter(
            "edgekv_replication_resets", "Subscribers reset (too far behind or log truncated)"
        )
        # Counted on central's event loop for every write (the lock-free kinds).
        self.writes = LoopCounter("edgekv_writes", "Committed write operations", [*lr, "op"], r)
        self.write_duration = LoopHistogram(
            "edgekv_write_duration_seconds",
            "Durable write latency (queue + batch + WAL sync)",
            lr,
            _WRITE_BUCKETS,
            r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """`edgekv_http_requests_total{route,method,code}` and
    `edgekv_http_request_duration_seconds{route}` of one process's REST app. `route` is
    the name of the route that matched (`kvcore.rest.routing.Route.name`), "other" when
    none did; methods outside the usual seven are counted as "other"."""

    def __init__(self, metrics: Metrics, region: str) -> None:
        self._metrics = metrics
        self._region = region
        self._counters: dict[tuple[str, str, int], LoopCounterSeries] = {}
        self._histograms: dict[str, LoopHistogramSeries] = {}

    def series(self, route: str, method: str, status: int) -> tuple[LoopCounterSeries, LoopHistogramSeries]:
        """The counter and histogram of one (route, method, status), kept for reuse."""
        if method not in _METHODS:
            method = "other"
        counter = self._counters.get((route, method, status))
        if counter is None:
            counter = self._metrics.http_requests.labels(self._region, route, method, str(status))
            self._counters[(route, method, status)] = counter
        hist = self._histograms.get(route)
        if hist is None:
            hist = self._histograms[route] = self._metrics.http_duration.labels(self._region, route)
        return counter, hist

    def record(self, route: str, method: str, status: int, elapsed_s: float) -> None:
        counter, hist = self.series(route, method, status)
        counter.inc()
        hist.observe(elapsed_s)
