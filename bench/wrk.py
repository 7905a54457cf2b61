"""A wrk runner: every run gets a Lua `done()` that prints one JSON line with the
request count, throughput, latency percentiles (wrk's own HdrHistogram-like
record, microseconds) and the error counters, so nothing is scraped from wrk's
human-readable output."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"mean_us":%.1f,"max_us":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, e.connect, e.read, e.write, e.status, e.timeout))
end
"""

# Each thread gets an id (setup runs in the main thread, once per thread).
_THREAD_IDS = r"""
local thread_counter = 0
setup = function(thread)
  thread:set("tid", thread_counter)
  thread_counter = thread_counter + 1
end
"""


def binary() -> str:
    exe = shutil.which("wrk")
    if exe is None:
        raise RuntimeError("wrk is not installed (make bench installs the Debian package)")
    return exe


def get_script(headers: dict[str, str]) -> str:
    lines = [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    return "\n".join(lines) + "\n" + _DONE


def cycle_script(path_prefix: str, n_keys: int, key_format: str, headers: dict[str, str]) -> str:
    """GETs of `path_prefix .. key(i)` for i cycling through 0..n_keys-1; threads
    interleave (thread t reads t, t+T, ...), so with T threads every key is read once
    per pass."""
    hdr = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    return (
        _THREAD_IDS
        + hdr
        + f"""
local i, step = 0, 1
init = function(args)
  i = tonumber(tid) or 0
  step = tonumber(args[1]) or 1
end
request = function()
  local path = "{path_prefix}" .. string.format("{key_format}", i % {n_keys})
  i = i + step
  return wrk.format("GET", path)
end
"""
        + _DONE
    )


def zipf_script(path_prefix: str, n_keys: int, key_format: str, headers: dict[str, str]) -> str:
    """GETs of keys drawn from a Zipf(s=1) distribution over n_keys: rank = floor(N^u)
    for u uniform in [0,1) (the continuous inverse of the s=1 CDF, ln k / ln N); rank 1
    is the hottest. Key index = rank - 1."""
    hdr = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    return (
        _THREAD_IDS
        + hdr
        + f"""
init = function(args)
  math.randomseed(os.time() * 1000 + (tonumber(tid) or 0))
end
request = function()
  local rank = math.floor({n_keys} ^ math.random())
  if rank > {n_keys} then rank = {n_keys} end
  local path = "{path_prefix}" .. string.format("{key_format}", rank - 1)
  return wrk.format("GET", path)
end
"""
        + _DONE
    )


def put_script(path_prefix: str, tag: str, body: bytes, headers: dict[str, str]) -> str:
    """PUTs of distinct keys `tag-<thread>-<n>` (every write is a create)."""
    hdr = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    return (
        _THREAD_IDS
        + hdr
        + f"""
wrk.headers["Content-Type"] = "application/octet-stream"
local n = 0
local body = "{body.decode("ascii")}"
request = function()
  n = n + 1
  return wrk.format("PUT", "{path_prefix}{tag}-" .. tid .. "-" .. n, nil, body)
end
"""
        + _DONE
    )


def run(
    url: str,
    script: str,
    *,
    seconds: float,
    connections: int = 32,
    threads: int = 2,
    args: list[str] | None = None,
    timeout_s: float = 5.0,
    errors_ok: bool = False,
) -> dict[str, Any]:
    """One wrk run; returns the JSON from `done()` plus `rps` and latencies in ms.
    RuntimeError if any request failed (a non-2xx/3xx status, a timeout, a socket
    error), unless `errors_ok`: a rate of failed requests measures nothing."""
    with tempfile.TemporaryDirectory(prefix="edgekv-wrk-") as tmp:
        lua = Path(tmp) / "bench.lua"
        lua.write_text(script)
        cmd = [
            binary(),
            "-t",
            str(threads),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            f"{timeout_s:g}s",
            "-s",
            str(lua),
            url,
        ]
        if args:
            cmd += ["--", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    for line in proc.stdout.splitlines():
        if line.startswith("WRKJSON "):
            res: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
            break
    else:
        raise RuntimeError(f"wrk printed no result (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    secs = res["duration_us"] / 1e6
    res["rps"] = round(res["requests"] / secs, 1) if secs else 0.0
    for k in ("p50", "p90", "p99", "p999"):
        res[f"{k}_ms"] = round(res.pop(f"{k}_us") / 1000, 3)
    res["mean_ms"] = round(res.pop("mean_us") / 1000, 3)
    res["max_ms"] = round(res.pop("max_us") / 1000, 3)
    res["errors"] = sum(res[k] for k in list(res) if k.startswith("err_"))
    res["connections"] = connections
    res["threads"] = threads
    if res["errors"] and not errors_ok:
        kinds = {k: v for k, v in res.items() if k.startswith("err_") and v}
        raise RuntimeError(f"wrk at {url}: {res['errors']} of {res['requests']} requests failed {kinds}")
    return res
