"""The region view in headless Chromium, served by the `us` replica (its `/ui/api`
routes are relayed to central): every region at a glance, and where one key's copies
are while an update is held by central for lazy propagation, then after it arrived.

Writes `region-view-update-on-its-way.txt` (what the table says) beside the
screenshots; with `EDGEKV_UI_DOCS_SCREENSHOT=1` the screenshot also replaces
`docs/dashboard-region-view.png`, the one the README shows.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import metric_value
from playwright.sync_api import Page, expect
from ui_support import ARTIFACTS, PROPAGATION_DELAY_S, Cluster, screenshot, sign_in, unlabelled_controls

pytestmark = pytest.mark.timeout(120)

DOCS_SCREENSHOT = Path(__file__).parents[2] / "docs" / "dashboard-region-view.png"


def _reads(cluster: Cluster, proc_http: str, region: str) -> dict[str, float]:
    text = httpx.get(f"{proc_http}/metrics", timeout=5.0).text
    return {
        result: metric_value(text, "edgekv_cache_requests_total", region=region, result=result) or 0.0
        for result in ("hit", "miss", "negative_hit")
    }


def test_region_view_shows_each_copy_and_an_update_on_its_way(cluster: Cluster, page: Page) -> None:
    ns_id = cluster.create_namespace("ui-regions")
    with cluster.rest(cluster.central.http) as rest:
        title = rest.get(f"/namespaces/{ns_id}").json()["result"]["title"]
        assert rest.put(f"/namespaces/{ns_id}/values/hot", content=b"v1").status_code == 200
        version_1 = int(rest.get(f"/namespaces/{ns_id}/values/hot").headers["etag"].strip('"'))
    # Read at eu until it is cached there (admission after 2 reads), then once from the cache.
    with cluster.rest(cluster.eu.http) as eu:
        sources = [eu.get(f"/namespaces/{ns_id}/values/hot").headers["x-edgekv-source"] for _ in range(3)]
    assert sources[-1] == "cache", sources
    eu_reads = _reads(cluster, cluster.eu.http, "eu")
    eu_ratio = (eu_reads["hit"] + eu_reads["negative_hit"]) / sum(eu_reads.values())

    # Regions at a glance (the page is served by the us replica).
    sign_in(page, cluster.us.http, cluster.secret)
    eu_row = page.get_by_role("row", name="region eu")
    expect(eu_row).to_contain_text("connected")
    shown = eu_row.get_by_role("cell").nth(2)  # Connected, Replication lag, Hit ratio, ...
    expect(shown).to_have_text(re.compile(r"^\d+\.\d %$"))
    assert abs(float(shown.inner_text().split(" ")[0]) - eu_ratio * 100) <= 0.051  # rounding alone
    expect(eu_row).to_contain_text("creates")  # mean create lag, from the replica's histogram
    expect(page.get_by_role("row", name="region us")).to_contain_text("connected")
    expect(page.get_by_role("row", name="central")).to_contain_text("committed")

    page.get_by_role("button", name=f"Open namespace {title}", exact=True).click()
    page.get_by_role("button", name="Open key hot").click()
    expect(page.locator("#key-value")).to_have_text("v1")

    # An update, held by central for PROPAGATION_DELAY_S: eu keeps serving v1 meanwhile.
    with cluster.rest(cluster.central.http) as rest:
        r = rest.put(f"/namespaces/{ns_id}/values/hot", content=b"v2")
        assert r.status_code == 200
        version_2 = int(r.headers["etag"].strip('"'))
    updated_at = time.monotonic()
    page.get_by_role("button", name="Where is this key?").click()
    copy_eu = page.get_by_role("row", name="copy in eu")
    expect(copy_eu).to_contain_text(f"version {version_2} on its way")
    assert time.monotonic() - updated_at < PROPAGATION_DELAY_S, "too slow to see the held update"
    cells = copy_eu.get_by_role("cell")
    expect(cells.nth(1)).to_have_text("cached")
    expect(cells.nth(2)).to_have_text(str(version_1))
    expect(cells.nth(3)).to_have_text(re.compile(r"^\d+(\.\d)? s$|^\d+ ms$"))  # the copy's age
    expect(cells.nth(4)).to_contain_text("arrives within")
    expect(page.locator("#locate-central")).to_contain_text(f"update (version {version_2}) is held")
    expect(page.get_by_role("row", name="copy in us")).to_contain_text("connected")
    assert unlabelled_controls(page) == []
    shot = screenshot(page, "region-view-update-on-its-way")
    text = page.locator("#locate-panel").inner_text()
    (ARTIFACTS / "region-view-update-on-its-way.txt").write_text(text + "\n")
    if os.environ.get("EDGEKV_UI_DOCS_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)

    # Looking did not count as reading at eu: no hit, miss or sketch increment there.
    assert _reads(cluster, cluster.eu.http, "eu") == eu_reads
    with cluster.rest(cluster.eu.http) as eu:
        assert eu.get(f"/namespaces/{ns_id}/values/hot").content == b"v1"  # still the old copy

    # The view looks again by itself once the hold is over: nothing is on its way any
    # more and eu no longer has version 1 (no click on "Refresh copies").
    wait_ms = (PROPAGATION_DELAY_S + 15) * 1000
    cells = page.get_by_role("row", name="copy in eu").get_by_role("cell")
    expect(page.locator("#locate-central")).not_to_contain_text("held", timeout=wait_ms)
    expect(cells.nth(4)).to_have_text("no", timeout=wait_ms)
    assert time.monotonic() - updated_at >= PROPAGATION_DELAY_S - 1.0  # it really was held
    expect(cells.nth(2)).not_to_have_text(str(version_1))
    screenshot(page, "region-view-after-propagation")
    with cluster.rest(cluster.eu.http) as eu:
        assert eu.get(f"/namespaces/{ns_id}/values/hot").content == b"v2"
