"""Central: the authority. gRPC API over the store, the change feed, and the REST backend."""
