"""Replica: one region's process. Its local state, "the edge" (`replica.edge`), answers
reads from a hot-key cache; misses read through to central, writes are forwarded to it,
and the change stream keeps the edge current."""
