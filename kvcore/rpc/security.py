"""Cluster secret, TLS and message-size settings shared by gRPC servers and clients."""

from __future__ import annotations

import asyncio
import hmac
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from kvcore.errors import StartupError

SECRET_KEY = "x-edgekv-cluster-secret"
# A 25 MiB value plus its key, metadata and framing must fit in one message; bulk
# bodies are capped at 100 MB by the REST layer.
MAX_MESSAGE_BYTES = 128 * 1024 * 1024

CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    # Detect a dead peer on an idle stream within seconds, not the TCP timeout.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # gRPC core waits this long for ANY ping's ack (default 60 s, which is what a hung
    # peer cost before: ~68 s to notice); keepalive_timeout alone does not bound it.
    ("grpc.http2.ping_timeout_ms", 5_000),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC's reconnect backoff grows to 120 s by default and is shared by every
    # channel to the same target: after a long partition a replica would stay
    # disconnected for minutes after central is back (C7 wants it to resume).
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [
    *CHANNEL_OPTIONS,
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 5_000),
]


class ClusterSecretInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Refuses every call (health checks included) that lacks the cluster secret."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()

        async def deny(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong cluster secret")

        self._deny_unary = grpc.unary_unary_rpc_method_handler(deny)
        self._deny_stream = grpc.unary_stream_rpc_method_handler(deny)
        self._deny_bidi = grpc.stream_stream_rpc_method_handler(deny)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        for key, value in handler_call_details.invocation_metadata or ():
            if key == SECRET_KEY:
                given = value.encode() if isinstance(value, str) else value
                if hmac.compare_digest(given, self._secret):
                    return await continuation(handler_call_details)
        if handler_call_details.method.endswith("/Subscribe"):
            return self._deny_stream
        if handler_call_details.method.endswith("/WriteStream"):
            return self._deny_bidi
        return self._deny_unary


def server_credentials(cert_path: str, key_path: str) -> grpc.ServerCredentials:
    """gRPC server credentials for a PEM certificate chain and its private key.

    Raises StartupError when the pair does not load (unreadable, not PEM, or the key does
    not match the certificate): grpc itself would only fail later, at bind time, with a
    message about the port."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise StartupError(
            f"--tls-cert/--tls-key (EDGEKV_TLS_CERT/EDGEKV_TLS_KEY): cannot load "
            f"{cert_path} with {key_path}: {reason}"
        ) from None
    with open(key_path, "rb") as k, open(cert_path, "rb") as c:
        return grpc.ssl_server_credentials([(k.read(), c.read())])


def channel_credentials(ca_path: str) -> grpc.ChannelCredentials:
    with open(ca_path, "rb") as f:
        return grpc.ssl_channel_credentials(root_certificates=f.read())


def secure_or_insecure_channel(target: str, ca_path: str | None) -> grpc.aio.Channel:
    if ca_path:
        return grpc.aio.secure_channel(target, channel_credentials(ca_path), options=CHANNEL_OPTIONS)
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


async def speaks_tls(target: str, timeout_s: float = 1.0) -> bool:
    """True when `target` (HOST:PORT) completes a TLS handshake, its certificate unchecked.

    Used only after a plaintext call failed with "Socket closed": that is what gRPC
    reports against a TLS server, and the operator should read "pass --tls-ca"."""
    host, _, port = target.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host.strip("[]"), int(port), ssl=context)
    except (OSError, TimeoutError, ValueError):
        return False
    # Abort, not close: a graceful TLS shutdown waits for the peer (uvloop: up to 15 s+).
    writer.transport.abort()
    return True
