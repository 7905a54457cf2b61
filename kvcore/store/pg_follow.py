"""`LogFollower`: one central's reader of the shared change log.

Every central, whichever central committed a change, learns of it here and hands it
to the store's listeners (the fan-out hub) in seq order, exactly once. Reading the
log by seq is the truth: seq is commit order (pg_engine.py), so "everything after my
position" never skips a change committed later with a smaller seq. LISTEN/NOTIFY is
only the wake-up: a listener thread sets an event on each notification, local commits
set it directly (no round trip), and a poll every `poll_s` covers a lost
notification or a dropped LISTEN connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg

from kvcore.errors import LogTruncated
from kvcore.model import Change
from kvcore.store.pg_schema import NOTIFY_CHANNEL

log = logging.getLogger(__name__)

PAGE: Final = 1000
RETRY_S: Final = 0.5


class LogFollower:
    def __init__(
        self,
        connect: Callable[[], psycopg.Connection[Any]],
        read: Callable[[int, int], list[Change]],
        deliver: Callable[[Sequence[Change]], None],
        resync: Callable[[], int],
        *,
        seq: int,
        poll_s: float = 1.0,
    ) -> None:
        """`read(after, limit)` reads the log; `deliver` gets each page, in seq order,
        starting after `seq`; `resync()` rebuilds what followed the log when its part
        was trimmed before it was read, and returns the seq to go on from."""
        self._connect = connect
        self._read = read
        self._deliver = deliver
        self._resync = resync
        self._seq = seq
        self._poll_s = poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, name="edgekv-log-follower", daemon=True),
            threading.Thread(target=self._listen, name="edgekv-log-listen", daemon=True),
        ]
        for t in self._threads:
            t.start()

    @property
    def seq(self) -> int:
        """Every change <= seq has been delivered."""
        return self._seq

    def poke(self) -> None:
        """New changes may be in the log (a local commit)."""
        self._wake.set()

    def wait_for(self, seq: int, timeout_s: float) -> bool:
        """Wait until every change <= seq is delivered; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._seq < seq and not self._stop.is_set():
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.002)
        return self._seq >= seq

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        for t in self._threads:
            t.join(timeout=5)

    def _follow(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._poll_s)
            self._wake.clear()
            try:
                self._drain()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("reading the change log failed; retrying")
                self._stop.wait(RETRY_S)
                self._wake.set()

    def _drain(self) -> None:
        while not self._stop.is_set():
            try:
                page = self._read(self._seq, PAGE)
            except LogTruncated:
                # Only if this central was cut off from the database for longer than the
                # retention: its subscribers miss what was trimmed, so say so loudly.
                log.error(
                    "change log trimmed past this central's position %d: catalog reloaded; restart "
                    "this central so its replicas resume from the database (or reset)",
                    self._seq,
                )
                self._seq = self._resync()
                continue
            if not page:
                return
            self._deliver(page)
            self._seq = page[-1].seq
            if len(page) < PAGE:
                return

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.autocommit = True
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    self._wake.set()  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.2, stop_after=1):
                            self._wake.set()
            except Exception as exc:
                if self._stop.is_set():
                    return
                log.warning("LISTEN connection lost (%s); reconnecting", str(exc).splitlines()[0])
                time.sleep(RETRY_S)
