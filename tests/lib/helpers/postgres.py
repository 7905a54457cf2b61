"""Throwaway PostgreSQL servers for tests: `initdb` in a temp dir, a free loopback port,
the unix socket in that dir, stopped (by its own postmaster pid) and removed afterwards.

    with postgres_server() as pg:             # or the `postgres` session fixture
        url = pg.create_database()            # a fresh database: postgresql://edgekv@127.0.0.1:P/db_1
        ...

    # a primary with settings, e.g. for a synchronous standby made with pg_basebackup:
    primary = init_cluster(settings={"wal_level": "replica", "synchronous_commit": "on"}).start()
    standby = PgServer(new_data_dir(), free_port())
    as_owner([bin_path("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
              "-U", SUPERUSER, "-D", str(standby.data_dir), "-R"])
    standby.start({"primary_conninfo": "..."})

PostgreSQL refuses to run as root, so when the tests run as root every server command
runs as the `postgres` system user (`runuser -u postgres --`) in a directory it owns.
The Makefile installs Debian's `postgresql`; its binaries are in
/usr/lib/postgresql/MAJOR/bin, and the newest major there is used (`EDGEKV_PG_BIN`
names another directory).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from edgekv.launch import free_port


def _newest_pg_bin(root: Path = Path("/usr/lib/postgresql")) -> Path:
    """The bin directory of the newest PostgreSQL major under `root` that has `initdb`
    (Debian installs one directory per major: 15 on bookworm, 17 on trixie)."""
    found = [p.parent for p in root.glob("*/bin/initdb") if p.parent.parent.name.isdigit()]
    if not found:
        return root / "15" / "bin"  # what the Makefile installs on bookworm; fails clearly below
    return max(found, key=lambda b: int(b.parent.name))


PG_BIN = Path(os.environ.get("EDGEKV_PG_BIN") or _newest_pg_bin())
SUPERUSER = "edgekv"
OS_USER = "postgres"  # the system user that owns data dirs when we are root
START_TIMEOUT_S = 30
# Defaults for a test server: small, fast to start, loopback only.
TEST_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "32MB",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def bin_path(name: str) -> str:
    return str(PG_BIN / name)


def _as_root() -> bool:
    return os.geteuid() == 0


def as_owner(cmd: Sequence[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL command as the data dirs' owner (runuser when we are root)."""
    full = ["runuser", "-u", OS_USER, "--", *cmd] if _as_root() else list(cmd)
    return subprocess.run(full, check=True, capture_output=True, text=True, timeout=120, **kw)  # type: ignore[call-overload,no-any-return]


def new_data_dir(prefix: str = "edgekv-pg-") -> Path:
    """A fresh temp dir owned by the server user (pytest's tmp dirs are 0700 root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o700)
    if _as_root():
        shutil.chown(base, OS_USER, OS_USER)
    return base


@dataclass
class PgServer:
    """One server on `data_dir` (a cluster dir), listening on 127.0.0.1:`port`."""

    data_dir: Path
    port: int
    settings: dict[str, str] = field(default_factory=dict)
    _dbs: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    @property
    def socket_dir(self) -> Path:
        return self.data_dir

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    @property
    def pid(self) -> int | None:
        """The postmaster pid (from postmaster.pid), None when not running."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def start(self, settings: Mapping[str, str] | None = None) -> PgServer:
        """Start (waiting until it accepts connections); `settings` add to the defaults."""
        if settings:
            self.settings.update(settings)
        opts = {**TEST_SETTINGS, "port": str(self.port), "unix_socket_directories": str(self.socket_dir)}
        opts.update(self.settings)
        options = " ".join(f"-c {k}={_quote(v)}" for k, v in opts.items())
        as_owner(
            [bin_path("pg_ctl"), "start", "-w", "-t", str(START_TIMEOUT_S), "-D", str(self.data_dir),
             "-l", str(self.log_path), "-o", options]
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        if self.pid is None:
            return
        with contextlib.suppress(subprocess.SubprocessError):
            as_owner([bin_path("pg_ctl"), "stop", "-w", "-m", mode, "-D", str(self.data_dir)])

    def kill9(self) -> None:
        """SIGKILL the postmaster (its backends exit on their own when they notice)."""
        pid = self.pid
        if pid is None:
            return
        family = [pid, *_children(pid)]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        # Backends exit when they notice; a restart needs them gone (shared memory).
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.02)
        # The postmaster's parent (pg_ctl is gone) may reap it late; PostgreSQL takes a
        # zombie for a live postmaster, so wait for it to vanish, then drop its lock file.
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _exists(pid):
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def psql(self, sql: str, dbname: str = "postgres") -> str:
        out = as_owner(
            [bin_path("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir),
             "-p", str(self.port), "-U", SUPERUSER, "-d", dbname, "-c", sql]
        )  # fmt: skip
        return out.stdout.strip()

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"db_{next(self._dbs)}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def create_schema(self, dbname: str = "postgres") -> str:
        """A new empty schema in `dbname` (much cheaper than a database); returns a URL
        whose connections use it (search_path), so the store's tables land there."""
        name = f"s_{next(self._dbs)}"
        self.psql(f'CREATE SCHEMA "{name}"', dbname)
        return f"{self.url(dbname)}?options=-csearch_path%3D{name}"

    def drop_database(self, name: str) -> None:
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "\\'") + "'" if any(c in value for c in " ,'") else value


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().split(") ", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
    return out


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _alive(pid: int) -> bool:
    if not _exists(pid):
        return False
    # A zombie postmaster of pg_ctl's (already reaped by init) counts as gone.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            return False
    return True


def init_cluster(settings: Mapping[str, str] | None = None, port: int = 0) -> PgServer:
    """`initdb` a new cluster (trust auth on loopback, superuser `edgekv`), not started."""
    data_dir = new_data_dir()
    as_owner(
        [bin_path("initdb"), "-D", str(data_dir), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
         "--locale=C", "--no-sync"]
    )  # fmt: skip
    return PgServer(data_dir, port or free_port(), dict(settings or {}))


@contextlib.contextmanager
def postgres_server(settings: Mapping[str, str] | None = None) -> Iterator[PgServer]:
    """A started throwaway server, stopped and removed on exit."""
    pg = init_cluster(settings)
    try:
        pg.start()
        yield pg
    finally:
        pg.remove()


# The shared session server trades durability for speed (no test of it kills this server;
# durability tests start their own with `postgres_server()`).
SESSION_SETTINGS: dict[str, str] = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """One throwaway server for the whole session; tests take fresh databases from it."""
    with postgres_server(SESSION_SETTINGS) as pg:
        yield pg


@pytest.fixture
def pg_url(postgres: PgServer) -> Iterator[str]:
    """A fresh, empty schema on the session's server (as a URL), dropped afterwards."""
    url = postgres.create_schema()
    yield url
    postgres.psql(f'DROP SCHEMA IF EXISTS "{url.rsplit("%3D", 1)[1]}" CASCADE')
