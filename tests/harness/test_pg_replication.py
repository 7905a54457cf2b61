"""The primary + synchronous standby helper: commits wait for the standby; promotion."""

from __future__ import annotations

from helpers.pg_replication import sync_pair


def test_sync_standby_has_every_commit_and_takes_over_when_promoted() -> None:
    with sync_pair() as pair:
        assert pair.sync_state() == "sync"
        url = pair.create_database("t")
        assert url.endswith("/t?target_session_attrs=read-write") and str(pair.standby.port) in url
        pair.primary.psql("CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100)", "t")
        pair.primary.kill9()
        pair.promote()
        assert pair.standby.psql("SELECT count(*) FROM t", "t") == "100"
        pair.standby.psql("INSERT INTO t VALUES (101)", "t")  # writable, and alone
        assert pair.standby.psql("SELECT pg_is_in_recovery()", "t") == "f"
