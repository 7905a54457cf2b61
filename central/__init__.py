"""Central: the authority. gRPC API over the store, the fan-out hub, and the REST backend."""
