"""The throwaway PostgreSQL helper itself: fresh databases, kill -9 and restart."""

from __future__ import annotations

from helpers.postgres import PgServer, postgres_server


def test_fresh_databases_are_separate(postgres: PgServer) -> None:
    a = postgres.create_database()
    b = postgres.create_database()
    assert a != b
    postgres.psql("CREATE TABLE t (x int)", a.rsplit("/", 1)[1])
    assert postgres.psql("SELECT count(*) FROM pg_tables WHERE tablename = 't'", b.rsplit("/", 1)[1]) == "0"


def test_kill9_then_restart_keeps_committed_data() -> None:
    with postgres_server({"fsync": "on"}) as pg:
        pg.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (7)")
        pg.kill9()
        pg.start()
        assert pg.psql("SELECT x FROM t") == "7"
