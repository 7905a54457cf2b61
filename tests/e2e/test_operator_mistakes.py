"""Issue 12: every operator mistake at start is one line naming the cause, no traceback,
a non-zero exit; and a second central on a taken port never joins the first (no
silent split brain through SO_REUSEPORT)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers.cluster import EDGEKV, Proc, start_central, start_replica, stop_all

from edgekv.dev import free_port
from kvcore.errors import Unavailable
from kvcore.model import Permission, WriteItem
from kvcore.rpc.client import CentralClient
from kvcore.store.ops import PutOp


def run(*args: str, timeout: float = 60) -> tuple[int, list[str]]:
    """Exit code and the non-empty lines of stdout + stderr of `edgekv ARGS`."""
    proc = subprocess.run([*EDGEKV, *args], capture_output=True, text=True, timeout=timeout, check=False)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def assert_one_line(rc: int, lines: list[str], *needles: str) -> None:
    assert rc != 0, lines
    assert len(lines) == 1, "\n".join(lines)
    assert "Traceback" not in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def central_args(data_dir: Path, grpc: str, http: str, *extra: str) -> list[str]:
    return ["central", "--data-dir", str(data_dir), "--grpc-addr", grpc, "--http-addr", http, *extra]


async def test_second_central_on_a_taken_grpc_port_exits_and_the_first_keeps_serving(tmp_path: Path) -> None:
    first = start_central(tmp_path)
    try:
        async with CentralClient(first.grpc) as client:
            account = "a" * 32
            await client.create_token(account, Permission.WRITE)
        rc, lines = run(*central_args(tmp_path / "second", first.grpc, f"127.0.0.1:{free_port()}"))
        assert_one_line(rc, lines, "--grpc-addr", first.grpc, "already in use")
        # Every connection still reaches the first central (its store has the token).
        for _ in range(12):
            async with CentralClient(first.grpc) as client:
                assert len(await client.list_tokens(account)) == 1
        assert httpx.get(f"{first.http}/readyz").status_code == 200
    finally:
        first.stop()


def test_http_port_in_use_is_one_line_without_a_start_line(tmp_path: Path) -> None:
    first = start_central(tmp_path)
    try:
        http = first.http.removeprefix("http://")
        rc, lines = run(*central_args(tmp_path / "second", f"127.0.0.1:{free_port()}", http))
        assert_one_line(rc, lines, "--http-addr", http, "already in use")
        rc, lines = run(
            "replica", "--region", "eu", "--central", first.grpc,
            "--data-dir", str(tmp_path / "r"), "--http-addr", http,
        )  # fmt: skip
        assert_one_line(rc, lines, "--http-addr", "already in use")
    finally:
        first.stop()


def test_data_dir_in_use(tmp_path: Path) -> None:
    first = start_central(tmp_path)
    try:
        rc, lines = run(*central_args(first.data_dir, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"))
        assert_one_line(rc, lines, "another central is using this data dir", str(first.data_dir))
    finally:
        first.stop()


def test_replica_data_dir_in_use(tmp_path: Path) -> None:
    central = start_central(tmp_path)
    procs: list[Proc] = [central]
    try:
        eu = start_replica(tmp_path, central.grpc, "eu")
        procs.append(eu)
        rc, lines = run(
            "replica", "--region", "eu", "--central", central.grpc,
            "--data-dir", str(eu.data_dir), "--http-addr", f"127.0.0.1:{free_port()}",
        )  # fmt: skip
        assert_one_line(rc, lines, "another replica is using this data dir")
    finally:
        stop_all(list(reversed(procs)))


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_unusable_data_dir(tmp_path: Path, kind: str) -> None:
    if kind == "file":
        (tmp_path / "plain").write_text("not a directory")
        data_dir = tmp_path / "plain" / "store"
    else:
        if sys.platform != "linux" or __import__("os").geteuid() == 0:
            data_dir = Path("/proc/edgekv-cannot-be-here")  # unwritable even for root
        else:
            (tmp_path / "ro").mkdir(mode=0o500)
            data_dir = tmp_path / "ro" / "store"
    rc, lines = run(*central_args(data_dir, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"))
    assert_one_line(rc, lines, "--data-dir", "cannot use")


def test_missing_tls_files(tmp_path: Path) -> None:
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    missing = str(tmp_path / "nope.pem")
    rc, lines = run(*central_args(tmp_path / "c", grpc, http, "--tls-cert", missing, "--tls-key", missing))
    assert_one_line(rc, lines, "--tls-cert", "no such file", missing)
    rc, lines = run(
        "replica", "--region", "eu", "--central", grpc, "--data-dir", str(tmp_path / "r"),
        "--http-addr", http, "--tls-ca", missing,
    )  # fmt: skip
    assert_one_line(rc, lines, "--tls-ca", "no such file")


def test_every_missing_required_option_at_once() -> None:
    rc, lines = run("replica")
    text = "\n".join(lines)
    assert rc == 2 and "Traceback" not in text
    for flag in ("--region", "--central", "--data-dir"):
        assert flag in text, text


def self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp / f"{name}.pem", tmp / f"{name}-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-days", "1", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def test_tls_key_not_matching_the_certificate(tmp_path: Path) -> None:
    cert, _ = self_signed(tmp_path, "central")
    _, other_key = self_signed(tmp_path, "other")
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    args = central_args(tmp_path / "c", grpc, http, "--tls-cert", str(cert), "--tls-key", str(other_key))
    rc, lines = run(*args)
    # The cause, not "cannot listen" (grpc only fails at bind time, blaming the port).
    assert_one_line(rc, lines, "--tls-cert/--tls-key", str(cert))
    assert "cannot listen" not in lines[0]


async def _streamed_put_says_pass_tls_ca(target: str) -> None:
    async with CentralClient(target) as client:
        with pytest.raises(Unavailable) as caught:
            await asyncio.wait_for(client.submit(PutOp("a" * 32, "b" * 32, WriteItem("k", b"v"))), 30)
    assert "TLS handshake failed: pass --tls-ca" in caught.value.detail, caught.value.detail


def test_tls_mismatch_says_pass_tls_ca(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path, "central")
    other, _ = self_signed(tmp_path, "other")
    central = start_central(tmp_path, extra=("--tls-cert", str(cert), "--tls-key", str(key)))
    try:
        rc, lines = run("token", "list", "--central", central.grpc)
        assert_one_line(rc, lines, "TLS handshake failed: pass --tls-ca")
        rc, lines = run("token", "list", "--central", central.grpc, "--tls-ca", str(other))
        assert_one_line(rc, lines, "TLS handshake failed: central's certificate is not signed by --tls-ca")
        rc, lines = run("token", "list", "--central", central.grpc, "--tls-ca", str(cert))
        assert rc == 0, lines
        # A write on the client's write stream (its default) says it too.
        asyncio.run(_streamed_put_says_pass_tls_ca(central.grpc))
        # A replica started without --tls-ca says the same in its log, and is not ready.
        eu = start_replica(tmp_path, central.grpc, "eu", wait=False)
        try:
            deadline = time.monotonic() + 20
            while "TLS handshake failed: pass --tls-ca" not in eu.log():
                assert time.monotonic() < deadline, eu.log()
                time.sleep(0.2)
            assert httpx.get(f"{eu.http}/readyz").status_code == 503
        finally:
            eu.stop()
    finally:
        central.stop()
