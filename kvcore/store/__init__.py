"""The storage engine: namespaces, entries, tokens and the change log over RocksDB."""

from kvcore.store.base import LogTruncated, Store

__all__ = ["LogTruncated", "Store"]
