"""The throwaway PostgreSQL helper itself: which binaries, fresh databases, kill -9
and restart."""

from __future__ import annotations

from pathlib import Path

from helpers.postgres import PgServer, _newest_pg_bin, postgres_server


def test_the_newest_installed_major_is_used(tmp_path: Path) -> None:
    for major in ("9", "15", "17"):
        (tmp_path / major / "bin").mkdir(parents=True)
        (tmp_path / major / "bin" / "initdb").touch()
    (tmp_path / "18" / "bin").mkdir(parents=True)  # no initdb: a client-only package
    (tmp_path / "common" / "bin").mkdir(parents=True)
    (tmp_path / "common" / "bin" / "initdb").touch()
    assert _newest_pg_bin(tmp_path) == tmp_path / "17" / "bin"


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
