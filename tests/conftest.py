"""Fixtures every suite may use: `postgres` (a session-wide throwaway PostgreSQL server)
and `pg_url` (a fresh database on it), from tests/helpers/postgres.py."""

pytest_plugins = ["helpers.postgres"]
