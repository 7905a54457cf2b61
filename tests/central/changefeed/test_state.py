"""The change feed's plain state, with no process, no loop and no store: what is held,
when it is due (from commit time, on an injected clock), safe_seq, hot values, budgets,
and how a group becomes messages."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from hypothesis import given, settings
from hypothesis import strategies as st

from central.changefeed.batches import CHANGE_OVERHEAD_BYTES, MAX_BATCH_CHANGES, messages
from central.changefeed.state import FLUSH_MARGIN_S, Admission, Backlog, Budget, HeldUpdates, HotKeys
from kvcore.clock import ManualClock
from kvcore.model import Change, ChangeKind

NS = "n" * 32


def _change(seq: int, kind: ChangeKind, key: str = "k", commit_time: float | None = None) -> Change:
    return Change(
        seq=seq,
        kind=kind,
        commit_time=ManualClock().now() if commit_time is None else commit_time,
        namespace_id=NS,
        account_id="a" * 32,
        key=key,
        value=b"v" if kind is ChangeKind.KEY_CREATE else None,
    )


def test_creates_go_at_once_updates_and_deletes_wait() -> None:
    held = HeldUpdates(ManualClock(), delay_s=5.0)
    changes = [
        _change(1, ChangeKind.NAMESPACE_CREATE),
        _change(2, ChangeKind.KEY_CREATE),
        _change(3, ChangeKind.KEY_UPDATE),
        _change(4, ChangeKind.KEY_DELETE, key="other"),
    ]
    immediate, coalesced = held.take_in(changes)
    assert [c.seq for c in immediate] == [1, 2] and coalesced == 0
    assert len(held) == 2 and held.committed_seq == 4
    assert held.safe_seq() == 2  # seq 3 is still to be sent
    assert held.take_due() == []


def test_zero_delay_holds_nothing() -> None:
    held = HeldUpdates(ManualClock(), delay_s=0.0)
    immediate, _ = held.take_in([_change(1, ChangeKind.KEY_UPDATE), _change(2, ChangeKind.KEY_DELETE)])
    assert [c.seq for c in immediate] == [1, 2]
    assert len(held) == 0 and held.wait_s() is None and held.safe_seq() == 2


def test_held_change_and_its_time_to_flush() -> None:
    clock = ManualClock()
    held = HeldUpdates(clock, delay_s=5.0)
    held.take_in([_change(7, ChangeKind.KEY_UPDATE)])
    found = held.find((NS, "k"))
    assert found is not None and found[0].seq == 7
    assert abs(found[1] - (5.0 - FLUSH_MARGIN_S)) < 1e-9
    clock.advance(2.0)
    _, coalesced = held.take_in([_change(9, ChangeKind.KEY_DELETE)])  # the newest, the first deadline
    assert coalesced == 1
    found = held.find((NS, "k"))
    assert found is not None and found[0].seq == 9 and found[0].kind is ChangeKind.KEY_DELETE
    assert abs(found[1] - (3.0 - FLUSH_MARGIN_S)) < 1e-9
    assert held.safe_seq() == 8
    clock.advance(10.0)
    due = held.find((NS, "k"))
    assert due is not None and due[1] == 0.0  # due, not flushed yet
    assert [c.seq for c in held.take_due()] == [9]
    assert held.find((NS, "k")) is None and held.find((NS, "other")) is None
    assert held.safe_seq() == 9


def test_delay_counts_from_commit_time() -> None:
    """A change another central committed 4 s ago (shared store) is due 4 s sooner; one
    older than the delay is due at once."""
    clock = ManualClock()
    held = HeldUpdates(clock, delay_s=5.0)
    held.take_in([_change(1, ChangeKind.KEY_UPDATE, "a", commit_time=clock.now() - 4.0)])
    held.take_in([_change(2, ChangeKind.KEY_UPDATE, "b", commit_time=clock.now() - 60.0)])
    wait = held.wait_s()
    assert wait is not None and wait <= 0
    assert [c.key for c in held.take_due()] == ["b"]
    assert abs((held.wait_s() or 0) - (1.0 - FLUSH_MARGIN_S)) < 1e-9


def test_safe_seq_respects_floor_and_cap() -> None:
    held = HeldUpdates(ManualClock(), delay_s=5.0)
    held.take_in([_change(10, ChangeKind.KEY_CREATE), _change(11, ChangeKind.KEY_UPDATE)])
    held.take_in([_change(12, ChangeKind.KEY_CREATE, "x")])
    assert held.safe_seq() == 10
    assert held.safe_seq(floor=11) == 11  # the subscriber's catch-up covered up to 11
    assert held.safe_seq(cap=5) == 5 and held.safe_seq(floor=7, cap=5) == 7


@dataclass
class _Write:
    key: str
    kind: ChangeKind
    age_s: float  # how long before ingest it was committed
    then_s: float  # clock advance after it


_writes = st.lists(
    st.builds(
        _Write,
        key=st.sampled_from(["a", "b", "c", "d"]),
        kind=st.sampled_from([ChangeKind.KEY_UPDATE, ChangeKind.KEY_DELETE, ChangeKind.KEY_CREATE]),
        age_s=st.floats(0.0, 8.0),
        then_s=st.floats(0.0, 3.0),
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(_writes, st.floats(0.5, 6.0))
def test_held_updates_model(writes: list[_Write], delay_s: float) -> None:
    """Against a model: each key's newest write is sent once per flush window, no
    earlier than its first held write's deadline and no later (C2); creates go at
    once (C1); safe_seq is just below the oldest change still held."""
    clock = ManualClock()
    held = HeldUpdates(clock, delay_s)
    model: dict[str, tuple[Change, float]] = {}  # key -> (newest held change, deadline)
    sent: list[Change] = []

    def flush() -> None:
        now = clock.monotonic()
        due = held.take_due()
        expect = sorted((c for c, d in model.values() if d <= now + FLUSH_MARGIN_S), key=lambda c: c.seq)
        assert due == expect
        for c in due:
            del model[c.key]
        sent.extend(due)
        wait = held.wait_s()  # nothing left is overdue
        assert (wait is None) == (not model) and (wait is None or wait > 0)

    for seq, w in enumerate(writes, start=1):
        change = _change(seq, w.kind, w.key, commit_time=clock.now() - w.age_s)
        immediate, coalesced = held.take_in([change])
        if w.kind is ChangeKind.KEY_CREATE:
            assert immediate == [change] and coalesced == 0
        else:
            assert immediate == [] and coalesced == (1 if w.key in model else 0)
            age_s = min(max(0.0, clock.now() - change.commit_time), delay_s)  # as the feed counts it
            deadline = model[w.key][1] if w.key in model else clock.monotonic() + delay_s - age_s
            model[w.key] = (change, deadline)
        held_seqs = [c.seq for c, _ in model.values()]
        assert held.safe_seq() == (min(held_seqs) - 1 if held_seqs else seq)
        assert len(held) == len(model)
        flush()
        clock.advance(w.then_s)
        flush()
    clock.advance(delay_s)
    flush()
    assert not model and len(held) == 0 and held.safe_seq() == len(writes)


def test_hot_keys_carry_values_to_their_region_only() -> None:
    hot = HotKeys()
    hot.report("eu", {(NS, "h")})
    due = [_change(5, ChangeKind.KEY_UPDATE, "h"), _change(6, ChangeKind.KEY_UPDATE, "c")]
    due.append(_change(7, ChangeKind.KEY_DELETE, "h"))
    assert [c.seq for c in hot.wanted(due, ["eu", "us"])] == [5]
    assert hot.wanted(due, ["us"]) == []
    valued = {5: replace(due[0], value=b"new", has_value=True)}
    eu = hot.carry(due, "eu", valued)
    assert eu[0].value == b"new" and eu[1:] == due[1:]
    assert hot.carry(due, "us", valued) == due


def test_backlog_overflows_once_then_drops_until_restarted() -> None:
    backlog = Backlog(Budget(changes=3, bytes=10_000))
    two = [_change(1, ChangeKind.KEY_UPDATE), _change(2, ChangeKind.KEY_UPDATE)]
    assert backlog.admit(two) is Admission.QUEUE
    assert (backlog.changes, backlog.bytes) == (2, 2 * CHANGE_OVERHEAD_BYTES)
    backlog.taken(two)
    assert (backlog.changes, backlog.bytes) == (0, 0)
    assert backlog.admit(two) is Admission.QUEUE
    assert backlog.admit(two) is Admission.OVERFLOW  # 4 > 3
    assert backlog.overflowed and (backlog.changes, backlog.bytes) == (0, 0)
    assert backlog.admit(two[:1]) is Admission.DROP
    backlog.restart()
    assert backlog.admit(two) is Admission.QUEUE


def test_backlog_counts_value_bytes() -> None:
    backlog = Backlog(Budget(changes=100, bytes=3 * CHANGE_OVERHEAD_BYTES))
    create = _change(1, ChangeKind.KEY_CREATE)  # one byte of value
    assert backlog.admit([create, create]) is Admission.QUEUE
    assert backlog.admit([create]) is Admission.OVERFLOW


@given(st.lists(st.integers(0, 3000), max_size=3), st.integers(0, 2500))
def test_messages_split_a_group_and_cap_its_resume_points(values: list[int], n: int) -> None:
    big = [
        Change(seq=i + 1, kind=ChangeKind.KEY_CREATE, commit_time=0.0, value=b"x" * v)
        for i, v in enumerate(values)
    ]
    small = [Change(seq=len(big) + i + 1, kind=ChangeKind.KEY_UPDATE, commit_time=0.0) for i in range(n)]
    group = big + small
    msgs = messages(group)
    assert [c for chunk, _ in msgs for c in chunk] == group
    assert all(len(chunk) <= MAX_BATCH_CHANGES for chunk, _ in msgs)
    assert msgs[-1][1] is None
    for (_, cap), (nxt, _) in itertools.pairwise(msgs):
        assert cap == nxt[0].seq - 1
