"""The dashboard in headless Chromium against a real cluster: sign-in (and a bad
token), namespaces, browsing and editing keys. The region view is in
test_dashboard_regions.py. Each test signs in on a fresh browser profile.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from playwright.sync_api import Page, expect
from ui_support import Cluster, PageErrors, screenshot, sign_in, unlabelled_controls

pytestmark = pytest.mark.timeout(120)

BAD = "not-a-token-of-this-cluster-0123456789"
MARKUP_KEY = '<img src=x onerror="window.__xss=1"><b>bold</b>'


def test_bad_token_shows_the_apis_message_and_a_good_one_lives_only_in_session_storage(
    cluster: Cluster, page: Page, page_errors: PageErrors
) -> None:
    page_errors.expect_status(401)
    urls: list[str] = []
    page.on("request", lambda req: urls.append(req.url))
    page.goto(f"{cluster.central.http}/ui")
    page.get_by_label("API token").fill(BAD)
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_be_visible()
    r = httpx.get(
        f"{cluster.central.http}/client/v4/user/tokens/verify", headers={"authorization": f"Bearer {BAD}"}
    )
    assert r.status_code == 401
    api_error = r.json()["errors"][0]
    expect(alert).to_have_text(f"{api_error['message']} (code {api_error['code']})")  # the API's own words
    expect(page.get_by_role("heading", name="Namespaces")).to_be_hidden()
    assert page.evaluate("sessionStorage.length") == 0
    screenshot(page, "sign-in-bad-token")

    page.get_by_label("API token").fill(cluster.secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Namespaces")).to_be_visible()
    expect(page.locator("#whoami")).to_contain_text(cluster.account)
    expect(alert).to_be_hidden()
    assert page.evaluate("Object.values(sessionStorage)") == [cluster.secret]
    assert page.evaluate("Object.values(localStorage)") == []
    assert page.context.cookies() == []
    assert page.evaluate("document.cookie") == ""
    assert urls and not [u for u in urls if cluster.secret in u]
    screenshot(page, "signed-in")

    # A reload keeps the session (same tab); signing out forgets the token.
    page.reload()
    expect(page.get_by_role("heading", name="Namespaces")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API token")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_namespaces_create_rename_delete_with_confirmation(cluster: Cluster, page: Page) -> None:
    sign_in(page, cluster.central.http, cluster.secret)
    title = f"ui-ns-{int(time.time() * 1000)}"
    page.get_by_label("Title", exact=True).fill(title)
    page.get_by_role("button", name="Create namespace").click()
    opener = page.get_by_role("button", name=f"Open namespace {title}", exact=True)
    expect(opener).to_be_visible()
    with cluster.rest(cluster.central.http) as rest:
        created = [
            n
            for n in rest.get("/namespaces", params={"per_page": 1000}).json()["result"]
            if n["title"] == title
        ]
    assert len(created) == 1
    ns_id = created[0]["id"]
    expect(page.locator("#ns-list")).to_contain_text(ns_id)  # title and id are listed

    renamed = f"{title}-renamed"
    page.get_by_role("button", name=f"Rename namespace {title}", exact=True).click()
    page.get_by_label("New title").fill(renamed)
    page.get_by_role("button", name="Rename", exact=True).click()
    expect(page.get_by_role("button", name=f"Open namespace {renamed}", exact=True)).to_be_visible()
    with cluster.rest(cluster.central.http) as rest:
        assert rest.get(f"/namespaces/{ns_id}").json()["result"]["title"] == renamed

    # Deleting asks first; "Cancel" keeps the namespace.
    page.get_by_role("button", name=f"Delete namespace {renamed}", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Delete namespace “{renamed}”")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("button", name=f"Open namespace {renamed}", exact=True)).to_be_visible()
    with cluster.rest(cluster.central.http) as rest:
        assert rest.get(f"/namespaces/{ns_id}").status_code == 200

    page.get_by_role("button", name=f"Delete namespace {renamed}", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("button", name=f"Open namespace {renamed}", exact=True)).to_have_count(0)
    with cluster.rest(cluster.central.http) as rest:
        assert rest.get(f"/namespaces/{ns_id}").status_code == 404


def test_keys_browse_page_filter_create_edit_delete_on_a_replica(
    cluster: Cluster, page: Page, page_errors: PageErrors
) -> None:
    """Served by the `eu` replica: /ui works the same on every process."""
    ns_id = cluster.create_namespace("ui-keys")
    seed = [{"key": f"item-{i:02d}", "value": f"value {i}"} for i in range(25)]
    seed.append({"key": MARKUP_KEY, "value": "<i>not markup either</i>"})
    with cluster.rest(cluster.central.http) as rest:
        assert rest.put(f"/namespaces/{ns_id}/bulk", json=seed).status_code == 200
        r = rest.put(
            f"/namespaces/{ns_id}/values/blob",
            files={"value": bytes(range(250, 256)), "metadata": (None, json.dumps({"kind": "binary"}))},
        )
        assert r.status_code == 200, r.text
        title = rest.get(f"/namespaces/{ns_id}").json()["result"]["title"]

    sign_in(page, cluster.eu.http, cluster.secret)
    page.get_by_role("button", name=f"Open namespace {title}", exact=True).click()
    keys = page.locator("#keys-table tbody tr")
    # Listing is by name: the markup key, blob, item-00 .. item-17 on the first page of 20.
    expect(keys).to_have_count(20)
    expect(page.get_by_role("button", name="Open key blob")).to_be_visible()
    expect(page.get_by_role("button", name=f"Open key {MARKUP_KEY}")).to_have_text(
        MARKUP_KEY
    )  # text, not HTML
    expect(page.locator("#keys-table img, #keys-table b")).to_have_count(0)
    assert page.evaluate("window.__xss") is None
    page.get_by_role("button", name="Next page").click()
    expect(keys).to_have_count(7)
    expect(page.get_by_role("button", name="Open key item-24")).to_be_visible()
    expect(page.get_by_role("button", name="Next page")).to_be_hidden()

    page.get_by_label("Prefix").fill("item-1")
    page.get_by_role("button", name="Filter").click()
    expect(keys).to_have_count(10)
    expect(page.get_by_role("button", name="Open key item-10")).to_be_visible()
    expect(page.get_by_role("button", name="Open key item-20")).to_have_count(0)
    screenshot(page, "keys-filtered")

    # A binary value is shown as hex, with its metadata and ETag.
    page.get_by_label("Prefix").fill("")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("button", name="Open key blob").click()
    expect(page.locator("#key-value")).to_have_text("fa fb fc fd fe ff")
    expect(page.locator("#key-encoding")).to_contain_text("binary")
    expect(page.locator("#key-metadata")).to_contain_text('"kind": "binary"')
    expect(page.locator("#key-expiration")).to_have_text("never")
    expect(page.locator("#key-etag")).to_have_text(f'"{_etag(cluster, ns_id, "blob")}"')

    # Editing a binary value keeps it binary: the editor holds hex.
    page.get_by_role("button", name="Edit").click()
    expect(page.get_by_label("Value is hex (binary)")).to_be_checked()
    expect(page.get_by_label("Value", exact=True)).to_have_value("fa fb fc fd fe ff")
    page.get_by_label("Value", exact=True).fill("00 01 fe ff")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#key-value")).to_have_text("00 01 fe ff")
    with cluster.rest(cluster.central.http) as rest:
        assert rest.get(f"/namespaces/{ns_id}/values/blob").content == bytes([0, 1, 254, 255])
        assert rest.get(f"/namespaces/{ns_id}/metadata/blob").json()["result"] == {"kind": "binary"}

    # A new key; the API's own error message for a TTL below its minimum, then a good one.
    page_errors.expect_status(400)
    page.get_by_role("button", name="New key").click()
    page.get_by_label("Key", exact=True).fill("greeting")
    page.get_by_label("Value", exact=True).fill("hello")
    page.get_by_label("Metadata (JSON)").fill('{"lang": "en"}')
    page.get_by_label("TTL (seconds)").fill("30")
    page.get_by_role("button", name="Save").click()
    with cluster.rest(cluster.eu.http) as rest:  # what the API itself says to the same PUT
        r = rest.put(
            f"/namespaces/{ns_id}/values/greeting", params={"expiration_ttl": 30}, files={"value": b"hello"}
        )
        assert r.status_code == 400
        api_error = r.json()["errors"][0]
    assert "expiration_ttl" in api_error["message"]
    expect(page.get_by_role("alert")).to_have_text(f"{api_error['message']} (code {api_error['code']})")
    screenshot(page, "key-editor-api-error")
    page.get_by_label("TTL (seconds)").fill("3600")
    before = int(time.time())
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#key-value")).to_have_text("hello")
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.locator("#key-metadata")).to_contain_text('"lang": "en"')
    first_etag = _etag(cluster, ns_id, "greeting")
    expect(page.locator("#key-etag")).to_have_text(f'"{first_etag}"')
    expiration = int(page.locator("#key-expiration").inner_text().split("epoch ")[1].rstrip(")"))
    assert before + 3600 - 5 <= expiration <= int(time.time()) + 3600 + 5
    screenshot(page, "key-view")

    # Edit: the editor is filled with the current value and metadata.
    page.get_by_role("button", name="Edit").click()
    assert unlabelled_controls(page) == []  # the static page and every control built so far
    expect(page.get_by_label("Value", exact=True)).to_have_value("hello")
    expect(page.get_by_label("Metadata (JSON)")).to_have_value('{\n  "lang": "en"\n}')
    page.get_by_label("Value", exact=True).fill("hello again")
    page.get_by_label("Metadata (JSON)").fill('{"lang": "en-GB"}')
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#key-value")).to_have_text("hello again")
    expect(page.locator("#key-metadata")).to_contain_text("en-GB")
    expect(page.locator("#key-etag")).not_to_have_text(f'"{first_etag}"')
    with cluster.rest(cluster.central.http) as rest:
        assert rest.get(f"/namespaces/{ns_id}/values/greeting").content == b"hello again"
        assert rest.get(f"/namespaces/{ns_id}/metadata/greeting").json()["result"] == {"lang": "en-GB"}

    # Delete asks first.
    page.get_by_role("button", name="Delete key").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete key “greeting”")
    dialog.get_by_role("button", name="Delete", exact=True).click()
    expect(page.locator("#key-panel")).to_be_hidden()
    expect(page.get_by_role("button", name="Open key greeting")).to_have_count(0)
    with cluster.rest(cluster.central.http) as rest:
        assert rest.get(f"/namespaces/{ns_id}/values/greeting").status_code == 404


def _etag(cluster: Cluster, ns_id: str, key: str) -> int:
    with cluster.rest(cluster.central.http) as rest:
        r = rest.get(f"/namespaces/{ns_id}/values/{key}")
        assert r.status_code == 200
        return int(r.headers["etag"].strip('"'))
