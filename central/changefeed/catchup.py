"""The start of a subscription: a snapshot, then the log a replica missed, or a reset.

A subscriber names `from_seq`, the last `safe_seq` it persisted (0: it has nothing).
The feed registers it first and fixes its `floor` (everything committed so far), so
live changes after the floor queue up while this replays (from_seq, floor].
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from central.changefeed.batches import chunked
from central.changefeed.source import ChangeSource
from central.changefeed.values import ValueReader
from kvcore.errors import LogTruncated
from kvcore.model import KEY_KINDS, ChangeBatch, Snapshot

CATCH_UP_PAGE = 1000


def snapshot(store: ChangeSource) -> Snapshot:
    """Every namespace and token: what a replica holds before it applies changes."""
    return Snapshot(namespaces=store.all_namespaces(), tokens=store.list_tokens())


def reset_batch(snap: Snapshot, safe_seq: int, committed_seq: int) -> ChangeBatch:
    """Drop your cache and start over from this snapshot (C7: the log is gone, or the
    subscriber fell too far behind)."""
    return ChangeBatch(changes=[], safe_seq=safe_seq, committed_seq=committed_seq, reset=True, snapshot=snap)


async def catch_up(
    store: ChangeSource, values: ValueReader, from_seq: int, floor: int, committed: Callable[[], int]
) -> AsyncIterator[ChangeBatch]:
    """Snapshot, then the log in (from_seq, floor]; a reset if that is gone.

    From seq 0 (a replica with nothing) the snapshot alone is the answer: replaying
    the whole log to an empty cache would only cost time. Namespace and token
    records are not replayed: the snapshot is at least as new as `floor`, and an
    older record applied after it would undo it (a revoked token accepted again).
    `committed()` is the feed's committed seq at the time of each message.
    """
    snap = snapshot(store)
    reset = reset_batch(snap, floor, floor)
    if from_seq == 0 or from_seq > floor or from_seq < store.oldest_retained_seq - 1:
        yield reset
        return
    seq = from_seq
    first = True
    while seq < floor:
        try:
            page = [c for c in store.changes_since(seq, CATCH_UP_PAGE) if c.seq <= floor]
        except LogTruncated:
            yield reset
            return
        if not page:
            break
        end = page[-1].seq
        chunks = chunked(values.with_create_values([c for c in page if c.kind in KEY_KINDS]))
        for i, chunk in enumerate(chunks):
            # Safe up to this chunk's last change; the page's last chunk covers the
            # whole page (its namespace and token records are in the snapshot).
            yield ChangeBatch(
                changes=chunk,
                safe_seq=end if i == len(chunks) - 1 else chunk[-1].seq,
                committed_seq=committed(),
                snapshot=snap if first else None,
                replay=True,
            )
            first = False
        seq = end
    yield ChangeBatch(changes=[], safe_seq=floor, committed_seq=committed(), snapshot=snap if first else None)
