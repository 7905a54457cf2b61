"""Miniflare's KV binding as a long-lived child process speaking JSON lines
(tests/compat/miniflare_driver.mjs), for the differential test.

    with MiniflareKV() as mf:
        ok, result = mf.call("put", key="k", value="v", expirationTtl=60)

`call` returns `(True, result)` or `(False, {"name", "message"})`; every read is bounded
in time, and the process (node and the workerd it starts) is stopped by its own pid.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from typing import Any

from helpers.node import COMPAT, NODE_MODULES, node, require

DRIVER = COMPAT / "miniflare_driver.mjs"
START_TIMEOUT_S = 60.0
CALL_TIMEOUT_S = 20.0


class MiniflareKV:
    def __init__(self) -> None:
        require(NODE_MODULES / "miniflare")
        self._proc = subprocess.Popen(
            [node(), str(DRIVER), str(NODE_MODULES)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own group: workerd goes with it on close
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._stderr: list[str] = []
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()
        self._next_id = 0
        first = self._read(START_TIMEOUT_S)
        assert first.get("ready") is True, first

    def _pump_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)

    def _read(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            tail = "".join(self._stderr)[-2000:]
            raise TimeoutError(f"miniflare driver silent for {timeout_s}s: {tail}") from None
        if line is None:
            raise RuntimeError(f"miniflare driver exited: {''.join(self._stderr)[-2000:]}")
        doc: dict[str, Any] = json.loads(line)
        return doc

    def call(self, op: str, **args: Any) -> tuple[bool, Any]:
        self._next_id += 1
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps({"id": self._next_id, "op": op, **args}) + "\n")
        self._proc.stdin.flush()
        reply = self._read(CALL_TIMEOUT_S)
        assert reply["id"] == self._next_id, reply
        return (True, reply["result"]) if reply["ok"] else (False, reply["error"])

    def close(self) -> None:
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()  # the driver disposes Miniflare and exits
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)

    def __enter__(self) -> MiniflareKV:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
