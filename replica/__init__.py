"""Replica: the regional edge with a hot-key cache, read-through and the change stream."""
