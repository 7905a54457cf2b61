"""PgStore across a database failover (issue 14, part 5), below the central process.

A store on the multi-host URL of a primary and its synchronous standby takes writes
from 4 threads; the primary is SIGKILLed and the standby promoted. While there is no
primary, reads and writes fail with `Unavailable` (a 503, not a 500), and once the
standby takes writes the same store object carries on by itself: every acknowledged
write is there, the log follower delivers the new writes, seq keeps growing.
"""

from __future__ import annotations

import threading
import time

from helpers.pg_replication import sync_pair

from kvcore.errors import Unavailable
from kvcore.model import Change, WriteItem
from kvcore.store.ops import CreateNamespaceOp, PutOp
from kvcore.store.pg import PgStore

ACCOUNT = "c" * 32


def test_store_resumes_on_the_promoted_standby_and_loses_no_acknowledged_write() -> None:
    with sync_pair() as pair:
        store = PgStore(pair.create_database("edgekv"), poll_s=0.2)
        try:
            ns = store.run(CreateNamespaceOp(ACCOUNT, "failover")).id
            delivered: list[Change] = []
            store.add_listener(delivered.extend)
            acked: dict[str, tuple[bytes, int]] = {}
            errors: list[BaseException] = []
            phase = {"promoted": False, "acked_after": 0}
            stop = threading.Event()

            def writer(w: int) -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    key, value = f"w{w}-{n % 10}", f"{w}:{n}".encode()
                    try:
                        result = store.run(PutOp(ACCOUNT, ns, WriteItem(key=key, value=value)))
                    except Unavailable:
                        acked.pop(key, None)  # outcome unknown until a later write decides it
                        time.sleep(0.05)
                        continue
                    except BaseException as exc:  # anything else is a bug (e.g. a 500)
                        errors.append(exc)
                        return
                    acked[key] = (value, result.seq)
                    phase["acked_after"] += phase["promoted"]

            threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
            for t in threads:
                t.start()
            _wait(lambda: len(acked) >= 30, 20, "writes before the kill")
            seq_before = max(seq for _, seq in acked.values())
            pair.primary.kill9()
            time.sleep(0.5)  # no primary for a moment: reads fail as Unavailable
            try:
                store.get(ACCOUNT, ns, "w0-1")
                raise AssertionError("a read with no primary and no standby answered")
            except Unavailable:
                pass
            pair.promote()
            phase["promoted"] = True
            took = _wait(lambda: phase["acked_after"] >= 50, 30, "writes after promotion")
            stop.set()
            for t in threads:
                t.join(10)
            print(f"\nwrites resumed {took:.2f}s after promotion")
            assert not errors, errors[:3]
            for key, (value, _seq) in acked.items():
                entry = store.get(ACCOUNT, ns, key)
                assert entry is not None and entry.value == value, (key, entry, value)
            assert max(seq for _, seq in acked.values()) > seq_before
            top = store.committed_seq
            _wait(lambda: bool(delivered) and delivered[-1].seq >= top, 10, "the follower delivers")
            seqs = [c.seq for c in delivered]
            assert seqs == sorted(set(seqs)), "the follower delivered out of order or twice"
        finally:
            store.close()


def _wait(cond: object, timeout_s: float, what: str) -> float:
    t0 = time.monotonic()
    while not cond():  # type: ignore[operator]
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)
    return time.monotonic() - t0
