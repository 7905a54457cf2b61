"""The Prometheus config, alert rules and Grafana dashboard against a real dev cluster.

Needs Debian's `prometheus` package (`promtool`, `prometheus`); `make test` installs it
(target deps-debian). Starts `edgekv dev --regions us,eu` and a real Prometheus server on free
loopback ports, runs a short workload through the REST API, and then checks that every PromQL
expression of every dashboard panel and alert rule returns data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from edgekv.dev import free_port

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
ALERTS = PROM_DIR / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "edgekv.json"

_MISSING = [tool for tool in ("promtool", "prometheus") if shutil.which(tool) is None]
PROMTOOL = shutil.which("promtool") or "promtool"
PROMETHEUS = shutil.which("prometheus") or "prometheus"

pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason="Debian package 'prometheus' (promtool, prometheus) is not installed: run `make deps-debian`",
)

REGIONS = ("us", "eu")
PROPAGATION_DELAY = 1.0
# What Grafana substitutes in the dashboard's expressions, for an instant query here.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__interval": "1s", "$__range": "5m"}


# ---------------------------------------------------------------------------------------------
# helpers


def _wait(what: str, check: Any, timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except Exception as e:  # keep polling; report the last failure
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def _stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM the process we started; SIGKILL its own process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # start_new_session: the group id is its pid
            proc.wait(5)


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


_COMPARISON = re.compile(r"==|!=|>=|<=|>|<")


def boolify(expr: str) -> str:
    """Turn every comparison outside label matchers into its `bool` form.

    An alert's expression returns series only while it fires; `a > bool 65` returns a 0/1
    sample for every series `a` has, so an empty answer means the metrics are missing, not
    that the alert is quiet.
    """
    out: list[str] = []
    i, braces, quote = 0, 0, ""
    while i < len(expr):
        c = expr[i]
        if quote:
            out.append(c)
            if c == "\\" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 2
                continue
            if c == quote:
                quote = ""
            i += 1
            continue
        if c in "\"'`":
            quote = c
        elif c == "{":
            braces += 1
        elif c == "}":
            braces -= 1
        elif braces == 0:
            m = _COMPARISON.match(expr, i)
            if m:
                out.append(m.group())
                i = m.end()
                if not re.match(r"\s*bool\b", expr[i:]):
                    out.append(" bool")
                continue
        out.append(c)
        i += 1
    return "".join(out)


def dashboard_expressions() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    found.append((f"panel {p.get('title')!r} {t.get('refId')}", t["expr"]))
            walk(p.get("panels", []))

    walk(dash["panels"])
    for v in dash.get("templating", {}).get("list", []):
        q = v.get("query")
        if v.get("type") == "query" and q:
            found.append((f"variable {v.get('name')}", q if isinstance(q, str) else q.get("query", "")))
    return found


def alert_expressions() -> list[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    return [
        (f"alert {r.get('alert') or r.get('record')}", r["expr"]) for g in rules["groups"] for r in g["rules"]
    ]


def grafana_substitute(expr: str) -> str:
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    assert "$" not in expr, f"unsubstituted dashboard variable in {expr!r}"
    return expr


# ---------------------------------------------------------------------------------------------
# static checks


def test_promtool_check_config() -> None:
    r = subprocess.run(
        [PROMTOOL, "check", "config", str(PROM_CONFIG)], capture_output=True, text=True, timeout=30
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rule files found" in r.stdout, r.stdout  # alerts.yml is referenced and valid


def test_promtool_check_rules() -> None:
    r = subprocess.run([PROMTOOL, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr


def test_required_alerts_present() -> None:
    names = {name.removeprefix("alert ") for name, _ in alert_expressions()}
    assert {"ReplicaDisconnected", "ReplicationLagHigh", "High5xxRatio", "CentralNotReady"} <= names


def test_boolify() -> None:
    assert boolify('up{job="central"} == 0') == 'up{job="central"} == bool 0'
    assert boolify('a{code=~"5..",x!="y"} > 0.05') == 'a{code=~"5..",x!="y"} > bool 0.05'
    assert boolify("a > bool 1 or b <= on(region) c") == "a > bool 1 or b <= bool on(region) c"


# ---------------------------------------------------------------------------------------------
# the live cluster and Prometheus


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("devcluster")
    info_file = tmp / "info.json"
    log = tmp / "dev.log"
    exe = Path(sys.executable).with_name("edgekv")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "edgekv"]
    cmd += ["dev", "--regions", ",".join(REGIONS), "--propagation-delay", str(PROPAGATION_DELAY)]
    cmd += ["--info-file", str(info_file)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    try:

        def ready() -> dict[str, Any] | None:
            if proc.poll() is not None:
                raise RuntimeError(f"edgekv dev exited with {proc.returncode}:\n{_log_tail(log)}")
            if not info_file.exists():
                return None
            info: dict[str, Any] = json.loads(info_file.read_text())
            urls = [info["central"]["http"], *info["regions"].values()]
            if all(httpx.get(f"{u}/readyz", timeout=2).status_code == 200 for u in urls):
                return info
            return None

        try:
            info = _wait("edgekv dev to be ready", ready, timeout=40)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{_log_tail(log)}") from None
        yield info
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def prometheus(cluster: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load(PROM_CONFIG.read_text())
    config["global"].update({"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = [str(ALERTS)]
    hostport = {name: url.removeprefix("http://") for name, url in cluster["regions"].items()}
    targets = {
        "central": [cluster["central"]["http"].removeprefix("http://")],
        "replica": list(hostport.values()),
    }
    jobs = {j["job_name"] for j in config["scrape_configs"]}
    assert jobs == set(targets), f"deploy/prometheus/prometheus.yml jobs changed: {jobs}"
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": targets[job["job_name"]]}]
    cfg_path = tmp / "prometheus.yml"
    cfg_path.write_text(yaml.safe_dump(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={cfg_path}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:

        def ready() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{_log_tail(log)}")
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200

        _wait("prometheus to be ready", ready, timeout=30)
        yield url
    finally:
        _stop(proc)


def test_promtool_check_metrics(cluster: dict[str, Any]) -> None:
    for name, url in [("central", cluster["central"]["http"]), *cluster["regions"].items()]:
        text = httpx.get(f"{url}/metrics", timeout=5).text
        assert "edgekv_http_requests_total" in text, name
        r = subprocess.run(
            [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
        )
        assert r.returncode == 0 and not (r.stdout + r.stderr).strip(), f"{name}: {r.stdout}{r.stderr}"


def _workload(info: dict[str, Any], round_: int) -> None:
    """A short, bounded workload touching every metric family the dashboards and alerts use."""
    acct = info["account_id"]
    headers = {"Authorization": f"Bearer {info['token']}"}
    central = info["central"]["http"]
    us, eu = (info["regions"][r] for r in REGIONS)

    def api(base: str) -> str:
        return f"{base}/client/v4/accounts/{acct}/storage/kv/namespaces"

    with httpx.Client(headers=headers, timeout=10) as c:
        r = c.post(api(us), json={"title": f"ops-test-{round_}"})
        assert r.status_code == 200, r.text
        ns = r.json()["result"]["id"]
        # creates through both replicas
        for i in range(4):
            r = c.put(f"{api(us if i % 2 else eu)}/{ns}/values/key-{i}", content=f"v0-{i}".encode())
            assert r.status_code == 200, r.text
        # a missing key, twice (404, then a negative cache hit)
        for _ in range(2):
            assert c.get(f"{api(eu)}/{ns}/values/missing").status_code == 404
        # hot reads: the keys enter the edge caches
        for _ in range(15):
            for base in (us, eu):
                for i in range(4):
                    assert c.get(f"{api(base)}/{ns}/values/key-{i}").status_code == 200
        # updates, several per key within the propagation delay (coalesced at central)
        for n in range(1, 4):
            for i in range(2):
                r = c.put(f"{api(eu if i % 2 else us)}/{ns}/values/key-{i}", content=f"v{n}-{i}".encode())
                assert r.status_code == 200, r.text
        # strong reads (answered from central), central's own REST API, a delete
        for base in (us, eu):
            r = c.get(f"{api(base)}/{ns}/values/key-0", params={"consistency": "strong"})
            assert r.status_code == 200 and r.content == b"v3-0", r.text
        assert c.get(f"{api(central)}/{ns}/keys").status_code == 200
        assert c.delete(f"{api(us)}/{ns}/values/key-3").status_code == 200


def _query(prom: str, expr: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=10)
    body = r.json()
    assert r.status_code == 200 and body.get("status") == "success", f"{expr!r}: {r.status_code} {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


@pytest.mark.timeout(150)
def test_every_dashboard_and_alert_expression_returns_data(cluster: dict[str, Any], prometheus: str) -> None:
    t0 = time.monotonic()
    # Every target is up before the workload, so counters get a baseline sample.
    _wait(
        "every target scraped",
        lambda: len(_query(prometheus, "up == 1")) == 1 + len(REGIONS),
        timeout=20,
    )
    _workload(cluster, 1)
    time.sleep(PROPAGATION_DELAY + 1.5)  # updates flushed and applied, a few scrapes taken
    _workload(cluster, 2)  # a second round: rates over the window are non-zero

    expressions = [(n, grafana_substitute(e)) for n, e in dashboard_expressions()]
    expressions += [(n, boolify(e)) for n, e in alert_expressions()]
    assert len(expressions) >= 20, expressions

    pending = dict(expressions)
    deadline = time.monotonic() + 30
    while pending and time.monotonic() < deadline:
        for name, expr in list(pending.items()):
            if _query(prometheus, expr):
                del pending[name]
        if pending:
            time.sleep(1)
    assert not pending, "expressions with no data after the workload:\n" + "\n".join(
        f"  {n}: {e}" for n, e in pending.items()
    )

    # The alert rules as written (not only their bool forms) are valid and evaluated by this
    # Prometheus without errors; on a healthy cluster none of them fires (each has a `for:` of
    # a minute or more, so "firing" cannot happen within this test; "pending" is tolerated).
    for _name, expr in alert_expressions():
        _query(prometheus, expr)

    def rules_evaluated() -> list[dict[str, Any]] | None:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        return rules if rules and all(r.get("lastEvaluation", "").startswith("20") for r in rules) else None

    rules = _wait("alert rules evaluated", rules_evaluated, timeout=10)
    assert {r["name"] for r in rules} == {n.removeprefix("alert ") for n, _ in alert_expressions()}
    for r in rules:
        assert r["health"] == "ok", f"{r['name']}: {r.get('lastError')}"
        assert r["state"] != "firing", f"{r['name']} is firing on a healthy cluster"
    assert time.monotonic() - t0 < 90
