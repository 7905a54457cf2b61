"""The change-stream subscriber: follow central, apply batches, persist the resume point.

`StreamSubscriber.run()` subscribes from the persisted `safe_seq`, applies every
batch to the `EdgeState`, saves the batch's `safe_seq` and reconnects with
exponential backoff and full jitter (0.1 s doubling to 5 s) whenever the stream
breaks. The backoff starts over once a connection has delivered a batch.

What it reports, in its plain `StreamStatus` (exported by replica.metrics):
- `connected` (`edgekv_replication_connected`): True from the first batch of a
  subscription until it breaks, False otherwise (also before the first connection).
- `staleness()` (`edgekv_replication_staleness_seconds`): 0 while connected; while
  disconnected, the seconds since the last message from central (the last contact,
  not the moment the break was noticed; the process start if it never connected). A
  connected stream is fresh by construction: central pushes creates at once, flushes
  updates within its propagation delay and sends a heartbeat after
  HEARTBEAT_INTERVAL_S of quiet, so a stream silent for SILENCE_BOUND_S
  (kvcore.rpc.liveness) is declared down, cancelled and reconnected: a hung central
  is detected within that bound.
It calls `on_applied(batch)` after each applied batch (replication lag).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from kvcore.clock import Clock
from kvcore.errors import KVError
from kvcore.model import ChangeBatch
from kvcore.rpc.liveness import SILENCE_BOUND_S
from replica.edge import EdgeState
from replica.link import CentralLink
from replica.resume import ResumePoint

log = logging.getLogger("edgekv.replica.stream")

BACKOFF_INITIAL_S = 0.1
BACKOFF_MAX_S = 5.0


class CentralSilent(Exception):
    """The stream delivered nothing, not even a heartbeat, for the silence bound."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a replica asks central for, and how it keeps asking: `region`, and the HTTP
    URL announced on subscribe (central's dashboard asks it); reconnect delays drawn
    with full jitter (`rng`) from `backoff_initial_s` doubling to `backoff_max_s`; a
    subscription silent for `silence_bound_s` is given up."""

    region: str
    http_url: str = ""
    backoff_initial_s: float = BACKOFF_INITIAL_S
    backoff_max_s: float = BACKOFF_MAX_S
    silence_bound_s: float = SILENCE_BOUND_S
    rng: random.Random = field(default_factory=random.Random)


class StreamStatus:
    """Whether the stream is up, and how long central has been silent. Plain state: the
    subscriber updates it; metrics, the dashboard and the call `Deadline` read it."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.connected = False
        self.connections = 0  # subscriptions that delivered at least one batch
        self._last_contact = clock.monotonic()  # last message from central (or the start)

    def heard_from_central(self) -> None:
        self._last_contact = self._clock.monotonic()

    def staleness(self) -> float:
        """Seconds since the last message from central while the stream is down, else 0."""
        return 0.0 if self.connected else max(0.0, self._clock.monotonic() - self._last_contact)


class StreamSubscriber:
    def __init__(
        self,
        *,
        client: CentralLink,
        subscription: Subscription,
        edge: EdgeState,
        resume: ResumePoint,
        clock: Clock,
        on_applied: Callable[[ChangeBatch], None] = lambda batch: None,
    ) -> None:
        self.status = StreamStatus(clock)
        # Set when the first batch has been applied (readiness; tests).
        self.first_batch = asyncio.Event()
        self._client = client
        self._sub = subscription
        self._edge = edge
        self._resume = resume
        self._on_applied = on_applied

    async def _batches(self, from_seq: int) -> AsyncGenerator[ChangeBatch, None]:
        """The subscription's batches; raises CentralSilent after `silence_bound_s`
        without any message (a heartbeat counts), which also cancels the call."""
        stream = self._client.subscribe(self._sub.region, from_seq, self._sub.http_url)
        iterator = aiter(stream)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._sub.silence_bound_s):
                        batch = await anext(iterator)
                except StopAsyncIteration:
                    return
                except TimeoutError:
                    raise CentralSilent(
                        f"no message from central for {self._sub.silence_bound_s:g} s (hung or cut off)"
                    ) from None
                self.status.heard_from_central()
                yield batch
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def apply(self, batch: ChangeBatch) -> None:
        """Apply one batch and record its resume point."""
        if batch.reset and self._resume.safe_seq > 0:
            log.warning(
                "central reset the stream (resume point %d no longer usable): cache dropped",
                self._resume.safe_seq,
            )
        self._edge.apply_batch(batch)
        self._resume.save(batch.safe_seq)
        self._on_applied(batch)
        if not self.first_batch.is_set():
            self.first_batch.set()

    async def run(self) -> None:
        """Follow the stream until cancelled."""
        backoff = self._sub.backoff_initial_s
        while True:
            from_seq = self._resume.safe_seq
            log.info("subscribing to central %s from seq %d", self._client.target, from_seq)
            got_batch = False
            try:
                async with contextlib.aclosing(self._batches(from_seq)) as batches:
                    async for batch in batches:
                        if not got_batch:
                            got_batch = True
                            self.status.connections += 1
                            self.status.connected = True
                            log.info("stream up (resumed from seq %d, reset=%s)", from_seq, batch.reset)
                        self.apply(batch)
                log.warning("central ended the stream")
            except asyncio.CancelledError:
                self.status.connected = False
                raise
            except CentralSilent as exc:
                log.warning("stream down: %s", exc)
            except KVError as exc:
                log.warning("stream broke: %s", exc.detail or exc.message)
            except Exception:
                log.exception("stream failed")
            self.status.connected = False
            if got_batch:
                backoff = self._sub.backoff_initial_s
            delay = self._sub.rng.uniform(0, backoff)
            backoff = min(self._sub.backoff_max_s, backoff * 2)
            await asyncio.sleep(delay)
