"""edgekv.launch, the process launcher of `edgekv dev`, the tests and the bench: readiness,
errors that carry the child's log, and stopping by pid (SIGTERM, then SIGKILL)."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from edgekv.launch import (
    EDGEKV,
    Process,
    ProcessExited,
    central_argv,
    free_addr,
    free_port,
    replica_argv,
    wait_listening,
    wait_ready,
)


def _python(tmp: Path, name: str, code: str, **kw: object) -> Process:
    return Process(name, [sys.executable, "-c", code], tmp / f"{name}.log", **kw)  # type: ignore[arg-type]


def test_a_child_that_exits_while_awaited_raises_with_its_log(tmp_path: Path) -> None:
    code = "print('bad --flag', flush=True); raise SystemExit(3)"
    p = _python(tmp_path, "boom", code, http=f"http://{free_addr()}")
    with pytest.raises(ProcessExited, match="boom exited with 3") as err:
        wait_ready([p.start()], timeout_s=20)
    assert "bad --flag" in str(err.value)
    assert p.exit_code() == 3 and not p.alive


def test_a_server_is_ready_once_it_answers_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    p = Process("files", argv, tmp_path / "files.log", f"http://127.0.0.1:{port}", cwd=tmp_path).start()
    try:
        wait_ready([p], timeout_s=20, path="/")
        wait_listening(p, [f"127.0.0.1:{port}"], timeout_s=5)
        assert p.alive
    finally:
        code = p.stop()
    assert code == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True)"
    p = _python(tmp_path, "stubborn", code + "; time.sleep(60)").start()
    try:
        deadline = time.monotonic() + 20
        while "up" not in p.log():
            assert time.monotonic() < deadline and p.alive
            time.sleep(0.05)
        t0 = time.monotonic()
        assert p.stop(timeout_s=0.5) == -signal.SIGKILL
    finally:
        p.kill9()
    assert time.monotonic() - t0 < 10


def test_not_ready_in_time_is_a_timeout_naming_the_process(tmp_path: Path) -> None:
    p = _python(tmp_path, "silent", "import time; time.sleep(60)", http=f"http://{free_addr()}").start()
    try:
        with pytest.raises(TimeoutError, match=r"not ready after 0\.5s: silent"):
            wait_ready([p], timeout_s=0.5)
        assert p.alive
    finally:
        p.stop()


def test_argv_of_central_and_replica() -> None:
    d, r_dir = Path("/d"), Path("/r")
    c = central_argv(data_dir=d, grpc_addr="a:1", http_addr="a:2", propagation_delay_s=2, extra=["-x"])
    assert c[:3] == EDGEKV and c[3:] == [
        "central", "--data-dir", "/d", "--grpc-addr", "a:1", "--http-addr", "a:2",
        "--propagation-delay", "2", "-x",
    ]  # fmt: skip
    stored = central_argv(data_dir=d, grpc_addr="a:1", http_addr="a:2", store="rocksdb")
    assert stored[3:6] == ["central", "--store", "rocksdb"]
    r = replica_argv(region="eu", central="a:1,b:1", data_dir=r_dir, http_addr="a:3", workerd_addr="a:4")
    assert r[3:] == [
        "replica", "--region", "eu", "--central", "a:1,b:1", "--data-dir", "/r", "--http-addr", "a:3",
        "--cache-bytes", "64MiB", "--workerd-addr", "a:4",
    ]  # fmt: skip
    assert "--workerd-addr" not in replica_argv(region="eu", central="a:1", data_dir=r_dir, http_addr="a:3")


def test_free_ports_handed_out_before_any_is_bound_are_all_different() -> None:
    # A central's gRPC and HTTP ports, then its replicas', are drawn before any child
    # binds them; the OS alone returned the same one twice about once in 14,000 pairs,
    # so 256 draws from it (its free odd ports) repeat one almost surely.
    ports = [free_port() for _ in range(256)]
    assert len(set(ports)) == len(ports)
    assert all(1024 < p < 65536 for p in ports)
