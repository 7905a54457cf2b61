"""C6: a write acknowledged by the store survives `kill -9` of its process, on both
engines (on PostgreSQL the database stays up: this is central dying, not the database).

A child process runs many concurrent writers against the store and prints each key
(flushed) only after its put returned. The parent SIGKILLs the child mid-run, reopens
the store and checks that every printed key is there with its value and version.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from store_support import StoreOpener

from kvcore.store.ops import CreateNamespaceOp

ACCT = "acct1"

CHILD = r"""
import asyncio, sys, threading
from kvcore.model import WriteItem
from kvcore.store.ops import CreateNamespaceOp, PutOp
from kvcore.store.pg import PgStore
from kvcore.store.rocks import RocksStore

where = sys.argv[1]
if where.startswith("postgresql://"):
    store = PgStore(where, purge_interval_s=3600)
else:
    store = RocksStore(where, purge_interval_s=3600)
ns = store.run(CreateNamespaceOp("acct1", "durable")).id
out_lock = threading.Lock()

def emit(line):
    with out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

emit("NS " + ns)

def thread_writer(w):
    n = 0
    while True:
        key = f"t{w}-{n}"
        r = store.run(PutOp("acct1", ns, WriteItem(key, f"value of {key}".encode() * 3)))
        emit(f"OK {key} {r.seq}")
        n += 1

async def task_writer(w):
    n = 0
    while True:
        key = f"a{w}-{n}"
        r = await store.submit(PutOp("acct1", ns, WriteItem(key, f"value of {key}".encode() * 3)))
        emit(f"OK {key} {r.seq}")
        n += 1

async def tasks():
    await asyncio.gather(*(task_writer(w) for w in range(32)))

for w in range(32):
    threading.Thread(target=thread_writer, args=(w,), daemon=True).start()
asyncio.run(tasks())
"""


@pytest.mark.timeout(60)
def test_acknowledged_writes_survive_sigkill(store_location: str, open_store: StoreOpener) -> None:
    path = store_location
    repo = Path(__file__).resolve().parents[3]
    env = {**os.environ, "PYTHONPATH": str(repo) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, path],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        bufsize=1,
    )
    lines: list[str] = []

    def reader() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 20
        while sum(line.startswith("OK") for line in lines[:50]) < 20:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline, "child never started writing"
            time.sleep(0.01)
        # Kill ~1.5 s after writes start flowing, while they are in full swing, and not
        # before 300 are acknowledged (a busy machine may acknowledge fewer in 1.5 s).
        flowing = time.monotonic()
        while time.monotonic() - flowing < 1.5 or len(lines) <= 300:  # lines: "NS ..." then "OK ..."
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            assert time.monotonic() < deadline + 10, "child acknowledged fewer than 300 writes"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        t.join(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

    assert child.returncode == -signal.SIGKILL
    # Only complete lines count: the one being written at the kill may be cut short.
    complete = [line.rstrip("\n").split(" ") for line in lines if line.endswith("\n")]
    ns = complete[0][1]
    acked = {parts[1]: int(parts[2]) for parts in complete[1:] if parts[0] == "OK" and len(parts) == 3}
    print(f"{len(acked)} writes acknowledged before SIGKILL")  # visible with -s
    assert len(acked) > 200, f"too few writes acknowledged before the kill: {len(acked)}"

    with open_store() as store:
        missing = []
        for key, seq in acked.items():
            entry = store.get(ACCT, ns, key)
            if entry is None:
                missing.append(key)
                continue
            assert entry.value == f"value of {key}".encode() * 3
            assert entry.version == seq
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:5]}"
        # The log resumes without a gap and covers every acknowledged write.
        assert store.committed_seq >= max(acked.values())
        log_seqs: list[int] = []
        after = 0
        while batch := store.changes_since(after, limit=10_000):
            log_seqs.extend(c.seq for c in batch)
            after = batch[-1].seq
        assert log_seqs == list(range(1, store.committed_seq + 1))
        ns_id = store.run(CreateNamespaceOp(ACCT, "after-restart")).id
        assert ns_id and store.committed_seq == log_seqs[-1] + 1
