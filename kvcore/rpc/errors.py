"""KVError <-> gRPC status, as a table.

Central aborts a call with the error's gRPC status and puts the Cloudflare code in
trailing metadata; the client rebuilds the same `KVError` class from the pair, so a
replica renders exactly what central raised. Transport failures (central down, deadline
exceeded) become `Unavailable`: to the REST client of a replica, a 503.
"""

from __future__ import annotations

import grpc

from kvcore.errors import KVError, Unavailable, error_from_code

CODE_KEY = "edgekv-error-code"

# Transport-level statuses that mean "central cannot answer now" rather than an answer.
_UNAVAILABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
}


def status_of(exc: KVError) -> grpc.StatusCode:
    return getattr(grpc.StatusCode, exc.grpc_status, grpc.StatusCode.UNKNOWN)


def trailing_metadata_of(exc: KVError) -> tuple[tuple[str, str], ...]:
    return ((CODE_KEY, str(exc.code)),)


def from_rpc_error(err: grpc.aio.AioRpcError | grpc.RpcError) -> KVError:
    """Turn a failed call into the KVError it stands for."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = (err.details() if hasattr(err, "details") else None) or ""
    cf_code: int | None = None
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for k, v in trailing or ():
        if k == CODE_KEY:
            try:
                cf_code = int(v)
            except (TypeError, ValueError):
                cf_code = None
    if cf_code is not None:
        return error_from_code(cf_code, code.name, details)
    if code in _UNAVAILABLE:
        return Unavailable(f"central unavailable: {code.name.lower()}: {details}".rstrip(": "))
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unavailable("central refused the cluster secret")
    return error_from_code(0, code.name, details or code.name)
