"""The PostgreSQL schema of the store, created or migrated when a central starts.

Tables mirror RocksStore's column families and hold the same byte encodings
(codec.py), so every operation in ops.py decides exactly as it does on RocksDB:

    edgekv_entries(k bytea, v bytea)            namespace id bytes + UTF-8 key -> entry record
    edgekv_namespaces, edgekv_namespace_titles, edgekv_tokens, edgekv_expiry, edgekv_meta
                                                (k bytea, v bytea), as the column families
    edgekv_change_log(seq bigint, kind smallint, v bytea, k bytea)
                                                the change log: kind for filters; k is the
                                                entry key of a create (else NULL), so a
                                                follower reads a create's value in the same
                                                query (pg_follow.py); schema version 2
    edgekv_seq(id = 1, last_seq bigint)         the commit-order counter (see pg_engine.py)
    edgekv_schema(version integer)              one row: the schema version

`bytea` compares bytewise (memcmp), so key order, namespace ranges and list pages
are the same as RocksDB's bytewise comparator gives.

Two centrals starting at once must not race: the whole migration runs in one
transaction under a transaction-level advisory lock, so the second waits, then finds
the schema current and does nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import psycopg

from kvcore.errors import InternalError
from kvcore.store.txn import CF

# Advisory lock keys (one 64-bit space per database); arbitrary but fixed.
MIGRATION_LOCK: Final = 0x65646765_6B760001  # "edgekv" 1
MAINTENANCE_LOCK: Final = 0x65646765_6B760002
WRITER_APP: Final = "edgekv-writer"  # application_name of each central's writer session

TABLES: Final[dict[CF, str]] = {
    CF.DATA: "edgekv_entries",
    CF.NAMESPACES: "edgekv_namespaces",
    CF.TITLES: "edgekv_namespace_titles",
    CF.TOKENS: "edgekv_tokens",
    CF.LOG: "edgekv_change_log",
    CF.META: "edgekv_meta",
    CF.EXPIRY: "edgekv_expiry",
}

_KV_TABLE = "CREATE TABLE {} (k bytea PRIMARY KEY, v bytea NOT NULL)"

# Migration n (index n-1) takes the schema from version n-1 to n. Append only.
MIGRATIONS: Final[list[list[str]]] = [
    [
        *(_KV_TABLE.format(t) for cf, t in TABLES.items() if cf is not CF.LOG),
        "CREATE TABLE edgekv_change_log (seq bigint PRIMARY KEY, kind smallint NOT NULL, v bytea NOT NULL)",
        "CREATE TABLE edgekv_seq (id smallint PRIMARY KEY CHECK (id = 1), last_seq bigint NOT NULL)",
        "INSERT INTO edgekv_seq VALUES (1, 0)",
    ],
    # 2: creates name their entry; older rows keep NULL (their creates travel without a
    # value, and the hub reads it). Adding a nullable column does not rewrite the table.
    ["ALTER TABLE edgekv_change_log ADD COLUMN k bytea"],
]
SCHEMA_VERSION: Final = len(MIGRATIONS)


def notify_channel(conn: psycopg.Connection[Any]) -> str:
    """The NOTIFY channel of this schema's change log; payload: a seq up to which the
    log is durable (pg_follow.py). Channels are per database and several edgekv schemas
    may share one (the tests do), so the name carries a digest of the schema's."""
    row = conn.execute("SELECT current_schema()").fetchone()
    assert row is not None
    return "edgekv_log_" + hashlib.sha1(str(row[0]).encode()).hexdigest()[:16]


def migrate(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """Bring the schema to SCHEMA_VERSION; returns the version found before.

    Raises InternalError when the database holds a newer schema than this code knows.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS edgekv_schema (version integer NOT NULL)")
        row = conn.execute("SELECT version FROM edgekv_schema").fetchone()
        found = int(row[0]) if row else 0  # type: ignore[call-overload]
        if found > SCHEMA_VERSION:
            raise InternalError(
                f"the database schema is version {found}, newer than this edgekv ({SCHEMA_VERSION})"
            )
        for statements in MIGRATIONS[found:]:
            for sql in statements:
                conn.execute(sql)
        if row is None:
            conn.execute("INSERT INTO edgekv_schema VALUES (%s)", (SCHEMA_VERSION,))
        elif found < SCHEMA_VERSION:
            conn.execute("UPDATE edgekv_schema SET version = %s", (SCHEMA_VERSION,))
    return found
