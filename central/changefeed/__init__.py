"""The change stream, central's side: `ChangeFeed.follow` is the whole protocol.

| module | owns |
| --- | --- |
| `feed.py` | `ChangeFeed`: subscribers, their queues, ingest from the store, the lazy flush, `follow` |
| `catchup.py` | the start of a subscription: snapshot, log replay, reset when the log is gone |
| `state.py` | plain state, no I/O: held updates and their deadlines, `safe_seq`, hot keys, budgets |
| `batches.py` | pure: message size bounds and the resume cap of a split group |
| `values.py` | which changes carry their value (store reads) |
| `source.py` | what the feed needs from the store |
"""

from central.changefeed.feed import ChangeFeed

__all__ = ["ChangeFeed"]
