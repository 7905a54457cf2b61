"""Starting edgekv's processes, for `edgekv dev`, the tests and the benchmarks alike.

    central = Process("central", central_argv(data_dir=d, grpc_addr=g, http_addr=h),
                      tmp / "central.log", http=f"http://{h}", grpc=g).start()
    wait_ready([central])          # GET {http}/readyz until 200, one deadline for all
    ...
    central.stop()                 # SIGTERM, then SIGKILL after a timeout; by its own pid

A `Process` is a spec (argv, extra environment, log file, the URLs it serves) plus the
running child. Its output goes to its log file, appended to across restarts, so
`edgekv dev`'s supervisor can restart it in place (`edgekv.supervise.Supervised`).
Every wait is bounded. Processes are only ever signalled through their own pid.

Errors: `ProcessExited` (a `RuntimeError`) when a child exits while we wait for it,
`TimeoutError` when it is not ready in time; both carry the tail of its log.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# How to run the `edgekv` command: this interpreter, this installation.
EDGEKV: list[str] = [sys.executable, "-m", "edgekv"]
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.05
LOG_TAIL_CHARS = 4000


class ProcessExited(RuntimeError):
    """A child exited while we waited for it to become ready."""


_HANDED_OUT: collections.deque[int] = collections.deque(maxlen=256)


def free_port() -> int:
    """A TCP port free on loopback right now, and not one of the last 256 this process
    handed out (call it from one thread: tests, `edgekv dev` and the bench do). The OS
    picks it; another process may take it before ours binds, which is rare: only
    another bind(0) in that window can (Linux gives bind(0) odd ports, connect() even
    ones). Without the memory, two calls before the first port is bound (a central's
    gRPC and HTTP ports) got the same port about once in 7,500 pairs (the OS draws it
    at random from the ~14,000 free odd ports)."""
    for _ in range(64):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((LOOPBACK, 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.append(port)
            return port
    raise RuntimeError("no free loopback port that was not handed out already")


def free_addr() -> str:
    """'127.0.0.1:PORT' with a free port."""
    return f"{LOOPBACK}:{free_port()}"


def listening(addr: str) -> bool:
    """Whether something accepts TCP connections on HOST:PORT."""
    host, _, port = addr.rpartition(":")
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, int(port))) == 0


def central_argv(
    *,
    data_dir: Path,
    grpc_addr: str,
    http_addr: str,
    propagation_delay_s: float = 60.0,
    store: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`edgekv central ...`; `store` ('rocksdb' or a postgresql:// URL) when given. A URL
    with a password belongs in the child's environment instead (`EDGEKV_STORE`, as
    `edgekv dev` passes it): a command line is visible to every user."""
    argv = [*EDGEKV, "central", *(["--store", store] if store is not None else [])]
    argv += ["--data-dir", str(data_dir), "--grpc-addr", grpc_addr, "--http-addr", http_addr]
    return [*argv, "--propagation-delay", str(propagation_delay_s), *extra]


def replica_argv(
    *,
    region: str,
    central: str,
    data_dir: Path,
    http_addr: str,
    cache_bytes: str | int = "64MiB",
    workerd_addr: str | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """`edgekv replica ...`; `central` is HOST:PORT, or several comma-separated (failover order)."""
    argv = [*EDGEKV, "replica", "--region", region, "--central", central, "--data-dir", str(data_dir)]
    argv += ["--http-addr", http_addr, "--cache-bytes", str(cache_bytes)]
    return [*argv, *(["--workerd-addr", workerd_addr] if workerd_addr else []), *extra]


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the process that started it dies, even by SIGKILL (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Process:
    """One child process. `http` is its base URL ("" if it serves none), `grpc` its gRPC
    HOST:PORT (central), `env` its whole environment (None: ours), `cwd` its working
    directory (None: ours). With `own_session`, the child runs in a session of its own
    (a Ctrl-C at the terminal reaches only us, and we stop children in order) and is
    sent SIGTERM if we die."""

    name: str
    args: list[str]
    log_path: Path
    http: str = ""
    data_dir: Path | None = None
    grpc: str = ""
    env: dict[str, str] | None = None
    own_session: bool = False
    cwd: Path | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_code(self) -> int | None:
        """None while running (or never started), else its exit code (-N: killed by signal N)."""
        return None if self.proc is None else self.proc.poll()

    def start(self) -> Process:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=self.own_session,
                preexec_fn=_die_with_parent if self.own_session else None,
                cwd=self.cwd,
            )
        return self

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM (graceful), SIGKILL after `timeout_s`; its exit code (None: never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        return self.proc.returncode

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)

    def note(self, line: str) -> None:
        """Append one line of ours to its log (e.g. the supervisor's restart marks)."""
        with self.log_path.open("ab") as log:
            log.write(line.encode() + b"\n")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def check_running(self) -> None:
        """Raises `ProcessExited` (with its log's tail) if it has exited."""
        code = self.exit_code()
        if code is not None:
            raise ProcessExited(f"{self.name} exited with {code}:\n{self.log()[-LOG_TAIL_CHARS:]}")


def _not_ready(pending: Sequence[Process], timeout_s: float, last: str) -> TimeoutError:
    names = ", ".join(f"{p.name} ({p.http})" for p in pending)
    tail = pending[0].log()[-LOG_TAIL_CHARS:]
    return TimeoutError(f"not ready after {timeout_s:g}s: {names}: {last}\n{tail}")


def wait_ready(procs: Sequence[Process], timeout_s: float = READY_TIMEOUT_S, path: str = "/readyz") -> None:
    """GET `{http}{path}` of each process until it answers 200, all within one deadline."""
    deadline = time.monotonic() + timeout_s
    pending, last = list(procs), ""
    with httpx.Client(timeout=1.0) as client:
        while pending:
            for p in list(pending):
                p.check_running()
                try:
                    r = client.get(p.http + path)
                    if r.status_code == 200:
                        pending.remove(p)
                    last = r.text[:200]
                except httpx.HTTPError as exc:
                    last = repr(exc)
            if pending and time.monotonic() > deadline:
                raise _not_ready(pending, timeout_s, last)
            if pending:
                time.sleep(POLL_S)


async def wait_ready_async(
    procs: Sequence[Process], timeout_s: float = READY_TIMEOUT_S, path: str = "/readyz"
) -> None:
    """`wait_ready` on a worker thread, so the event loop keeps running meanwhile (e.g. an
    in-process TCP proxy the processes are reached through)."""
    await asyncio.to_thread(wait_ready, procs, timeout_s, path)


def wait_listening(proc: Process, addrs: Sequence[str], timeout_s: float = READY_TIMEOUT_S) -> None:
    """Until every HOST:PORT in `addrs` accepts TCP connections (for servers without /readyz)."""
    deadline = time.monotonic() + timeout_s
    pending = list(addrs)
    while pending:
        proc.check_running()
        pending = [a for a in pending if not listening(a)]
        if pending and time.monotonic() > deadline:
            tail = proc.log()[-LOG_TAIL_CHARS:]
            raise TimeoutError(f"{proc.name} not listening on {pending} after {timeout_s:g}s:\n{tail}")
        if pending:
            time.sleep(POLL_S)


def stop_all(procs: Sequence[Process]) -> None:
    """Stop each in order; one that fails to stop does not keep the others running."""
    for p in procs:
        with contextlib.suppress(Exception):
            p.stop()
