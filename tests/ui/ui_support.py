"""Helpers of the dashboard tests (fixtures are in conftest.py): the cluster record,
the page-error collector, screenshots, sign-in and the accessible-label check.

Screenshots are kept in `$EDGEKV_UI_ARTIFACTS` (default `tests/artifacts/ui`, gitignored).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from helpers.cluster import Proc, create_account
from playwright.sync_api import ConsoleMessage, Page

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


def new_account(central_grpc: str, known_at: Sequence[str] = ()) -> tuple[str, str]:
    """`create_account` (which waits until the replicas at `known_at` accept the token) run
    in a thread of its own: Playwright's sync API leaves its event loop marked running in
    this thread, where `asyncio.run` would refuse to start."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, create_account(central_grpc, known_at=known_at)).result()


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
