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
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from kvcore.errors import StartupError
from kvcore.listen import bind_listener
from kvcore.settings import split_addr

GC_GEN0_THRESHOLD = 50_000


class _Server(uvicorn.Server):
    # The listening socket, bound by `http_server` before the process says it started.
    listen_sockets: list[socket.socket] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HotReadProtocol(HttpToolsProtocol):
    """uvicorn's HTTP/1.1 protocol (httptools), answering a hot read without ASGI.

    An app whose `hot_response` is a function `(scope) -> bytes | None` (a replica's
    `kvcore.rest.app.RestApp`) is asked, once uvicorn has parsed a request's headers
    into its ASGI scope, for the whole response; when it gives one, it is written to
    the socket in one write and
    the request is complete, with no ASGI task, no `send` messages and no second
    write for the body. That was half of a replica's CPU per hot read (uvicorn's
    `RequestResponseCycle.send`, the task and its two socket writes). Anything else,
    and any request that needs more of uvicorn than a plain keep-alive exchange
    (HTTP/1.0 or `Connection: close`, `Expect: 100-continue`, a paused writer, an
    access log at INFO, default headers, the concurrency limit), runs as uvicorn runs it.

    Overrides `HttpToolsProtocol._start_asgi_task`, uvicorn's one place where a parsed
    request (the first or a pipelined one) starts; `make test` runs real sockets
    through it (tests/replica/test_hot_wire.py), so a uvicorn that changed it fails
    there."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._hot_response: Callable[[Any], bytes | None] | None = getattr(self.app, "hot_response", None)

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
            response = hot_response(cycle.scope)
            if response is not None:
                cycle.response_started = cycle.response_complete = True
                self.transport.write(response)
                cycle.on_response()
                return
        super()._start_asgi_task(cycle, app)


def http_server(
    app: Any,
    addr: str,
    *,
    log_level: str = "warning",
    flag: str = "--http-addr (EDGEKV_HTTP_ADDR)",
    certfile: str | None = None,
    keyfile: str | None = None,
) -> uvicorn.Server:
    """A uvicorn server for `app` whose port is already bound (see kvcore.listen), over
    HTTPS when `certfile` and `keyfile` (PEM) are given.

    Raises StartupError naming `flag` when `addr` is in use or not ours to bind."""
    host, port = split_addr(addr)
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
        # Apps with a hot read (a replica's) answer it before ASGI (`HotReadProtocol`).
        http=HotReadProtocol if getattr(app, "hot_response", None) is not None else "auto",
    )
    if certfile:
        try:
            config.load()  # reads the certificate and key now, so a bad pair stops the start
        except Exception as exc:
            raise StartupError(f"--https-cert/--https-key: cannot load the certificate: {exc}") from None
    server = _Server(config)
    server.listen_sockets = [bind_listener(addr, flag)]
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


async def serve_until(server: uvicorn.Server, stop: asyncio.Event) -> None:
    """Run `server` until `stop` is set (or the server fails), then shut it down."""
    sockets = getattr(server, "listen_sockets", None)
    task = asyncio.create_task(server.serve(sockets=sockets), name="http")
    waiter = asyncio.create_task(stop.wait(), name="stop")
    done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiter.cancel()
    await task
    for sock in sockets or ():
        sock.close()
    if not server.started and task in done:
        raise StartupError(f"could not start the HTTP server on {server.config.host}:{server.config.port}")
