"""How a list of changes becomes stream messages: size bounds and resume points.

Pure functions, no state. A group of changes larger than one message is split; every
message but the last of a group is safe only up to just before the next message's
first change, so a replica that persists a message's `safe_seq` and then loses the
stream never resumes past changes it did not receive.
"""

from __future__ import annotations

from dataclasses import replace

from kvcore.model import Change

# Upper bounds of one stream message: changes, and bytes of carried values (well
# under the 128 MiB gRPC message limit even with metadata and framing).
MAX_BATCH_CHANGES = 1000
MAX_BATCH_VALUE_BYTES = 16 * 1024 * 1024
# Per-change bookkeeping counted against a subscriber's byte budget besides its value.
CHANGE_OVERHEAD_BYTES = 256


def batch_bytes(changes: list[Change]) -> int:
    """Bytes `changes` count against a subscriber's budget: values plus a fixed overhead each."""
    return sum(CHANGE_OVERHEAD_BYTES + (len(c.value) if c.value is not None else 0) for c in changes)


def chunked(changes: list[Change]) -> list[list[Change]]:
    """Split into stream messages of at most MAX_BATCH_CHANGES changes and about
    MAX_BATCH_VALUE_BYTES of values (a single larger value travels alone). Always at
    least one chunk (empty for no changes)."""
    chunks: list[list[Change]] = []
    current: list[Change] = []
    size = 0
    for change in changes:
        value = len(change.value) if change.value is not None else 0
        if current and (len(current) >= MAX_BATCH_CHANGES or size + value > MAX_BATCH_VALUE_BYTES):
            chunks.append(current)
            current, size = [], 0
        current.append(change)
        size += value
    chunks.append(current)
    return chunks


def messages(changes: list[Change]) -> list[tuple[list[Change], int | None]]:
    """`changes` (ascending seq) as (chunk, cap) pairs: `cap` bounds that message's
    safe_seq while later chunks of the group are still to come; None for the last."""
    chunks = chunked(changes)
    caps: list[int | None] = [nxt[0].seq - 1 for nxt in chunks[1:]]
    return list(zip(chunks, [*caps, None], strict=True))


def without_value(change: Change) -> Change:
    """A change that must travel as an invalidation (a too-big value the store attached)."""
    return replace(change, value=None, has_value=False) if change.has_value else change
