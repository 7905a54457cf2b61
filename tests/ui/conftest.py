"""The dashboard tests: a real cluster (central with a propagation delay, replicas `us`
and `eu`) and Debian's headless Chromium (`/usr/bin/chromium`, installed by
`make deps-debian`) driven by Playwright's Python package. `playwright install` is
never used.

Every test fails on a JavaScript error on the page (an uncaught exception or an
unhandled rejection) and on any console error, except the browser's own
"Failed to load resource" line for an HTTP error status the test says it provokes
(`page_errors.expect_status(401)`): Chromium logs every non-2xx fetch that way.

Screenshots are kept in `$EDGEKV_UI_ARTIFACTS` (default `tests/artifacts/ui`, gitignored).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from helpers.cluster import Proc, create_account, running, start_central, start_replica
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PROPAGATION_DELAY_S = 6.0
ARTIFACTS = Path(os.environ.get("EDGEKV_UI_ARTIFACTS") or Path(__file__).parents[1] / "artifacts" / "ui")
_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")


@dataclass
class Cluster:
    central: Proc
    us: Proc
    eu: Proc
    account: str
    secret: str

    def rest(self, base: str) -> httpx.Client:
        """A REST client of `base`'s KV API for the account: paths start "/namespaces"."""
        return httpx.Client(
            base_url=f"{base}/client/v4/accounts/{self.account}/storage/kv",
            headers={"authorization": f"Bearer {self.secret}"},
            timeout=10.0,
        )

    def create_namespace(self, title_prefix: str) -> str:
        with self.rest(self.central.http) as rest:
            r = rest.post("/namespaces", json={"title": f"{title_prefix}-{secrets.token_hex(3)}"})
            r.raise_for_status()
            return str(r.json()["result"]["id"])


def new_account(central_grpc: str) -> tuple[str, str]:
    """`create_account` run in a thread of its own: Playwright's sync API leaves its event
    loop marked running in this thread, where `asyncio.run` would refuse to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create_account(central_grpc)).result()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("ui-cluster")
    central = start_central(tmp, propagation_delay=PROPAGATION_DELAY_S)
    with running(central) as procs:
        us = start_replica(tmp, central.grpc, "us")
        procs.append(us)
        eu = start_replica(tmp, central.grpc, "eu")
        procs.append(eu)
        account, secret = new_account(central.grpc)
        yield Cluster(central, us, eu, account, secret)


@pytest.fixture(scope="session")
def pw(cluster: Cluster) -> Iterator[Playwright]:
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


@dataclass
class PageErrors:
    errors: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def expect_status(self, *statuses: int) -> None:
        """The test provokes these HTTP error statuses: the browser's log line for them is fine."""
        self.expected_statuses.update(statuses)

    def on_console(self, msg: ConsoleMessage) -> None:
        if msg.type != "error":
            return
        m = _FAILED_LOAD.search(msg.text)
        if m and int(m.group(1)) in self.expected_statuses:
            return
        self.errors.append(f"console error: {msg.text} ({msg.location})")


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


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot among the test artifacts; returns its path."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Page, base: str, secret: str) -> None:
    page.goto(f"{base}/ui")
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Namespaces").wait_for()


_UNLABELLED_JS = """() => [...document.querySelectorAll("button, input, textarea, select")]
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                 && !(e.tagName === "BUTTON" && e.textContent.trim()))
  .map((e) => e.outerHTML)"""


def unlabelled_controls(page: Page) -> list[str]:
    """Every control on the page (shown or not) without an accessible label."""
    return list(page.evaluate(_UNLABELLED_JS))
