"""The README's "Running it for real" and docs/operations.md, run as written (issue 12).

Every shell block marked `<!-- test: NAME -->` is run by bash with only the machine
addresses, ports and the two system paths substituted (central 10.0.0.1 and replica
10.0.0.2 become 127.0.0.1 on free ports; /etc/edgekv and /var/lib a temp dir):
certificates from a private CA with the SAN the guide asks for, central over TLS with
the cluster secret from the environment, a token created over TLS, a replica serving
HTTPS, the `edgekv kv` client and curl, and the README's curl examples.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from edgekv.dev import free_port

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"<!-- test: (?P<name>[\w-]+) -->\s*```sh\n(?P<body>.*?)```", re.S)


def blocks() -> dict[str, str]:
    found: dict[str, str] = {}
    for doc in (ROOT / "README.md", ROOT / "docs" / "operations.md"):
        for m in _BLOCK.finditer(doc.read_text()):
            assert m["name"] not in found, f"two blocks named {m['name']}"
            found[m["name"]] = m["body"]
    return found


class Machines:
    """The substitutions that turn the guide's machines into loopback ports and a temp dir."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.grpc, self.central_http, self.replica_http = free_port(), free_port(), free_port()
        (tmp / "etc").mkdir()
        (tmp / "var").mkdir()

    def __call__(self, text: str) -> str:
        for old, new in (
            ("10.0.0.1:7070", f"127.0.0.1:{self.grpc}"),
            ("10.0.0.1:8080", f"127.0.0.1:{self.central_http}"),
            ("10.0.0.2:8443", f"127.0.0.1:{self.replica_http}"),
            ("10.0.0.1", "127.0.0.1"),
            ("10.0.0.2", "127.0.0.1"),
            ("/etc/edgekv", str(self.tmp / "etc")),
            ("/var/lib/", str(self.tmp / "var") + "/"),
        ):
            text = text.replace(old, new)
        return text

    def env(self) -> dict[str, str]:
        venv_bin = str(Path(sys.executable).parent)
        return {**os.environ, "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}"}


def bash(script: str, env: dict[str, str], cwd: Path, timeout: float = 90) -> str:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"{script}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    return proc.stdout


@contextlib.contextmanager
def background(script: str, env: dict[str, str], cwd: Path, log: Path):  # type: ignore[no-untyped-def]
    """A long-running block (a server) in its own process group, stopped by that group."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", script],
            env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path, verify: ssl.SSLContext | bool = True
) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1, verify=verify).status_code == 200:
                return
        time.sleep(0.1)
    pytest.fail(f"{url} not ready:\n{log.read_text()}")


def test_the_guide_for_several_machines_runs_as_written(tmp_path: Path) -> None:
    docs = blocks()
    assert {"certs", "env", "central", "token", "replica", "client", "curl"} <= set(docs)
    m = Machines(tmp_path)
    env = m.env()
    cwd = tmp_path
    assert "--cluster-secret" not in docs["central"] + docs["token"] + docs["replica"], "secrets go in env"

    bash(m(docs["certs"]), env, cwd)
    ca = str(tmp_path / "etc" / "ca.pem")
    san = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "etc" / "central.pem"), "-noout", "-ext", "subjectAltName"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert "IP Address:127.0.0.1" in san

    prelude = m(docs["env"])
    central_log, replica_log = tmp_path / "central.log", tmp_path / "replica.log"
    with background(prelude + m(docs["central"]), env, cwd, central_log) as central:
        wait_ready(f"http://127.0.0.1:{m.central_http}", central, central_log)
        out = bash(
            prelude + m(docs["token"]) + 'echo "ACCOUNT=$EDGEKV_ACCOUNT_ID TOKEN=$EDGEKV_API_TOKEN"\n',
            env,
            cwd,
        )
        account, token = re.findall(r"ACCOUNT=(\S+) TOKEN=(\S+)", out)[-1]
        assert re.fullmatch(r"[0-9a-f]{32}", account) and len(token) >= 20
        token_id = out.splitlines()[1].split()[0]  # `token list`: whole ids (header, then rows)
        assert re.fullmatch(r"[0-9a-f]{16,}", token_id), out

        with background(prelude + m(docs["replica"]), env, cwd, replica_log) as replica:
            wait_ready(
                f"https://127.0.0.1:{m.replica_http}",
                replica,
                replica_log,
                verify=ssl.create_default_context(cafile=ca),
            )
            client_env = {**env, "EDGEKV_ACCOUNT_ID": account, "EDGEKV_API_TOKEN": token}
            out = bash(m(docs["client"]), client_env, cwd)
            assert "hello\n" in out and '"title":"my-app"' in out.replace(" ", ""), out

            curl_env = {
                **client_env,
                "EDGEKV_ENDPOINT": f"https://127.0.0.1:{m.replica_http}",
                "SSL_CERT_FILE": ca,
            }
            curl = bash(m(docs["curl"]).replace("curl -sS", f"curl -sS --cacert {ca}"), curl_env, cwd)
            assert (
                "hello" in curl and '"success":true' in curl.replace(" ", "") and "HTTP/1.1 412" not in curl
            )
        assert "TLS" in central_log.read_text()
    assert "central stopped at seq" in central_log.read_text()


def test_every_alert_has_a_runbook_line_and_every_metric_is_documented() -> None:
    import yaml

    guide = (ROOT / "docs" / "operations.md").read_text()
    rules = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                assert f"| `{rule['alert']}` |" in guide, f"no runbook line for {rule['alert']}"
                assert "operations.md" in rule["annotations"].get("runbook_url", ""), rule["alert"]
    from kvcore.metrics import Metrics

    for family in Metrics("x").registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        assert name in guide or family.name in guide, f"metric {name} is not in docs/operations.md"
    assert "/healthz" in guide and "/readyz" in guide
