"""`edgekv central` and `edgekv replica`: flags -> validated settings -> the process.

Each option is stated once, as a parameter named after the settings field it fills
(`kvcore.settings`), so the settings are built from the parameters as they come: only
the TLS files (one `TlsSettings`) and sizes (`64KiB`, through `parse_size`) are
converted on the way. Every flag reads the environment variable `EDGEKV_` + its name
(`--data-dir`: `EDGEKV_DATA_DIR`), the rule the `edgekv` command states.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from kvcore.errors import StartupError
from kvcore.settings import CentralSettings, ReplicaSettings, SettingsError, TlsSettings, parse_size

S = TypeVar("S", CentralSettings, ReplicaSettings)
_SIZES = ("push_value_max_bytes", "cache_bytes")  # given as text: 64KiB, 1GiB, 1048576
_TLS = {"tls_cert": "cert_path", "tls_key": "key_path", "tls_ca": "ca_path"}


def _fields(options: dict[str, Any]) -> dict[str, Any]:
    """The settings fields of a command's options (raises SettingsError for a bad size)."""
    fields: dict[str, Any] = {k: parse_size(v) if k in _SIZES else v for k, v in options.items()}
    tls = {_TLS[name]: fields.pop(name) for name in list(fields) if name in _TLS}
    return {**fields, "tls": TlsSettings(**tls)}


def _start(settings: type[S], run: Callable[[S], None], options: dict[str, Any]) -> None:
    """Build and validate the settings, log at INFO, run the process. A bad flag (exit 2)
    or a process that cannot start (exit 1) is one line on stderr naming the cause."""
    try:
        valid = settings(**_fields(options)).validate()
        logging.getLogger("edgekv").setLevel(logging.INFO)
        run(valid)
    except (SettingsError, StartupError) as exc:
        # One line, no traceback: the message names the flag or the resource at fault.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2 if isinstance(exc, SettingsError) else 1) from None


def _opt(flag: str, help: str) -> typer.models.OptionInfo:
    """The option `flag`, which also reads `EDGEKV_<FLAG>` (shown in --help)."""
    envvar = "EDGEKV_" + flag.removeprefix("--").replace("-", "_").upper()
    return typer.Option(flag, envvar=envvar, help=help, show_envvar=True)  # type: ignore[no-any-return]


HttpsCert = Annotated[str | None, _opt("--https-cert", "PEM certificate: serve the REST API over HTTPS.")]
HttpsKey = Annotated[str | None, _opt("--https-key", "PEM private key for --https-cert.")]


def central_command(
    data_dir: Annotated[
        str, _opt("--data-dir", "Directory of the RocksDB store (not needed with a PostgreSQL one).")
    ] = "",
    grpc_addr: Annotated[str, _opt("--grpc-addr", "HOST:PORT of the gRPC API.")] = "127.0.0.1:7070",
    http_addr: Annotated[
        str, _opt("--http-addr", "HOST:PORT of the REST API, /metrics, /healthz, /readyz.")
    ] = "127.0.0.1:8080",
    propagation_delay_s: Annotated[
        float,
        _opt("--propagation-delay", "Seconds within which updates reach every replica (0 = at once)."),
    ] = 60.0,
    cluster_secret: Annotated[
        str | None, _opt("--cluster-secret", "Shared secret every gRPC call must carry.")
    ] = None,
    tls_cert: Annotated[str | None, _opt("--tls-cert", "PEM certificate for gRPC TLS.")] = None,
    tls_key: Annotated[str | None, _opt("--tls-key", "PEM private key for gRPC TLS.")] = None,
    push_value_max_bytes: Annotated[
        str, _opt("--push-value-max-bytes", "Creates up to this size are pushed with their value.")
    ] = "64KiB",
    log_retention: Annotated[
        int, _opt("--log-retention", "Change-log entries kept for replicas to resume from.")
    ] = 1_000_000,
    subscriber_queue_changes: Annotated[
        int,
        _opt(
            "--subscriber-queue-changes",
            "Changes buffered per replica stream before a replica that does not keep up is reset.",
        ),
    ] = 100_000,
    bootstrap_account: Annotated[
        str | None, _opt("--bootstrap-account", "Create this account (32 hex) at start...")
    ] = None,
    bootstrap_token: Annotated[
        str | None, _opt("--bootstrap-token", "...with a write token of this secret.")
    ] = None,
    store: Annotated[
        str,
        _opt(
            "--store",
            "'rocksdb' (embedded, in --data-dir) or postgresql://USER@HOST[,HOST2]/DB, shared by centrals.",
        ),
    ] = "rocksdb",
    https_cert_path: HttpsCert = None,
    https_key_path: HttpsKey = None,
) -> None:
    options = dict(locals())  # first: the parameters, each named for its settings field
    from central.server import run

    _start(CentralSettings, run, options)


def replica_command(
    region: Annotated[str, _opt("--region", "This replica's region name (e.g. eu).")],
    central: Annotated[
        str,
        _opt("--central", "HOST:PORT[,HOST:PORT...] of central's gRPC API; several fail over in order."),
    ],
    data_dir: Annotated[str, _opt("--data-dir", "Directory for the replica's persisted stream position.")],
    http_addr: Annotated[str, _opt("--http-addr", "HOST:PORT of the REST API and /metrics.")] = (
        "127.0.0.1:8081"
    ),
    advertise_url: Annotated[
        str | None,
        _opt(
            "--advertise-url", "HTTP URL announced to central for its dashboard (default http://HTTP_ADDR)."
        ),
    ] = None,
    cache_bytes: Annotated[
        str, _opt("--cache-bytes", "Edge cache bound: keys + values (e.g. 64MiB, 1GiB).")
    ] = "256MiB",
    admit_threshold: Annotated[
        int, _opt("--admit-threshold", "Reads (decaying count) before a key enters the cache.")
    ] = 2,
    cluster_secret: Annotated[
        str | None, _opt("--cluster-secret", "Shared secret for central's gRPC API.")
    ] = None,
    tls_ca: Annotated[str | None, _opt("--tls-ca", "PEM CA to verify central's TLS certificate.")] = None,
    central_timeout_s: Annotated[
        float, _opt("--central-timeout", "Seconds before a read-through or write to central fails (503).")
    ] = 2.0,
    hot_report_interval_s: Annotated[
        float, _opt("--hot-report-interval", "Seconds between hot-key reports to central.")
    ] = 5.0,
    negative_ttl_s: Annotated[
        float, _opt("--negative-ttl", "Seconds a 'not found' is cached (a create clears it).")
    ] = 60.0,
    https_cert_path: HttpsCert = None,
    https_key_path: HttpsKey = None,
    workerd_addr: Annotated[
        str | None, _opt("--workerd-addr", "HOST:PORT serving workerd's KV binding protocol (off if unset).")
    ] = None,
) -> None:
    options = dict(locals())  # first: the parameters, each named for its settings field
    from replica.server import run

    _start(ReplicaSettings, run, options)
