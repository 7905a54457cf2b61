"""Running an ASGI app next to other tasks in one event loop, and stopping cleanly.

Both processes run uvicorn beside their own background work (gRPC server, change
stream). uvicorn's own signal capture re-raises the signal after it stops, which
would end the process before the store is closed; so the process owns SIGTERM and
SIGINT here and tells uvicorn to exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from kvcore.errors import StartupError
from kvcore.listen import bind_listener, listening_addr
from kvcore.rest.fastpath import JOIN_MAX_BYTES, HotResponse, Scope
from kvcore.settings import HTTP_ADDR_FLAG, split_addr

GC_GEN0_THRESHOLD = 50_000
_HOT_HOOK = hasattr(HttpToolsProtocol, "_start_asgi_task")  # see HotReadProtocol

log = logging.getLogger("edgekv.serving")


class HttpServer(uvicorn.Server):
    """uvicorn's server on a socket `http_server` bound before the process says it
    started; `bound_addr` is where it listens (HOST:PORT, the chosen port for HOST:0)."""

    listen_sockets: list[socket.socket] | None = None
    bound_addr = ""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class JoinedWrites:
    """A connection's transport that sends a response's head and body in one write.

    uvicorn writes a response in two calls, the status line and headers, then the body:
    two `send` syscalls and two TCP segments (on loopback the sender also pays for the
    receiver's wake-up). This holds a write back until the next one and sends both
    together, or until the end of the event loop's current iteration (`call_soon`), so
    nothing waits longer than that and the bytes keep their order. Writes larger than
    `JOIN_MAX_BYTES` are not copied: what is held goes first, then they go as they are.
    `write_now` sends at once (with whatever is held); `close`, `write_eof` and
    `writelines` send what is held first, `abort` drops it; everything else is the
    transport's own."""

    __slots__ = ("_flush_pending", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush_pending = False

    def write(self, data: bytes) -> None:
        if self._held is None and len(data) <= JOIN_MAX_BYTES:
            self._held = data
            if not self._flush_pending:
                self._flush_pending = True
                self._loop.call_soon(self._flush)
            return
        self.write_now(data)

    def write_now(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(held) + len(data) <= JOIN_MAX_BYTES:
                data = held + data
            else:
                self._transport.write(held)
        self._transport.write(data)

    def flush(self) -> None:
        """Send what is held now (the end-of-iteration flush, brought forward)."""
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def _flush(self) -> None:
        self._flush_pending = False
        self.flush()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write_now(chunk)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None  # an abort discards what is buffered
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class JoinedWritesProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools) writing through `JoinedWrites`: one write
    per response where uvicorn makes two. Every server of `http_server` uses it (or
    `HotReadProtocol`, which extends it)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = self.joined = JoinedWrites(transport, self.loop)  # type: ignore[assignment]

    def eof_received(self) -> None:
        # The client half-closed: the transport closes itself when this returns (uvicorn
        # keeps nothing open), so what is held goes now, as it would have without the hold.
        self.joined.flush()
        super().eof_received()


class HotReadProtocol(JoinedWritesProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), answering a hot read without ASGI.

    An app whose `hot_response` is a `HotResponse` (a replica's `kvcore.rest.app.RestApp`)
    is asked, once uvicorn has parsed a request's headers into its ASGI scope, to
    answer it; a hot read is written straight to the transport (one write up to
    `JOIN_MAX_BYTES`) and the request is complete as uvicorn completes one: no ASGI
    task, no `send` messages. Anything else, and any request that needs more of uvicorn
    than a plain keep-alive exchange (HTTP/1.0 or `Connection: close`,
    `Expect: 100-continue`, a paused writer, an access log at INFO, default headers,
    the concurrency limit), runs as uvicorn runs it; so does an app uvicorn wrapped (trace logging wraps it to
    log every ASGI message). A hot path that raises is logged and the request goes
    through ASGI, unless the connection is going away (a failed write).

    Overrides two methods of `HttpToolsProtocol`: `_start_asgi_task`, uvicorn's one
    place where a parsed request (the first or a pipelined one) starts, and
    `on_response_complete`, which starts the next pipelined request: answered in place,
    each would start the next from inside itself, so a long pipelined burst would
    recurse past Python's limit; here it loops. A hot answer arms the keep-alive timer
    as any completed response does; a request read in the same `data_received` that
    then starts an ASGI task disarms it first, as uvicorn's own reads do. `make test`
    runs real sockets through both (tests/replica/test_hot_wire.py), so a uvicorn that
    changed them fails there, and `http_server` uses uvicorn's own protocol when the
    first is missing."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hot_response: HotResponse | None = getattr(self.app, "hot_response", None)
        self._completing = self._complete_again = False

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        hot_response = self._hot_response
        if (
            hot_response is not None
            and app is self.app
            and cycle.keep_alive
            and not cycle.waiting_for_100_continue
            and not cycle.default_headers
            and not (cycle.access_log and self.access_logger.isEnabledFor(logging.INFO))
            and not self.flow.write_paused
        ):
            try:
                answered = hot_response(cast(Scope, cycle.scope), self.joined.write_now)
            except Exception:
                # What can fail comes before the first write (`HotReads.write_response`),
                # but for the write itself, on a connection already going away.
                answered = self.transport.is_closing()
                if not answered:
                    log.exception("the hot read failed; answering through ASGI")
            if answered:
                cycle.response_started = cycle.response_complete = True
                cycle.on_response()
                return
        # A hot answer earlier in this read armed the keep-alive timer: not while this runs.
        self._unset_keepalive_if_required()
        super()._start_asgi_task(cycle, app)

    def on_response_complete(self) -> None:
        if self._completing:  # a pipelined hot read answered from inside the call below
            self._complete_again = True
            return
        self._completing = True
        try:
            while True:
                self._complete_again = False
                super().on_response_complete()
                if not self._complete_again:
                    return
        finally:
            self._completing = False


def http_server(
    app: Any,
    addr: str,
    *,
    log_level: str = "warning",
    flag: str = HTTP_ADDR_FLAG,
    certfile: str | None = None,
    keyfile: str | None = None,
    sock: socket.socket | None = None,
) -> HttpServer:
    """A uvicorn server for `app` whose port is already bound (see kvcore.listen): on
    `sock` when the caller bound `addr` itself (`bind_listener`), else bound here. Over
    HTTPS when `certfile` and `keyfile` (PEM) are given.

    Raises StartupError naming `flag` when `addr` is in use or not ours to bind."""
    host, port = split_addr(addr)
    hot = getattr(app, "hot_response", None) is not None
    if hot and not _HOT_HOOK:
        log.warning("this uvicorn has no HttpToolsProtocol._start_asgi_task: hot reads go through ASGI")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        lifespan="off",
        # Header and keep-alive defaults suit API clients; a 25 MiB value plus
        # multipart framing is read by the app with its own limits.
        timeout_keep_alive=30,
        server_header=False,
        date_header=False,
        # edgekv reads no client address, so X-Forwarded-For is not parsed (uvicorn's
        # ProxyHeadersMiddleware was ~2% of a replica's CPU per request).
        proxy_headers=False,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
        # One write per response (`JoinedWrites`); apps with a hot read (a replica's)
        # answer it before ASGI (`HotReadProtocol`).
        http=HotReadProtocol if hot and _HOT_HOOK else JoinedWritesProtocol,
    )
    if certfile:
        try:
            config.load()  # reads the certificate and key now, so a bad pair stops the start
        except Exception as exc:
            raise StartupError(f"--https-cert/--https-key: cannot load the certificate: {exc}") from None
    server = HttpServer(config)
    sock = sock if sock is not None else bind_listener(addr, flag)
    server.listen_sockets = [sock]
    server.bound_addr = listening_addr(addr, sock)
    return server


def run_forever(main: Coroutine[Any, Any, None]) -> None:
    """Run a server process's main coroutine on uvloop (uvicorn[standard] brings it; the
    HTTP server and gRPC both run measurably faster on it), else on asyncio's loop.

    Garbage collection is tuned for a server: every request allocates a few short-lived
    objects, and with CPython's default threshold (700) the collector ran thousands of
    times a second, each older-generation pass walking the whole cache; objects alive
    at start (modules, settings) are frozen out of collection altogether."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 20)
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def serve_until(server: HttpServer, stop: asyncio.Event) -> None:
    """Run `server` until `stop` is set (or the server fails), then shut it down."""
    sockets = server.listen_sockets
    task = asyncio.create_task(server.serve(sockets=sockets), name="http")
    waiter = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiter.cancel()
    await task
    for sock in sockets or ():
        sock.close()
    if not server.started and task in done:
        raise StartupError(f"could not start the HTTP server on {server.bound_addr}")
