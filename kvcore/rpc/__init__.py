"""The gRPC boundary: status mapping, cluster-secret auth, channel options and the typed
client of central. Protobuf is converted to domain types here and in `kvcore.wire`."""
