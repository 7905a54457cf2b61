"""The dashboard's server side over plain HTTP: the assets and their headers, the
`/ui/api` routes' auth, the regions central learned from the subscribe requests,
an inspect that counts no read, and a region that went away.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers.cluster import metric_value, running, start_central, start_replica
from ui_support import Cluster, new_account

from kvcore.settings import ReplicaSettings, SettingsError
from kvcore.ui.assets import load_assets

pytestmark = pytest.mark.timeout(120)


def _api(base: str, route: str, secret: str | None, **params: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {secret}"} if secret else {}
    return httpx.get(f"{base}/ui/api/{route}", params=params, headers=headers, timeout=10.0)


def test_assets_ship_in_the_package_and_load_nothing_from_elsewhere(cluster: Cluster) -> None:
    assets = load_assets()
    assert set(assets) == {"index.html", "app.js", "app.css"}
    for name, body in assets.items():
        assert not re.search(rb"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}", body), f"{name} refers to another host"
    for proc in (cluster.central, cluster.us):
        page = httpx.get(f"{proc.http}/ui")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "default-src 'none'" in csp
        assert httpx.get(f"{proc.http}/ui/app.js").headers["content-type"].startswith("text/javascript")
        missing = httpx.get(f"{proc.http}/ui/nothing.js")
        assert missing.status_code == 404 and missing.json()["errors"][0]["code"] == 7003


def test_ui_api_needs_a_token_of_the_account(cluster: Cluster) -> None:
    for proc in (cluster.central, cluster.eu):
        r = _api(proc.http, "regions", None, account_id=cluster.account)
        assert r.status_code == 401 and r.json()["errors"][0]["code"] == 10000
        r = _api(proc.http, "regions", cluster.secret, account_id="0" * 32)
        assert r.status_code == 403, r.text
        r = _api(
            proc.http, "locate", cluster.secret, account_id=cluster.account, namespace_id="f" * 32, key="k"
        )
        assert r.status_code == 404 and r.json()["errors"][0]["code"] == 10013


def test_regions_are_the_replicas_that_announced_their_url(cluster: Cluster) -> None:
    for proc in (cluster.central, cluster.us):  # a replica relays central's answer
        r = _api(proc.http, "regions", cluster.secret, account_id=cluster.account)
        assert r.status_code == 200, r.text
        rows = {row["region"]: row for row in r.json()["result"]["regions"]}
        assert rows["us"]["url"] == cluster.us.http and rows["eu"]["url"] == cluster.eu.http
        assert rows["eu"]["connected"] and rows["eu"]["status"]["connected"]
        assert rows["eu"]["status"]["applied_seq"] >= 1


def test_inspect_counts_no_read_and_changes_nothing(cluster: Cluster) -> None:
    ns_id = cluster.create_namespace("ui-inspect")
    with cluster.rest(cluster.central.http) as rest:
        assert rest.put(f"/namespaces/{ns_id}/values/k", content=b"x").status_code == 200
    with cluster.rest(cluster.eu.http) as eu:
        for _ in range(2):
            assert eu.get(f"/namespaces/{ns_id}/values/k").status_code == 200
    metrics = httpx.get(f"{cluster.eu.http}/metrics").text
    params = {"account_id": cluster.account, "namespace_id": ns_id, "key": "k"}
    first = _api(cluster.eu.http, "inspect", cluster.secret, **params).json()["result"]
    for _ in range(5):
        again = _api(cluster.eu.http, "inspect", cluster.secret, **params).json()["result"]
    assert first["cached"] and again["cached"] and again["version"] == first["version"]
    assert again["read_frequency"] == first["read_frequency"] == 2
    after = httpx.get(f"{cluster.eu.http}/metrics").text
    for result in ("hit", "miss", "negative_hit"):
        name = "edgekv_cache_requests_total"
        assert metric_value(after, name, region="eu", result=result) == metric_value(
            metrics, name, region="eu", result=result
        )


def test_a_region_that_went_away_and_a_central_that_went_away(tmp_path: Path) -> None:
    central = start_central(tmp_path, propagation_delay=1)
    with running(central) as procs:
        ap = start_replica(tmp_path, central.grpc, "ap", extra=["--advertise-url", "http://127.0.0.1:9/"])
        sa = start_replica(tmp_path, central.grpc, "sa")
        procs += [ap, sa]
        account, secret = new_account(central.grpc, known_at=[ap.http, sa.http])

        def regions() -> dict[str, dict[str, Any]]:
            r = _api(central.http, "regions", secret, account_id=account)
            return {row["region"]: row for row in r.json()["result"]["regions"]}

        rows = regions()
        assert (rows["ap"]["url"], rows["ap"]["connected"]) == ("http://127.0.0.1:9", True)
        assert rows["ap"]["error"].startswith("unreachable")  # the advertised URL, not --http-addr
        assert rows["sa"]["url"] == sa.http and rows["sa"]["status"]["connected"]
        ap.stop()
        deadline = time.monotonic() + 10
        while regions()["ap"]["connected"]:
            assert time.monotonic() < deadline, "ap still shown connected"
            time.sleep(0.1)

        # Without central, a replica's relayed routes fail fast in the API's envelope; its
        # own status says the stream is down.
        central.stop()
        r = _api(sa.http, "regions", secret, account_id=account)
        assert r.status_code == 503 and r.json()["errors"][0]["code"] == 10043, r.text
        deadline = time.monotonic() + 10
        while _api(sa.http, "status", secret, account_id=account).json()["result"]["connected"]:
            assert time.monotonic() < deadline, "sa still reports its stream up"
            time.sleep(0.1)


def test_advertise_url_setting() -> None:
    base = ReplicaSettings(region="eu", central="127.0.0.1:1", data_dir="d", http_addr="127.0.0.1:8085")
    assert base.validate().advertised_url == "http://127.0.0.1:8085"
    moved = ReplicaSettings(
        region="eu", central="127.0.0.1:1", data_dir="d", advertise_url="https://eu.example/"
    )
    assert moved.validate().advertised_url == "https://eu.example"
    tls = ReplicaSettings(region="eu", central="127.0.0.1:1", data_dir="d", https_cert_path="c.pem")
    assert tls.advertised_url == "https://127.0.0.1:8081"  # REST over HTTPS (--https-cert)
    with pytest.raises(SettingsError, match="--advertise-url"):
        ReplicaSettings(region="eu", central="127.0.0.1:1", data_dir="d", advertise_url="eu:8080").validate()
