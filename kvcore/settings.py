"""One typed settings object per process, validated at start with a clear message.

The command line (`edgekv`) fills these from flags, each with an `EDGEKV_*`
environment fallback; tests build them directly. Units are in the names.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from kvcore.model import MIN_TOKEN_SECRET_CHARS


class SettingsError(ValueError):
    """A setting is invalid; the message names the flag and its environment variable."""


# Values pushed on the change stream are kept small so stream messages and slow
# subscribers' queues stay bounded; bigger values are fetched on the next read.
MAX_PUSH_VALUE_BYTES = 1024 * 1024
# Flags as errors name them: the flag and the environment variable that also sets it.
DATA_DIR_FLAG = "--data-dir (EDGEKV_DATA_DIR)"
GRPC_ADDR_FLAG = "--grpc-addr (EDGEKV_GRPC_ADDR)"
HTTP_ADDR_FLAG = "--http-addr (EDGEKV_HTTP_ADDR)"
WORKERD_ADDR_FLAG = "--workerd-addr (EDGEKV_WORKERD_ADDR)"

_ADDR = re.compile(r"^(?P<host>\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(?P<port>\d{1,5})$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_URL = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
_REGION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_addr(value: str, flag: str) -> str:
    m = _ADDR.match(value)
    if not m or not 0 <= int(m["port"]) <= 65535:
        raise SettingsError(f"{flag}: {value!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return value


def check_addr_list(value: str, flag: str) -> list[str]:
    """'h1:7070,h2:7070' -> ['h1:7070', 'h2:7070']: each HOST:PORT, at least one, none twice."""
    addrs = [a.strip() for a in value.split(",") if a.strip()]
    if not addrs:
        raise SettingsError(f"{flag}: at least one HOST:PORT (e.g. 127.0.0.1:7070)")
    for a in addrs:
        check_addr(a, flag)
    if len(set(addrs)) != len(addrs):
        raise SettingsError(f"{flag}: {value!r} names an address twice")
    return addrs


def is_loopback(host: str) -> bool:
    return host == "localhost" or host == "::1" or host.startswith("127.")


def split_addr(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def _positive(value: float, flag: str, *, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise SettingsError(f"{flag}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_https(cert_path: str | None, key_path: str | None) -> None:
    """--https-cert and --https-key: both or neither, each a readable PEM file."""
    if bool(cert_path) != bool(key_path):
        raise SettingsError("--https-cert and --https-key (EDGEKV_HTTPS_CERT, EDGEKV_HTTPS_KEY) go together")
    check_readable_file(cert_path, "--https-cert (EDGEKV_HTTPS_CERT)")
    check_readable_file(key_path, "--https-key (EDGEKV_HTTPS_KEY)")


def check_readable_file(path: str | None, flag: str) -> None:
    """A PEM file named by a flag exists and can be read (checked at start, so a typo
    is one line naming the flag rather than a traceback from the TLS library)."""
    if not path:
        return
    if not os.path.isfile(path):
        raise SettingsError(f"{flag}: no such file: {path}")
    if not os.access(path, os.R_OK):
        raise SettingsError(f"{flag}: cannot read {path} (permission denied)")


@dataclass(frozen=True)
class TlsSettings:
    cert_path: str | None = None
    key_path: str | None = None
    ca_path: str | None = None

    def check_files(self) -> None:
        check_readable_file(self.cert_path, "--tls-cert (EDGEKV_TLS_CERT)")
        check_readable_file(self.key_path, "--tls-key (EDGEKV_TLS_KEY)")
        check_readable_file(self.ca_path, "--tls-ca (EDGEKV_TLS_CA)")


@dataclass(frozen=True)
class CentralSettings:
    data_dir: str = ""  # the RocksDB store's directory (unused with a PostgreSQL store)
    grpc_addr: str = "127.0.0.1:7070"
    http_addr: str = "127.0.0.1:8080"
    propagation_delay_s: float = 60.0
    cluster_secret: str | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    # Creates whose value is at most this many bytes are pushed with their value.
    push_value_max_bytes: int = 64 * 1024
    log_retention: int = 1_000_000
    # Changes buffered per subscriber before it is reset as too slow.
    subscriber_queue_changes: int = 100_000
    bootstrap_account: str | None = None
    bootstrap_token: str | None = None
    # Serve the REST API over HTTPS (PEM files); plain HTTP when unset.
    https_cert_path: str | None = None
    https_key_path: str | None = None
    # "rocksdb" (the embedded store in data_dir) or a postgresql:// URL shared by centrals.
    store: str = "rocksdb"

    @property
    def store_is_postgres(self) -> bool:
        return self.store.startswith(("postgresql://", "postgres://"))

    def validate(self) -> CentralSettings:
        if self.store != "rocksdb" and not self.store_is_postgres:
            raise SettingsError(
                f"--store (EDGEKV_STORE): 'rocksdb' or a postgresql:// URL, got {self.store.split('@')[-1]!r}"
            )
        if not self.data_dir and not self.store_is_postgres:
            raise SettingsError(f"{DATA_DIR_FLAG}: required with --store rocksdb")
        check_addr(self.grpc_addr, GRPC_ADDR_FLAG)
        check_addr(self.http_addr, HTTP_ADDR_FLAG)
        if not self.cluster_secret and not is_loopback(split_addr(self.grpc_addr)[0]):
            # Without it anyone who reaches the port can mint tokens and read every
            # account's changes: only acceptable where only this machine can connect.
            raise SettingsError(
                f"--cluster-secret (EDGEKV_CLUSTER_SECRET): required when --grpc-addr ({self.grpc_addr}) "
                "is not a loopback address"
            )
        _positive(self.propagation_delay_s, "--propagation-delay (EDGEKV_PROPAGATION_DELAY)", allow_zero=True)
        if self.propagation_delay_s > 3600:
            raise SettingsError("--propagation-delay (EDGEKV_PROPAGATION_DELAY): at most 3600 seconds")
        if bool(self.tls.cert_path) != bool(self.tls.key_path):
            raise SettingsError("--tls-cert and --tls-key (EDGEKV_TLS_CERT, EDGEKV_TLS_KEY) go together")
        self.tls.check_files()
        check_https(self.https_cert_path, self.https_key_path)
        if not 0 <= self.push_value_max_bytes <= MAX_PUSH_VALUE_BYTES:
            raise SettingsError("--push-value-max-bytes (EDGEKV_PUSH_VALUE_MAX_BYTES): between 0 and 1 MiB")
        _positive(self.log_retention, "--log-retention (EDGEKV_LOG_RETENTION)")
        _positive(self.subscriber_queue_changes, "--subscriber-queue-changes")
        if bool(self.bootstrap_account) != bool(self.bootstrap_token):
            raise SettingsError("EDGEKV_BOOTSTRAP_ACCOUNT and EDGEKV_BOOTSTRAP_TOKEN go together")
        if self.bootstrap_account and not _HEX32.match(self.bootstrap_account):
            raise SettingsError("EDGEKV_BOOTSTRAP_ACCOUNT: must be 32 lowercase hex characters")
        if self.bootstrap_token is not None and len(self.bootstrap_token) < MIN_TOKEN_SECRET_CHARS:
            raise SettingsError(f"EDGEKV_BOOTSTRAP_TOKEN: at least {MIN_TOKEN_SECRET_CHARS} characters")
        return self


@dataclass(frozen=True)
class ReplicaSettings:
    region: str
    central: str
    data_dir: str
    http_addr: str = "127.0.0.1:8081"
    # The HTTP base URL announced to central (its dashboard asks this region where keys
    # are); None = "http(s)://" + http_addr, right when central can reach that address.
    advertise_url: str | None = None
    cache_bytes: int = 256 * 1024 * 1024
    # A key is admitted to the edge cache once read this many times (decaying count).
    admit_threshold: int = 2
    cluster_secret: str | None = None
    tls: TlsSettings = field(default_factory=TlsSettings)
    # Deadline of a read-through or forwarded write; past it the client gets a 503.
    central_timeout_s: float = 2.0
    hot_report_interval_s: float = 5.0
    hot_report_keys: int = 10_000
    negative_ttl_s: float = 60.0
    frequency_half_life_s: float = 60.0
    https_cert_path: str | None = None
    https_key_path: str | None = None
    # workerd's KV service protocol (kvcore.workerd) on its own listener; None = off.
    workerd_addr: str | None = None

    def validate(self) -> ReplicaSettings:
        if not _REGION.match(self.region or ""):
            raise SettingsError(
                "--region (EDGEKV_REGION): 1-32 of lowercase letters, digits, '-' or '_' (e.g. 'eu')"
            )
        if self.region == "central":
            raise SettingsError("--region (EDGEKV_REGION): 'central' is reserved")
        check_addr_list(self.central, "--central (EDGEKV_CENTRAL)")
        if not self.data_dir:
            raise SettingsError(f"{DATA_DIR_FLAG}: required")
        if self.advertise_url is not None and not _URL.match(self.advertise_url):
            raise SettingsError(
                f"--advertise-url (EDGEKV_ADVERTISE_URL): {self.advertise_url!r} is not an http(s):// URL"
            )
        check_addr(self.http_addr, HTTP_ADDR_FLAG)
        self.tls.check_files()
        check_https(self.https_cert_path, self.https_key_path)
        if self.cache_bytes < 1024 * 1024:
            raise SettingsError("--cache-bytes (EDGEKV_CACHE_BYTES): at least 1 MiB (1048576)")
        _positive(self.admit_threshold, "--admit-threshold (EDGEKV_ADMIT_THRESHOLD)")
        _positive(self.central_timeout_s, "--central-timeout (EDGEKV_CENTRAL_TIMEOUT)")
        _positive(self.hot_report_interval_s, "--hot-report-interval (EDGEKV_HOT_REPORT_INTERVAL)")
        _positive(self.negative_ttl_s, "--negative-ttl (EDGEKV_NEGATIVE_TTL)")
        if self.workerd_addr is not None:
            check_addr(self.workerd_addr, WORKERD_ADDR_FLAG)
        return self

    @property
    def advertised_url(self) -> str:
        """--advertise-url, else this process's own REST address (https with --https-cert)."""
        scheme = "https" if self.https_cert_path else "http"
        return (self.advertise_url or f"{scheme}://{self.http_addr}").rstrip("/")

    @property
    def advertises_wildcard(self) -> bool:
        """True when the default advertised URL names a wildcard address (0.0.0.0, ::),
        which central cannot reach: `--advertise-url` is needed."""
        return self.advertise_url is None and split_addr(self.http_addr)[0] in ("0.0.0.0", "::", "")


def parse_size(text: str) -> int:
    """'64MiB', '1GiB', '500MB', '1048576' -> bytes."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*", text, re.IGNORECASE)
    if not m:
        raise SettingsError(f"{text!r} is not a size (e.g. 64MiB, 1GiB, 1048576)")
    number, unit = float(m[1]), (m[2] or "B").upper()
    scale = {"B": 1, "K": 1000, "KB": 1000, "M": 10**6, "MB": 10**6, "G": 10**9, "GB": 10**9}
    scale |= {"T": 10**12, "TB": 10**12, "KI": 2**10, "KIB": 2**10, "MI": 2**20, "MIB": 2**20}
    scale |= {"GI": 2**30, "GIB": 2**30, "TI": 2**40, "TIB": 2**40}
    return int(number * scale[unit])
