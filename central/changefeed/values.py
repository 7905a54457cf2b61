"""Which changes travel with their value, read from the store.

A create (C1) and an update of a key some region holds hot carry their value when it
is at most `push_value_max_bytes` and is still the key's: read back here, the key
still holds exactly that version; attached by the store at commit (a create's), no
later write of the key in its commit group (kvcore.store.txn). The rest travel as
invalidations and the replica reads through on its next miss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from central.changefeed.batches import without_value
from central.changefeed.source import ChangeSource
from kvcore.model import Change, ChangeKind


class ValueReader:
    def __init__(self, store: ChangeSource, push_value_max_bytes: int) -> None:
        self._store = store
        self._max_bytes = push_value_max_bytes

    def with_values(self, changes: Sequence[Change]) -> dict[int, Change]:
        """Creates and updates among `changes` that can carry their value, by seq.
        Values the store attached already (a create's, at commit on either engine, and
        PgStore's log follower for a page of creates) are kept when small; the rest are
        read with one bulk read per namespace, not one per key (on a PostgreSQL store
        each read is a round trip on this event loop)."""
        valued: dict[int, Change] = {}
        groups: dict[tuple[str, str], list[Change]] = {}
        for change in changes:
            if change.kind not in (ChangeKind.KEY_CREATE, ChangeKind.KEY_UPDATE):
                continue
            if change.has_value:
                if change.value is not None and len(change.value) <= self._max_bytes:
                    valued[change.seq] = change
            else:
                groups.setdefault((change.account_id, change.namespace_id), []).append(change)
        for (account_id, namespace_id), group in groups.items():
            try:
                entries = self._store.bulk_get(account_id, namespace_id, [c.key for c in group])
            except Exception:  # namespace deleted meanwhile: invalidations are right
                continue
            for change, entry in zip(group, entries, strict=True):
                if entry is not None and entry.version == change.seq and len(entry.value) <= self._max_bytes:
                    valued[change.seq] = replace(change, value=entry.value, has_value=True)
        return valued

    def with_create_values(self, changes: list[Change]) -> list[Change]:
        """Creates carry their value (when small and still current, see the module
        docstring); the rest as they are."""
        valued = self.with_values([c for c in changes if c.kind is ChangeKind.KEY_CREATE])
        # Not `valued.get(seq, without_value(c))`: that builds the stripped copy (a
        # dataclass `replace`) for every change, carried or not.
        return [v if (v := valued.get(c.seq)) is not None else without_value(c) for c in changes]
