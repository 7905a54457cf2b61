"""A throwaway PostgreSQL primary with a synchronous streaming-replication standby.

    with sync_pair() as pair:
        url = pair.create_database()   # postgresql://edgekv@127.0.0.1:P1,127.0.0.1:P2/db_1
                                       #   ?target_session_attrs=read-write
        ...                            # writes through centrals on `url`
        pair.primary.kill9()
        pair.promote()                 # the standby becomes the primary (pg_ctl promote)

The primary runs with `synchronous_commit=on` and `synchronous_standby_names` naming
the standby, so a commit returns only once the standby has flushed its WAL: a write
acknowledged before the primary dies is on the standby. The standby is a
`pg_basebackup -R` copy that streams from the primary (`primary_conninfo` with its
`application_name`); it has no synchronous standby of its own, so once promoted it
commits alone. Both are servers of `helpers.postgres` (initdb, runuser as root, temp
dirs, free loopback ports) and are stopped and removed on exit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from edgekv.launch import free_port
from helpers.postgres import SUPERUSER, PgServer, as_owner, bin_path, init_cluster, new_data_dir

STANDBY_NAME = "standby1"
PRIMARY_SETTINGS = {
    "wal_level": "replica",
    "max_wal_senders": "5",
    "synchronous_commit": "on",
    "synchronous_standby_names": STANDBY_NAME,
    "fsync": "on",
}
SYNC_TIMEOUT_S = 30.0


@dataclass
class SyncPair:
    primary: PgServer
    standby: PgServer

    def url(self, dbname: str) -> str:
        """The multi-host URL a central is given: whichever server takes writes."""
        return (
            f"postgresql://{SUPERUSER}@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
            f"/{dbname}?target_session_attrs=read-write"
        )

    def create_database(self, name: str = "edgekv") -> str:
        self.primary.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def sync_state(self) -> str:
        """The standby's state as the primary sees it ('sync' once commits wait for it)."""
        return self.primary.psql(
            f"SELECT sync_state FROM pg_stat_replication WHERE application_name = '{STANDBY_NAME}'"
        )

    def wait_sync(self, timeout_s: float = SYNC_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while self.sync_state() != "sync":
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"standby not synchronous after {timeout_s}s:\n{self.standby.log()[-3000:]}"
                )
            time.sleep(0.05)

    def promote(self) -> None:
        """`pg_ctl promote -w`: the standby leaves recovery and takes writes."""
        as_owner([bin_path("pg_ctl"), "promote", "-w", "-t", "30", "-D", str(self.standby.data_dir)])

    def remove(self) -> None:
        for server in (self.standby, self.primary):
            with contextlib.suppress(Exception):
                server.remove()


def start_standby(primary: PgServer) -> PgServer:
    """A `pg_basebackup -R` copy of `primary`, started and streaming from it."""
    standby = PgServer(new_data_dir("edgekv-pg-standby-"), free_port())
    as_owner(
        [bin_path("pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port), "-U", SUPERUSER,
         "-D", str(standby.data_dir), "-R", "-X", "stream", "--no-sync"]
    )  # fmt: skip
    (standby.data_dir / "postmaster.pid").unlink(missing_ok=True)
    conninfo = f"host=127.0.0.1 port={primary.port} user={SUPERUSER} application_name={STANDBY_NAME}"
    # The primary's settings are command-line options, not copied: the standby has no
    # synchronous standby of its own, so once promoted it commits alone.
    return standby.start({"primary_conninfo": conninfo, "fsync": "on"})


@contextlib.contextmanager
def sync_pair() -> Iterator[SyncPair]:
    """A primary and its synchronous standby, in sync; both removed on exit."""
    primary = init_cluster(PRIMARY_SETTINGS)
    pair: SyncPair | None = None
    try:
        primary.start()
        pair = SyncPair(primary, start_standby(primary))
        pair.wait_sync()
        yield pair
    finally:
        if pair is not None:
            pair.remove()
        else:
            primary.remove()
