"""Several centrals behind one gRPC channel: the address rotation and a failover channel.

`--central HOST:PORT[,HOST:PORT...]` names centrals that share one store (PostgreSQL;
issue 14), so any of them can serve any call and the change log, with its seq, is the
same at every one of them. `CentralAddresses` holds the list and the one in use; every
call and the change stream go to that one. When it fails, the rotation moves on to the
next address, in order and wrapping around, and stays there until that one fails too.

`FailoverChannel` stands in for a `grpc.aio.Channel` under the generated stubs, so
`CentralClient` keeps one method per RPC and knows nothing of failover:
- A unary call that fails with UNAVAILABLE moves the rotation on and is retried on the
  next address, within the caller's deadline, when that cannot apply it twice: the
  request never left (gRPC's "failed to connect"), or the RPC only reads
  (`READ_ONLY_METHODS`). A write that broke in flight is not retried: central may
  have committed it, and a conditional write or a namespace create is not idempotent.
  The caller sees `Unavailable` (a 503 to a REST client), as with one central.
- A streaming call (the change stream) is pinned to the address it started on; when it
  ends, for whatever reason (error, cancel, end), the rotation moves on, so the
  subscriber's next attempt goes to the next central and resumes from its persisted
  seq. There is no reset: the log is shared.

Moving on is compare-and-set (`failed(index)` only moves from `index`), so a broken
stream and a failed call that notice the same dead central move the rotation once.
One address gives a plain gRPC channel: nothing changes for a single central.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import grpc

from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.rpc.errors import CODE_KEY
from kvcore.rpc.security import secure_or_insecure_channel

log = logging.getLogger("edgekv.rpc.failover")

# RPCs that only read: retrying one on another central after it broke in flight is safe.
READ_ONLY_METHODS = frozenset(
    {"GetNamespace", "ListNamespaces", "Get", "BulkGet", "ListKeys", "ListTokens", "ReportHotKeys"}
)
# gRPC's words for a call that failed before its request was sent.
_NOT_SENT_MARKERS = ("failed to connect", "connection refused", "name resolution")


class CentralAddresses:
    """The ordered central addresses and the index of the one in use. No I/O; thread-safe."""

    def __init__(self, targets: Sequence[str]) -> None:
        if not targets:
            raise ValueError("at least one central address")
        self.targets = tuple(targets)
        self._index = 0
        self._lock = threading.Lock()
        self.switches = 0  # times the rotation moved on (tests, logs)

    @property
    def index(self) -> int:
        return self._index

    @property
    def current(self) -> str:
        return self.targets[self._index]

    def failed(self, index: int) -> bool:
        """The central at `index` failed: move on to the next unless that already happened.

        Returns True when this call moved the rotation."""
        with self._lock:
            if index != self._index or len(self.targets) == 1:
                return False
            self._index = (index + 1) % len(self.targets)
            self.switches += 1
        log.warning("central %s failed: switching to %s", self.targets[index], self.current)
        return True


def _method_name(path: str | bytes) -> str:
    text = path.decode() if isinstance(path, bytes) else path
    return text.rsplit("/", 1)[-1]


def _never_sent(err: grpc.aio.AioRpcError) -> bool:
    """gRPC could not reach the central at all. An answer from central (an error it
    raised, with its Cloudflare code attached) is never this, whatever its words."""
    if any(key == CODE_KEY for key, _ in err.trailing_metadata() or ()):
        return False
    details = (err.details() or "").lower()
    return any(marker in details for marker in _NOT_SENT_MARKERS)


class _FailoverUnary:
    """A unary-unary multicallable over every address; see the module docstring."""

    def __init__(self, channel: FailoverChannel, path: str, kwargs: dict[str, Any]) -> None:
        self._channel = channel
        self._read_only = _method_name(path) in READ_ONLY_METHODS
        self._calls = [ch.unary_unary(path, **kwargs) for ch in channel.channels]

    async def __call__(self, request: Any, *, timeout: float | None = None, **kwargs: Any) -> Any:
        addresses = self._channel.addresses
        clock = self._channel.clock
        give_up_at = None if timeout is None else clock.monotonic() + timeout
        for attempt in range(len(addresses.targets)):
            index = addresses.index
            remaining = None if give_up_at is None else max(0.001, give_up_at - clock.monotonic())
            try:
                return await self._calls[index](request, timeout=remaining, **kwargs)
            except grpc.aio.AioRpcError as err:
                if err.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                addresses.failed(index)
                last = attempt == len(addresses.targets) - 1
                if last or not (self._read_only or _never_sent(err)):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


class _PinnedCall:
    """A streaming call on one address; the rotation moves on when it ends."""

    def __init__(self, addresses: CentralAddresses, index: int, call: Any) -> None:
        self._addresses = addresses
        self._index = index
        self._call = call

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        try:
            async for msg in self._call:
                yield msg
        finally:
            self._addresses.failed(self._index)

    def cancel(self) -> bool:
        self._addresses.failed(self._index)
        return bool(self._call.cancel())

    def __await__(self) -> Any:  # a stream-unary call is awaited for its one response
        return self._call.__await__()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._call, name)


class _FailoverStream:
    """A multicallable whose calls stream (unary-stream, stream-stream, stream-unary)."""

    def __init__(self, channel: FailoverChannel, calls: list[Any]) -> None:
        self._addresses = channel.addresses
        self._calls = calls

    def __call__(self, *args: Any, **kwargs: Any) -> _PinnedCall:
        index = self._addresses.index
        return _PinnedCall(self._addresses, index, self._calls[index](*args, **kwargs))


class FailoverChannel:
    """One gRPC channel per central, used through the rotation (duck-types `grpc.aio.Channel`)."""

    def __init__(self, targets: Sequence[str], ca_path: str | None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.addresses = CentralAddresses(targets)
        self.clock = clock
        self.channels = [secure_or_insecure_channel(t, ca_path) for t in targets]

    def unary_unary(self, path: str, **kwargs: Any) -> _FailoverUnary:
        return _FailoverUnary(self, path, kwargs)

    def _stream(self, kind: str, path: str, kwargs: dict[str, Any]) -> _FailoverStream:
        make: Callable[[Any], Any] = lambda ch: getattr(ch, kind)(path, **kwargs)  # noqa: E731
        return _FailoverStream(self, [make(ch) for ch in self.channels])

    def unary_stream(self, path: str, **kwargs: Any) -> _FailoverStream:
        return self._stream("unary_stream", path, kwargs)

    def stream_unary(self, path: str, **kwargs: Any) -> _FailoverStream:
        return self._stream("stream_unary", path, kwargs)

    def stream_stream(self, path: str, **kwargs: Any) -> _FailoverStream:
        return self._stream("stream_stream", path, kwargs)

    async def close(self, grace: float | None = None) -> None:
        for ch in self.channels:
            await ch.close(grace)


def central_channel(target: str, ca_path: str | None) -> Any:
    """A channel to `target` ('HOST:PORT[,HOST:PORT...]'): plain for one address, else failover."""
    targets = [t.strip() for t in target.split(",") if t.strip()]
    if len(targets) == 1:
        return secure_or_insecure_channel(targets[0], ca_path)
    return FailoverChannel(targets, ca_path)
