"""The replica process: the REST API over `ReplicaBackend`, the change stream and the
hot-key reports, in one event loop.

`serve()` runs until SIGTERM/SIGINT (or `stop` is set): uvicorn stops accepting and
drains, the background tasks are cancelled, the resume point is flushed to disk and
the channel to central is closed. `run()` is the `edgekv replica` entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import replace

from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import KVError
from kvcore.listen import bind_listener, listening_addr, lock_data_dir
from kvcore.metrics import Metrics
from kvcore.rest.app import create_app
from kvcore.rpc.client import CentralClient
from kvcore.serving import http_server, run_forever, serve_until, stop_on_signals
from kvcore.settings import DATA_DIR_FLAG, HTTP_ADDR_FLAG, WORKERD_ADDR_FLAG, ReplicaSettings
from kvcore.workerd.app import WorkerdKV
from kvcore.workerd.server import serving
from replica.backend import Deadline, ReplicaBackend
from replica.dashboard import ReplicaDashboard
from replica.edge import EdgeState
from replica.metrics import LagObserver, observe
from replica.resume import ResumePoint
from replica.stream import StreamSubscriber, Subscription

log = logging.getLogger("edgekv.replica")


async def report_hot_keys(
    client: CentralClient, edge: EdgeState, region: str, interval_s: float, max_keys: int
) -> None:
    """Every `interval_s`, send the region's hot set to central (best effort)."""
    while True:
        await asyncio.sleep(interval_s)
        # Ranking a big cache is O(entries): off the event loop, so reads never stall.
        keys = await asyncio.to_thread(edge.cache.hot_keys_job(max_keys))
        try:
            await client.report_hot_keys(region, keys)
        except KVError as exc:
            log.debug("hot-key report not delivered: %s", exc.message)


async def serve(
    settings: ReplicaSettings, *, clock: Clock = SYSTEM_CLOCK, stop: asyncio.Event | None = None
) -> None:
    settings.validate()
    with contextlib.ExitStack() as held:  # the lock and the listeners, until we stop
        held.enter_context(lock_data_dir(settings.data_dir, DATA_DIR_FLAG, "replica"))
        # The ports are bound first: a port in use is one line before the start line, and
        # the address announced to central (and logged) is the one listening, for
        # --http-addr HOST:0 the port the system chose.
        listener = held.enter_context(contextlib.closing(bind_listener(settings.http_addr, HTTP_ADDR_FLAG)))
        kv_listener = (
            held.enter_context(contextlib.closing(bind_listener(settings.workerd_addr, WORKERD_ADDR_FLAG)))
            if settings.workerd_addr
            else None
        )
        bound = replace(settings, http_addr=listening_addr(settings.http_addr, listener))
        await _serve(bound, listener, kv_listener, clock=clock, stop=stop or asyncio.Event())


async def _serve(
    settings: ReplicaSettings,
    listener: socket.socket,
    kv_listener: socket.socket | None,
    *,
    clock: Clock,
    stop: asyncio.Event,
) -> None:
    resume = ResumePoint(settings.data_dir, settings.region, clock=clock)
    metrics = Metrics(settings.region)
    client = CentralClient(
        settings.central,
        cluster_secret=settings.cluster_secret,
        tls_ca=settings.tls.ca_path,
        timeout_s=settings.central_timeout_s,
        stream_writes=True,  # the region's point writes share one stream (issue 15)
    )
    edge = EdgeState.from_settings(settings, clock)
    stream = StreamSubscriber(
        client=client,
        subscription=Subscription(settings.region, settings.advertised_url),
        edge=edge,
        resume=resume,
        clock=clock,
        on_applied=LagObserver(metrics, clock),
    )
    observe(metrics, edge, stream.status)
    deadline = Deadline(settings.central_timeout_s, stream_down_for=stream.status.staleness)
    backend = ReplicaBackend(edge=edge, central=client, deadline=deadline, region=settings.region)
    dashboard = ReplicaDashboard(
        edge=edge, backend=backend, central=client, metrics=metrics, stream=stream.status
    )
    app = create_app(
        backend, metrics, title=f"edgekv replica {settings.region}", extra_routes=dashboard.routes()
    )
    try:
        http = http_server(
            app,
            settings.http_addr,
            certfile=settings.https_cert_path,
            keyfile=settings.https_key_path,
            sock=listener,
        )
    except BaseException:
        resume.close()
        await client.close()
        raise
    http.config.lifespan = "on"
    stop_on_signals(stop)
    log.info(
        "replica %s: %s %s, central %s, cache %d bytes, resuming from seq %d",
        settings.region,
        "https" if settings.https_cert_path else "http",
        settings.http_addr,
        settings.central,
        settings.cache_bytes,
        resume.safe_seq,
    )
    if settings.advertises_wildcard:
        log.warning(
            "announcing %s to central, which cannot reach a wildcard address: set --advertise-url",
            settings.advertised_url,
        )
    tasks = [
        asyncio.create_task(stream.run(), name="replication-stream"),
        asyncio.create_task(
            report_hot_keys(
                client, edge, settings.region, settings.hot_report_interval_s, settings.hot_report_keys
            ),
            name="hot-key-reports",
        ),
    ]
    workerd = contextlib.AsyncExitStack()
    try:
        if settings.workerd_addr:
            kv = await workerd.enter_async_context(
                serving(WorkerdKV(backend, metrics), settings.workerd_addr, sock=kv_listener)
            )
            log.info("replica %s: workerd KV protocol on %s", settings.region, kv.bound_addr)
        await serve_until(http, stop)
    finally:
        await workerd.aclose()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        resume.close()
        await client.close()
        log.info("replica %s stopped at seq %d", settings.region, resume.safe_seq)


def run(settings: ReplicaSettings) -> None:
    """`edgekv replica`: serve until SIGTERM/SIGINT, on uvloop when it is installed."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_forever(serve(settings))
