"""The npm tools of the compatibility tests, installed by `make node-deps` into
tests/compat/node_modules (pinned by tests/compat/package-lock.json): wrangler, run as
a real CLI against our processes, and Miniflare (see `miniflare.py`).

Nothing here skips: a missing install is a failure that says which make target fixes it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

COMPAT = Path(__file__).resolve().parents[2] / "compat"
NODE_MODULES = COMPAT / "node_modules"
WRANGLER_JS = NODE_MODULES / "wrangler" / "bin" / "wrangler.js"
MINIFLARE_JS = NODE_MODULES / "miniflare" / "dist" / "src" / "index.js"


def node() -> str:
    found = shutil.which("node")
    assert found, "node is not installed: run `make node-deps`"
    return found


def require(path: Path) -> Path:
    assert path.exists(), f"{path} is missing: run `make node-deps` (npm ci in tests/compat)"
    return path


def wrangler(
    home: Path, base_url: str, token: str, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `wrangler ARGS` against `base_url` (…/client/v4) with only an API token: no
    account id, non-interactive (`CI=true`), no telemetry, no update check, HOME isolated."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDFLARE_", "WRANGLER_"))}
    env.update(
        HOME=str(home),
        CI="true",
        NO_COLOR="1",
        FORCE_COLOR="0",
        CLOUDFLARE_API_TOKEN=token,
        CLOUDFLARE_API_BASE_URL=base_url,
        WRANGLER_SEND_METRICS="false",
        WRANGLER_SEND_ERROR_REPORTS="false",
        WRANGLER_HIDE_BANNER="true",  # the banner is what runs the npm update check
    )
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [node(), str(require(WRANGLER_JS)), *args],
        cwd=home,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def wrangler_json(home: Path, base_url: str, token: str, *args: str) -> Any:
    """The JSON document a wrangler command prints on stdout (exit 0 asserted)."""
    p = wrangler(home, base_url, token, *args)
    assert p.returncode == 0, f"wrangler {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    start = min(i for i in (p.stdout.find("["), p.stdout.find("{")) if i >= 0)
    return json.loads(p.stdout[start:])
