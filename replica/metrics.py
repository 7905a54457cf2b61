"""The replica's Prometheus series, observed from outside what they describe.

`EdgeState` and `StreamSubscriber` hold plain counters and flags and know nothing of
Prometheus; `observe` makes the process's `Metrics` (names, help and labels as
kvcore.metrics and DESIGN.md give them) read those at scrape time:

- `edgekv_cache_requests_total{result}` from `EdgeState.hits`, `negative_hits`, `misses`
- `edgekv_cache_admissions_total`, `edgekv_cache_evictions_total` from the cache's counts
- `edgekv_cache_bytes`, `edgekv_cache_keys`, `edgekv_replication_applied_seq`,
  `edgekv_central_committed_seq` from the state as it is
- `edgekv_replication_connected`, `edgekv_replication_staleness_seconds` from `StreamStatus`

The one series made of events, `edgekv_replication_lag_seconds{kind}`, is fed by
`LagObserver`, which the stream calls after each applied batch.

Scrapes run on the event loop (as every `LoopCounter` update does), so a pulled counter
needs no lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric

from kvcore.clock import Clock
from kvcore.metrics import Metrics
from kvcore.model import KEY_KINDS, ChangeBatch, ChangeKind
from replica.edge import EdgeState
from replica.stream import StreamStatus

LabelValues = tuple[str, ...]


class _Child(Protocol):
    def inc(self, amount: float = 1) -> None: ...


class _CounterFamily(Protocol):
    """A labelled Prometheus counter: prometheus_client's `Counter` or kvcore's `LoopCounter`."""

    def labels(self, *values: str) -> _Child: ...
    def describe(self) -> Iterable[Metric]: ...
    def collect(self) -> Iterable[Metric]: ...


class PulledCounter:
    """Stands in the registry for `family` (so its name, help and labels are unchanged)
    and, at each scrape, first brings every child up to its source: a plain count that
    only grows. Each child is exported from the start, at 0."""

    def __init__(
        self,
        registry: CollectorRegistry,
        family: _CounterFamily,
        sources: Mapping[LabelValues, Callable[[], float]],
    ) -> None:
        self._family = family
        self._sources = dict(sources)
        self._seen = dict.fromkeys(self._sources, 0.0)
        for labels in self._sources:
            family.labels(*labels)
        registry.unregister(family)
        registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return self._family.describe()

    def collect(self) -> Iterable[Metric]:
        for labels, read in self._sources.items():
            count = read()
            if count != self._seen[labels]:
                self._family.labels(*labels).inc(count - self._seen[labels])
                self._seen[labels] = count
        return self._family.collect()


class LagObserver:
    """`edgekv_replication_lag_seconds{kind}`: central's commit to applied here, for each
    key change of a batch. Changes replayed on resume are not lag (the replica was away,
    the change was not late), so replayed batches are not observed."""

    def __init__(self, metrics: Metrics, clock: Clock) -> None:
        region = metrics.region
        self._clock = clock
        self._create = metrics.replication_lag.labels(region, "create")
        self._update = metrics.replication_lag.labels(region, "update")

    def __call__(self, batch: ChangeBatch) -> None:
        """Called once `batch` is applied: its changes' lag is measured to now."""
        if batch.replay:
            return
        applied_at = self._clock.now()
        for change in batch.changes:
            if change.kind in KEY_KINDS:
                kind = self._create if change.kind is ChangeKind.KEY_CREATE else self._update
                kind.observe(max(0.0, applied_at - change.commit_time))


def observe(metrics: Metrics, edge: EdgeState, stream: StreamStatus | None = None) -> None:
    """Export `edge` (and the stream's status, when given) through `metrics`, read at
    scrape time."""
    r = metrics.region
    registry = metrics.registry
    cache = edge.cache
    PulledCounter(
        registry,
        metrics.cache_requests,
        {
            (r, "hit"): lambda: edge.hits,
            (r, "miss"): lambda: edge.misses,
            (r, "negative_hit"): lambda: edge.negative_hits,
        },
    )
    PulledCounter(registry, metrics.cache_admissions, {(r,): lambda: cache.admissions})
    PulledCounter(registry, metrics.cache_evictions, {(r,): lambda: cache.evictions})
    metrics.cache_bytes.labels(r).set_function(lambda: cache.bytes_used)
    metrics.cache_keys.labels(r).set_function(lambda: len(cache))
    metrics.applied_seq.labels(r).set_function(lambda: edge.applied_seq)
    metrics.committed_seq.labels(r).set_function(lambda: edge.committed_seq)
    if stream is not None:
        metrics.replication_connected.labels(r).set_function(lambda: 1.0 if stream.connected else 0.0)
        metrics.replication_staleness.labels(r).set_function(stream.staleness)
