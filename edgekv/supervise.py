"""Keeping `edgekv dev`'s children running: a child that exits is restarted with backoff.

The demo should survive what it demonstrates: kill central (`kill -9 <pid>`) and the
replicas keep serving cached keys while writes fail fast (C7), then central comes
back on the same ports and data dir and the replicas resume. Each child's log is
appended to across restarts and kept until `edgekv dev` exits.

Backoff: 0.5 s after the first exit, doubling to 10 s for a child that keeps failing;
a child that stayed up `STABLE_AFTER_S` starts over at 0.5 s. A child that exits with
`SETTINGS_EXIT_CODE` (`edgekv central|replica` refused its settings: the same command
would be refused again) is not restarted; the supervisor says so once, pointing at its log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kvcore.clock import SYSTEM_CLOCK, Clock

BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 10.0
STABLE_AFTER_S = 30.0
POLL_S = 0.2
SETTINGS_EXIT_CODE = 2  # edgekv.serve: a SettingsError


class Supervised(Protocol):
    name: str
    log_path: Path

    def start(self) -> object: ...
    def exit_code(self) -> int | None: ...
    def note(self, line: str) -> None: ...


@dataclass
class _Track:
    started_at: float
    backoff_s: float = BACKOFF_INITIAL_S
    restart_at: float | None = None  # set while the child is down, waiting for its restart
    restarts: int = 0
    given_up: bool = False  # exited with SETTINGS_EXIT_CODE: left down


class Supervisor:
    """`step()` checks every child once: schedules a restart for one that exited, starts
    one whose backoff has passed. `say` reports each event in one line."""

    def __init__(
        self, children: Sequence[Supervised], say: Callable[[str], None], clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._children = list(children)
        self._say = say
        self._clock = clock
        now = clock.monotonic()
        self._track = {id(c): _Track(started_at=now) for c in self._children}

    def restarts(self, child: Supervised) -> int:
        return self._track[id(child)].restarts

    def step(self) -> None:
        now = self._clock.monotonic()
        for child in self._children:
            t = self._track[id(child)]
            if t.given_up:
                continue
            if t.restart_at is None:
                code = child.exit_code()
                if code is None:
                    continue
                if code == SETTINGS_EXIT_CODE:
                    t.given_up = True
                    self._say(
                        f"{child.name} refused its settings (exit {code}); not restarting it: "
                        f"see {child.log_path}"
                    )
                    child.note(f"--- edgekv dev: {child.name} refused its settings; not restarted ---")
                    continue
                if now - t.started_at >= STABLE_AFTER_S:
                    t.backoff_s = BACKOFF_INITIAL_S
                t.restart_at = now + t.backoff_s
                self._say(f"{child.name} exited with {code}; restarting it in {t.backoff_s:g} s")
                child.note(f"--- edgekv dev: {child.name} exited with {code}; restarting ---")
                t.backoff_s = min(BACKOFF_MAX_S, t.backoff_s * 2)
            elif now >= t.restart_at:
                t.restart_at = None
                t.started_at = now
                t.restarts += 1
                child.start()
                self._say(f"{child.name} restarted (restart {t.restarts})")

    def run_forever(self) -> None:
        while True:
            self.step()
            time.sleep(POLL_S)
