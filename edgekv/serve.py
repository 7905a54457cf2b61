"""`edgekv central` and `edgekv replica`: flags -> validated settings -> the process."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from kvcore.errors import StartupError
from kvcore.settings import CentralSettings, ReplicaSettings, SettingsError, TlsSettings, parse_size

S = TypeVar("S", CentralSettings, ReplicaSettings)


def _start(build: Callable[[], S], run: Callable[[S], None]) -> None:
    """Build and validate the settings, log at INFO, run the process. A bad flag (exit 2)
    or a process that cannot start (exit 1) is one line on stderr naming the cause."""
    try:
        settings = build().validate()
        logging.getLogger("edgekv").setLevel(logging.INFO)
        run(settings)
    except (SettingsError, StartupError) as exc:
        # One line, no traceback: the message names the flag or the resource at fault.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, SettingsError) else 1) from None


def _opt(envvar: str, help: str) -> typer.models.OptionInfo:
    return typer.Option(envvar=envvar, help=help, show_envvar=True)  # type: ignore[no-any-return]


HttpsCert = Annotated[
    str | None, _opt("EDGEKV_HTTPS_CERT", "PEM certificate: serve the REST API over HTTPS.")
]
HttpsKey = Annotated[str | None, _opt("EDGEKV_HTTPS_KEY", "PEM private key for --https-cert.")]


def central_command(
    data_dir: Annotated[
        str, _opt("EDGEKV_DATA_DIR", "Directory of the RocksDB store (not needed with a PostgreSQL one).")
    ] = "",
    grpc_addr: Annotated[str, _opt("EDGEKV_GRPC_ADDR", "HOST:PORT of the gRPC API.")] = "127.0.0.1:7070",
    http_addr: Annotated[
        str, _opt("EDGEKV_HTTP_ADDR", "HOST:PORT of the REST API, /metrics, /healthz, /readyz.")
    ] = "127.0.0.1:8080",
    propagation_delay: Annotated[
        float,
        _opt("EDGEKV_PROPAGATION_DELAY", "Seconds within which updates reach every replica (0 = at once)."),
    ] = 60.0,
    cluster_secret: Annotated[
        str | None, _opt("EDGEKV_CLUSTER_SECRET", "Shared secret every gRPC call must carry.")
    ] = None,
    tls_cert: Annotated[str | None, _opt("EDGEKV_TLS_CERT", "PEM certificate for gRPC TLS.")] = None,
    tls_key: Annotated[str | None, _opt("EDGEKV_TLS_KEY", "PEM private key for gRPC TLS.")] = None,
    push_value_max_bytes: Annotated[
        str, _opt("EDGEKV_PUSH_VALUE_MAX_BYTES", "Creates up to this size are pushed with their value.")
    ] = "64KiB",
    log_retention: Annotated[
        int, _opt("EDGEKV_LOG_RETENTION", "Change-log entries kept for replicas to resume from.")
    ] = 1_000_000,
    subscriber_queue_changes: Annotated[
        int,
        _opt(
            "EDGEKV_SUBSCRIBER_QUEUE_CHANGES",
            "Changes buffered per replica stream before a replica that does not keep up is reset.",
        ),
    ] = 100_000,
    bootstrap_account: Annotated[
        str | None, _opt("EDGEKV_BOOTSTRAP_ACCOUNT", "Create this account (32 hex) at start...")
    ] = None,
    bootstrap_token: Annotated[
        str | None, _opt("EDGEKV_BOOTSTRAP_TOKEN", "...with a write token of this secret.")
    ] = None,
    store: Annotated[
        str,
        _opt(
            "EDGEKV_STORE",
            "'rocksdb' (embedded, in --data-dir) or postgresql://USER@HOST[,HOST2]/DB, shared by centrals.",
        ),
    ] = "rocksdb",
    https_cert: HttpsCert = None,
    https_key: HttpsKey = None,
) -> None:
    from central.server import run

    _start(
        lambda: CentralSettings(
            data_dir=data_dir,
            grpc_addr=grpc_addr,
            http_addr=http_addr,
            propagation_delay_s=propagation_delay,
            cluster_secret=cluster_secret,
            tls=TlsSettings(cert_path=tls_cert, key_path=tls_key),
            push_value_max_bytes=parse_size(push_value_max_bytes),
            log_retention=log_retention,
            subscriber_queue_changes=subscriber_queue_changes,
            bootstrap_account=bootstrap_account,
            bootstrap_token=bootstrap_token,
            store=store,
            https_cert_path=https_cert,
            https_key_path=https_key,
        ),
        run,
    )


def replica_command(
    region: Annotated[str, _opt("EDGEKV_REGION", "This replica's region name (e.g. eu).")],
    central: Annotated[
        str,
        _opt("EDGEKV_CENTRAL", "HOST:PORT[,HOST:PORT...] of central's gRPC API; several fail over in order."),
    ],
    data_dir: Annotated[
        str, _opt("EDGEKV_DATA_DIR", "Directory for the replica's persisted stream position.")
    ],
    http_addr: Annotated[str, _opt("EDGEKV_HTTP_ADDR", "HOST:PORT of the REST API and /metrics.")] = (
        "127.0.0.1:8081"
    ),
    advertise_url: Annotated[
        str | None,
        _opt(
            "EDGEKV_ADVERTISE_URL",
            "HTTP URL announced to central for its dashboard (default http://HTTP_ADDR).",
        ),
    ] = None,
    cache_bytes: Annotated[
        str, _opt("EDGEKV_CACHE_BYTES", "Edge cache bound: keys + values (e.g. 64MiB, 1GiB).")
    ] = "256MiB",
    admit_threshold: Annotated[
        int, _opt("EDGEKV_ADMIT_THRESHOLD", "Reads (decaying count) before a key enters the cache.")
    ] = 2,
    cluster_secret: Annotated[
        str | None, _opt("EDGEKV_CLUSTER_SECRET", "Shared secret for central's gRPC API.")
    ] = None,
    tls_ca: Annotated[
        str | None, _opt("EDGEKV_TLS_CA", "PEM CA to verify central's TLS certificate.")
    ] = None,
    central_timeout: Annotated[
        float,
        _opt("EDGEKV_CENTRAL_TIMEOUT", "Seconds before a read-through or write to central fails (503)."),
    ] = 2.0,
    hot_report_interval: Annotated[
        float, _opt("EDGEKV_HOT_REPORT_INTERVAL", "Seconds between hot-key reports to central.")
    ] = 5.0,
    negative_ttl: Annotated[
        float,
        _opt("EDGEKV_NEGATIVE_TTL", "Seconds a 'not found' is cached (a create clears it)."),
    ] = 60.0,
    https_cert: HttpsCert = None,
    https_key: HttpsKey = None,
    workerd_addr: Annotated[
        str | None,
        _opt("EDGEKV_WORKERD_ADDR", "HOST:PORT serving workerd's KV binding protocol (off if unset)."),
    ] = None,
) -> None:
    from replica.server import run

    _start(
        lambda: ReplicaSettings(
            region=region,
            central=central,
            data_dir=data_dir,
            http_addr=http_addr,
            advertise_url=advertise_url,
            cache_bytes=parse_size(cache_bytes),
            admit_threshold=admit_threshold,
            cluster_secret=cluster_secret,
            tls=TlsSettings(ca_path=tls_ca),
            central_timeout_s=central_timeout,
            hot_report_interval_s=hot_report_interval,
            negative_ttl_s=negative_ttl,
            https_cert_path=https_cert,
            https_key_path=https_key,
            workerd_addr=workerd_addr,
        ),
        run,
    )
