"""Shared bits of `make bench`: processes (`edgekv.launch`, the launcher `edgekv dev` and
the tests use, and the cluster helpers of tests/lib/helpers), RSS, percentiles, time budgets
and py-spy profiles of a server under load."""

from __future__ import annotations

import collections
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_TESTS = str(ROOT / "tests" / "lib")  # helpers.* (not tests/: its kvcore/ would shadow kvcore)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from helpers.cluster import KV, Proc, create_account, metric_value, running, start_central, start_replica  # noqa: E402

from edgekv.launch import free_port, stop_all, wait_listening, wait_ready  # noqa: E402

__all__ = [
    "KV",
    "Proc",
    "create_account",
    "free_port",
    "metric_value",
    "running",
    "start_central",
    "start_replica",
    "stop_all",
    "wait_listening",
    "wait_ready",
]


def rss_mib(pid: int) -> float:
    """VmRSS of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_s(pid: int, *, main_thread: bool = False) -> float:
    """CPU seconds (user + system) a process has used so far: all its threads, or with
    `main_thread` only the thread that runs its event loop (its main thread, whose
    thread id is the pid). From /proc (proc(5): utime and stime of `stat`)."""
    path = f"/proc/{pid}/task/{pid}/stat" if main_thread else f"/proc/{pid}/stat"
    f = Path(path).read_text()
    fields = f[f.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank) of `values`."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(pct(ms, 50), 2),
        "p99_ms": round(pct(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 2) if ms else float("nan"),
    }


class Budget:
    """A section's time bound: loops check `left()` and stop early."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.start = time.monotonic()

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.start)

    def over(self) -> bool:
        return self.left() <= 0


def py_spy() -> str | None:
    cand = Path(sys.executable).parent / "py-spy"
    if cand.exists():
        return str(cand)
    return shutil.which("py-spy")


def profile(pid: int, seconds: float, out_dir: Path, name: str, top: int = 12) -> dict[str, Any]:
    """Sample `pid` with py-spy for `seconds` (call while load runs); the functions that
    take the most samples, by own time and including callees (GIL-holding samples
    only: the Python work that limits an asyncio server)."""
    exe = py_spy()
    if exe is None:
        return {"error": "py-spy not installed"}
    raw = out_dir / f"{name}.collapsed"
    cmd = [
        exe,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, int(seconds))),
        "--rate",
        "200",
        "--format",
        "raw",
        "--output",
        str(raw),
        "--nonblocking",
        "--gil",
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    if r.returncode != 0 or not raw.exists():
        return {"error": (r.stderr or r.stdout).strip()[-500:]}
    own: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_short(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += n
        for f in set(frames):
            incl[f] += n

    def share(c: collections.Counter[str]) -> list[str]:
        return [f"{100 * n / total:5.1f}% {f}" for f, n in c.most_common(top)] if total else []

    return {"samples": total, "file": str(raw.relative_to(ROOT)), "own": share(own), "inclusive": share(incl)}


def profile_under_load(
    load: Callable[[], object], secs: float, out_dir: Path, targets: dict[str, tuple[int, str]]
) -> dict[str, Any]:
    """Run `load` (a wrk run of about `secs` seconds, not measured) on a thread and, after a
    second of warm-up, py-spy each of `targets` (key -> (pid, profile file name)) at once
    for `secs - 2` seconds; each key's `profile` result."""
    found: dict[str, Any] = {}
    samplers = [
        threading.Thread(
            target=lambda k=key, p=pid, n=name: found.update({k: profile(p, secs - 2, out_dir, n)})
        )
        for key, (pid, name) in targets.items()
    ]
    loader = threading.Thread(target=load)
    loader.start()
    time.sleep(1)
    for t in samplers:
        t.start()
    for t in [*samplers, loader]:
        t.join()
    return found


def _short(frame: str) -> str:
    # py-spy raw frames: "func (path/to/file.py:123)"
    func, _, loc = frame.partition(" (")
    loc = loc.rstrip(")")
    path, _, _line = loc.rpartition(":")
    parts = Path(path).parts
    for anchor in ("site-packages", "main"):
        if anchor in parts:
            parts = parts[parts.index(anchor) + 1 :]
            break
    return f"{func} ({'/'.join(parts[-3:])})"


def env_info() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "when": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
