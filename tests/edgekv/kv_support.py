"""What the `edgekv kv` tests share: run a command in process against a cluster, and
read its result (exit code, one-line error, JSON)."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result
from helpers.dev_cluster import Cluster
from typer.testing import CliRunner

from edgekv.kv import kv_app


def kv(cluster: Cluster, *args: str, where: str = "us", **env: str) -> Result:
    return CliRunner().invoke(kv_app, list(args), env={**cluster.env(where), **env})


def ok(result: Result) -> Result:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}"
    return result


def one_line_error(result: Result, code: int) -> str:
    assert result.exit_code == code, (
        f"exit {result.exit_code}, stdout={result.stdout!r} stderr={result.stderr!r}"
    )
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def as_json(result: Result) -> Any:
    return json.loads(ok(result).stdout)
