"""The dashboard tests: a real cluster (central with a propagation delay, replicas `us`
and `eu`) and Debian's headless Chromium (`/usr/bin/chromium`, installed by
`make deps-debian`) driven by Playwright's Python package. `playwright install` is
never used.

Every test fails on a JavaScript error on the page (an uncaught exception or an
unhandled rejection) and on any console error, except the browser's own
"Failed to load resource" line for an HTTP error status the test says it provokes
(`page_errors.expect_status(401)`): Chromium logs every non-2xx fetch that way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.cluster import running, start_central, start_replica
from playwright.sync_api import BrowserContext, Page, Playwright, sync_playwright
from ui_support import CHROMIUM, CHROMIUM_ARGS, PROPAGATION_DELAY_S, Cluster, PageErrors, new_account


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("ui-cluster")
    central = start_central(tmp, propagation_delay=PROPAGATION_DELAY_S)
    with running(central) as procs:
        us = start_replica(tmp, central.grpc, "us")
        procs.append(us)
        eu = start_replica(tmp, central.grpc, "eu")
        procs.append(eu)
        account, secret = new_account(central.grpc, known_at=[us.http, eu.http])
        yield Cluster(central, us, eu, account, secret)


@pytest.fixture(scope="module")
def pw(cluster: Cluster) -> Iterator[Playwright]:
    """Playwright for one test module. Its sync API leaves its event loop marked running
    in this thread until it stops: kept alive longer, every later async test would fail
    ("Cannot run the event loop while another loop is running")."""
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser(pw: Playwright, tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh Chromium profile per test (nothing carried between tests)."""
    context = pw.chromium.launch_persistent_context(
        str(tmp_path / "chromium-profile"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(10_000)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def page_errors() -> PageErrors:
    return PageErrors()


@pytest.fixture
def page(browser: BrowserContext, page_errors: PageErrors) -> Iterator[Page]:
    page = browser.pages[0] if browser.pages else browser.new_page()
    page.on("pageerror", lambda exc: page_errors.errors.append(f"page error: {exc}"))
    page.on("console", page_errors.on_console)
    yield page
    assert page_errors.errors == [], "JavaScript errors on the page"
