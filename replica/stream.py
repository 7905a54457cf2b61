"""The change-stream subscriber: follow central, apply batches, persist the resume point.

`StreamSubscriber.run()` subscribes from the persisted `safe_seq`, applies every
batch to the `EdgeState`, saves the batch's `safe_seq` and reconnects with
exponential backoff and full jitter (0.1 s doubling to 5 s) whenever the stream
breaks. The backoff starts over once a connection has delivered a batch.

Gauges (label `region`):
- `edgekv_replication_connected`: 1 from the first batch of a subscription until it
  breaks, 0 otherwise (also before the first connection).
- `edgekv_replication_staleness_seconds`: 0 while connected; while disconnected, the
  seconds since the last message from central (the last contact, not the moment the
  break was noticed; the process start if it never connected). A connected stream is
  fresh by construction: central pushes creates at once, flushes updates within its
  propagation delay and sends a heartbeat after HEARTBEAT_INTERVAL_S of quiet, so a
  stream silent for SILENCE_BOUND_S (kvcore.rpc.liveness) is declared down, cancelled
  and reconnected: a hung central is detected within that bound. Read at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator

from kvcore.clock import Clock
from kvcore.errors import KVError
from kvcore.metrics import Metrics
from kvcore.model import ChangeBatch
from kvcore.rpc.liveness import SILENCE_BOUND_S
from replica.edge import EdgeState
from replica.link import CentralLink
from replica.state import ReplicaState

log = logging.getLogger("edgekv.replica.stream")

BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0


class CentralSilent(Exception):
    """The stream delivered nothing, not even a heartbeat, for the silence bound."""


class StreamSubscriber:
    def __init__(
        self,
        *,
        client: CentralLink,
        edge: EdgeState,
        state: ReplicaState,
        region: str,
        clock: Clock,
        metrics: Metrics,
        backoff_initial_s: float = BACKOFF_INITIAL_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        rng: random.Random | None = None,
        silence_bound_s: float = SILENCE_BOUND_S,
        http_url: str = "",
    ) -> None:
        self._client = client
        self._edge = edge
        self._state = state
        self._region = region
        self._http_url = http_url  # announced to central on subscribe (the dashboard asks it)
        self._clock = clock
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._rng = rng or random.Random()
        self._silence_bound_s = silence_bound_s
        self.connected = False
        self.connections = 0  # subscriptions that delivered at least one batch
        self._last_contact = clock.monotonic()  # last message from central (or the start)
        self._connected_gauge = metrics.replication_connected.labels(region)
        self._connected_gauge.set(0)
        metrics.replication_staleness.labels(region).set_function(self.staleness)
        # Set when the first batch has been applied (readiness; tests).
        self.first_batch = asyncio.Event()

    def staleness(self) -> float:
        """Seconds since the last message from central while the stream is down, else 0."""
        return 0.0 if self.connected else max(0.0, self._clock.monotonic() - self._last_contact)

    def down_for(self) -> float:
        """Seconds without contact once the stream is known down (0 while connected)."""
        return self.staleness()

    def _set_connected(self, up: bool) -> None:
        if up == self.connected:
            return
        self.connected = up
        self._connected_gauge.set(1 if up else 0)

    async def _batches(self, from_seq: int) -> AsyncGenerator[ChangeBatch, None]:
        """The subscription's batches; raises CentralSilent after `silence_bound_s`
        without any message (a heartbeat counts), which also cancels the call."""
        stream = self._client.subscribe(self._region, from_seq, self._http_url)
        iterator = aiter(stream)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._silence_bound_s):
                        batch = await anext(iterator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise CentralSilent(
                        f"no message from central for {self._silence_bound_s:g} s (hung or cut off)"
                    ) from None
                self._last_contact = self._clock.monotonic()
                yield batch
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def apply(self, batch: ChangeBatch) -> None:
        """Apply one batch and record its resume point."""
        if batch.reset and self._state.safe_seq > 0:
            log.warning(
                "central reset the stream (resume point %d no longer usable): cache dropped",
                self._state.safe_seq,
            )
        self._edge.apply_batch(batch)
        self._state.save(batch.safe_seq)
        if not self.first_batch.is_set():
            self.first_batch.set()

    async def run(self) -> None:
        """Follow the stream until cancelled."""
        backoff = self._backoff_initial
        while True:
            from_seq = self._state.safe_seq
            log.info("subscribing to central %s from seq %d", self._client.target, from_seq)
            got_batch = False
            try:
                async with contextlib.aclosing(self._batches(from_seq)) as batches:
                    async for batch in batches:
                        if not got_batch:
                            got_batch = True
                            self.connections += 1
                            self._set_connected(True)
                            log.info("stream up (resumed from seq %d, reset=%s)", from_seq, batch.reset)
                        self.apply(batch)
                log.warning("central ended the stream")
            except asyncio.CancelledError:
                self._set_connected(False)
                raise
            except CentralSilent as exc:
                log.warning("stream down: %s", exc)
            except KVError as exc:
                log.warning("stream broke: %s", exc.detail or exc.message)
            except Exception:
                log.exception("stream failed")
            self._set_connected(False)
            if got_batch:
                backoff = self._backoff_initial
            delay = self._rng.uniform(0, backoff)
            backoff = min(self._backoff_max, backoff * 2)
            await asyncio.sleep(delay)
