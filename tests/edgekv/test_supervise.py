"""`edgekv dev`'s supervisor: restart with doubling backoff, reset once stable."""

from __future__ import annotations

from pathlib import Path

from edgekv.supervise import (
    BACKOFF_INITIAL_S,
    BACKOFF_MAX_S,
    SETTINGS_EXIT_CODE,
    STABLE_AFTER_S,
    Supervisor,
)
from kvcore.clock import ManualClock


class FakeChild:
    name = "central"
    log_path = Path("/tmp/central.log")

    def __init__(self) -> None:
        self.code: int | None = None
        self.starts = 0
        self.notes: list[str] = []

    def start(self) -> None:
        self.starts += 1
        self.code = None

    def exit_code(self) -> int | None:
        return self.code

    def note(self, line: str) -> None:
        self.notes.append(line)


def test_restart_backoff_doubles_and_resets_after_a_stable_run() -> None:
    clock, child, said = ManualClock(), FakeChild(), []
    sup = Supervisor([child], said.append, clock)
    delays = []
    for _ in range(7):
        child.code = -9
        sup.step()  # notices the exit
        before = child.starts
        waited = 0.0
        while child.starts == before:
            clock.advance(0.25)
            waited += 0.25
            sup.step()
        delays.append(waited)
    assert delays[0] == BACKOFF_INITIAL_S
    assert delays[1] == 2 * BACKOFF_INITIAL_S
    assert max(delays) == BACKOFF_MAX_S
    assert sup.restarts(child) == 7 and "exited with -9" in said[0] and child.notes
    clock.advance(STABLE_AFTER_S)  # up for a while: the next failure restarts quickly
    child.code = 1
    sup.step()
    clock.advance(BACKOFF_INITIAL_S)
    sup.step()
    assert sup.restarts(child) == 8


def test_a_child_that_refuses_its_settings_is_not_restarted() -> None:
    clock, child, said = ManualClock(), FakeChild(), []
    sup = Supervisor([child], said.append, clock)
    child.code = SETTINGS_EXIT_CODE
    for _ in range(100):
        sup.step()
        clock.advance(BACKOFF_MAX_S)
    assert child.starts == 0 and sup.restarts(child) == 0
    assert len(said) == 1 and "refused its settings" in said[0] and "central.log" in said[0]
    assert child.notes == ["--- edgekv dev: central refused its settings; not restarted ---"]
