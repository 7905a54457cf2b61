"""Fixtures every suite may use: `postgres` (a session-wide throwaway PostgreSQL server)
and `pg_url` (a fresh database on it), from tests/lib/helpers/postgres.py; `cluster` (one
`edgekv dev` for the session) and `namespace`, from tests/lib/helpers/dev_cluster.py.

pytest imports test modules and conftests by their path under the rootdir
(`--import-mode=importlib`, pyproject), so same-named files in different directories
(every `conftest.py`, a `test_health.py` per package) never clash, whatever directories
one run names. That mode puts no test directory on sys.path, so the directories holding
a shared `*_support.py` module are added here, once, before any other conftest imports one.
"""

import sys
from pathlib import Path

for _dir in sorted({p.parent for p in Path(__file__).parent.rglob("*_support.py")}):
    if str(_dir) not in sys.path:
        sys.path.append(str(_dir))

pytest_plugins = ["helpers.postgres", "helpers.dev_cluster"]
