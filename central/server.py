"""The central process: the store, the gRPC API, the change feed and the HTTP API.

One event loop runs the gRPC server (KV, Replication, Admin, health) and uvicorn
(the Cloudflare REST API, /metrics, /healthz, /readyz). The store's writer thread
commits; the change feed pushes what it committed.
"""

from __future__ import annotations

import asyncio
import logging
import os

import grpc
import psycopg
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from central.changefeed import ChangeFeed
from central.dashboard import CentralDashboard, DashboardService
from central.grpc_api import AdminService, KVService
from central.replication_api import ReplicationService
from central.rest_backend import StoreBackend
from central.write_stream import WritesService
from central.writes import MeteredWrites
from kvcore.clock import SYSTEM_CLOCK, Clock
from kvcore.errors import StartupError
from kvcore.listen import GRPC_NO_REUSEPORT, add_grpc_port, lock_data_dir
from kvcore.metrics import Metrics
from kvcore.model import Permission, token_hash
from kvcore.pb import edgekv_pb2, edgekv_pb2_grpc
from kvcore.rest.app import create_app
from kvcore.rpc.security import SERVER_OPTIONS, ClusterSecretInterceptor, server_credentials
from kvcore.serving import http_server, run_forever, serve_until, stop_on_signals
from kvcore.settings import DATA_DIR_FLAG, GRPC_ADDR_FLAG, CentralSettings
from kvcore.store.base import Store
from kvcore.store.ops import PutTokenOp
from kvcore.store.pg import PgStore
from kvcore.store.rocks import RocksStore

log = logging.getLogger("edgekv.central")

SERVICE_NAMES = [
    edgekv_pb2.DESCRIPTOR.services_by_name[name].full_name
    for name in ("KV", "Replication", "Admin", "Writes", "Dashboard")
]


def open_store(settings: CentralSettings, clock: Clock) -> RocksStore | PgStore:
    """The store `settings.store` names: RocksDB under the (locked) data dir, or a shared
    PostgreSQL database. An unusable one is a StartupError."""
    if settings.store_is_postgres:
        try:
            return PgStore(settings.store, clock=clock, log_retention=settings.log_retention)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StartupError(f"--store (EDGEKV_STORE): cannot use the database: {first}") from None
    path = os.path.join(settings.data_dir, "store")
    try:
        return RocksStore(path, clock=clock, log_retention=settings.log_retention)
    except Exception as exc:  # rocksdict raises plain Exception with RocksDB's status text
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "lock" in first.lower():
            raise StartupError(f"another central is using this data dir ({settings.data_dir})") from None
        reason = f"cannot open the store in {path}: {first}"
        raise StartupError(f"{DATA_DIR_FLAG}: {reason}") from None


def bootstrap(store: Store, settings: CentralSettings, clock: Clock) -> None:
    """Create the bootstrap account's write token if it does not exist yet."""
    if not (settings.bootstrap_account and settings.bootstrap_token):
        return
    digest = token_hash(settings.bootstrap_token)
    existing = store.token_by_hash(digest)
    if existing is not None:
        if existing.account_id != settings.bootstrap_account:
            raise StartupError("EDGEKV_BOOTSTRAP_TOKEN already belongs to another account")
        return
    account, secret = settings.bootstrap_account, settings.bootstrap_token
    op, _ = PutTokenOp.new(account, Permission.WRITE, secret, clock.now())
    store.run(op)
    log.info("bootstrap: created a write token for account %s", settings.bootstrap_account)


async def serve(
    settings: CentralSettings,
    *,
    clock: Clock = SYSTEM_CLOCK,
    stop: asyncio.Event | None = None,
    started: asyncio.Event | None = None,
) -> None:
    settings.validate()
    stop = stop or asyncio.Event()
    # A RocksDB data dir is one central's alone; a PostgreSQL store is shared by design.
    lock = None if settings.store_is_postgres else lock_data_dir(settings.data_dir, DATA_DIR_FLAG, "central")
    try:
        store = open_store(settings, clock)
    except BaseException:
        if lock is not None:
            lock.close()
        raise
    try:
        bootstrap(store, settings, clock)
        metrics = Metrics("central")
        writes = MeteredWrites(store, metrics)
        feed = ChangeFeed(store, settings, clock=clock, metrics=metrics)
        feed.start()
        backend = StoreBackend(store, writes, clock=clock)
        dashboard = CentralDashboard(
            backend=backend, feed=feed, propagation_delay_s=settings.propagation_delay_s
        )

        interceptors = [ClusterSecretInterceptor(settings.cluster_secret)] if settings.cluster_secret else []
        grpc_server = grpc.aio.server(interceptors=interceptors, options=[*SERVER_OPTIONS, GRPC_NO_REUSEPORT])
        edgekv_pb2_grpc.add_KVServicer_to_server(KVService(store, writes, clock), grpc_server)
        edgekv_pb2_grpc.add_ReplicationServicer_to_server(ReplicationService(feed), grpc_server)
        edgekv_pb2_grpc.add_AdminServicer_to_server(AdminService(store, clock), grpc_server)
        edgekv_pb2_grpc.add_WritesServicer_to_server(WritesService(writes, clock), grpc_server)
        edgekv_pb2_grpc.add_DashboardServicer_to_server(DashboardService(dashboard.api), grpc_server)
        health_servicer = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(health_servicer, grpc_server)
        creds = None
        if settings.tls.cert_path and settings.tls.key_path:
            creds = server_credentials(settings.tls.cert_path, settings.tls.key_path)
        grpc_addr = add_grpc_port(grpc_server, settings.grpc_addr, GRPC_ADDR_FLAG, creds)
        # Both ports are claimed before either serves, so a port in use is one line.
        app = create_app(backend, metrics, extra_routes=dashboard.routes())
        http = http_server(
            app, settings.http_addr, certfile=settings.https_cert_path, keyfile=settings.https_key_path
        )
        await grpc_server.start()
        for name in ["", *SERVICE_NAMES]:
            await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)

        stop_on_signals(stop)
        log.info(
            "central: grpc %s%s, %s %s, propagation delay %ss, store %s",
            grpc_addr,
            " (TLS)" if creds else "",
            "https" if settings.https_cert_path else "http",
            http.bound_addr,
            settings.propagation_delay_s,
            "postgresql" if settings.store_is_postgres else "rocksdb",
        )
        if started is not None:
            asyncio.get_running_loop().call_later(0.05, started.set)
        try:
            await serve_until(http, stop)
        finally:
            log.info("central stopping: draining HTTP, closing replica streams and the gRPC server")
            await health_servicer.enter_graceful_shutdown()
            await feed.stop()
            await grpc_server.stop(grace=1.0)
            await dashboard.close()
        log.info("central stopped at seq %d", store.committed_seq)
    finally:
        store.close()
        if lock is not None:
            lock.close()


def run(settings: CentralSettings) -> None:
    run_forever(serve(settings))
