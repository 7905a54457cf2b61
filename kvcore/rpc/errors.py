"""KVError <-> gRPC status, as a table.

Central aborts a call with the error's gRPC status and puts the Cloudflare code in
trailing metadata; the client rebuilds the same `KVError` class from the pair, so a
replica renders exactly what central raised. Transport failures (central down, deadline
exceeded) become `Unavailable`: to the REST client of a replica, a 503.
"""

from __future__ import annotations

import grpc

from kvcore.errors import InternalError, KVError, Unavailable, error_from_code

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


# gRPC's transport messages -> what the operator should do (first match wins).
_EXPLANATIONS = (
    (
        "WRONG_VERSION_NUMBER",
        "TLS handshake failed: central does not speak TLS (drop --tls-ca, "
        "or start central with --tls-cert and --tls-key)",
    ),
    ("CERTIFICATE_VERIFY_FAILED", "TLS handshake failed: central's certificate is not signed by --tls-ca"),
    (
        "not in peer certificate",
        "TLS handshake failed: central's certificate does not name the address "
        "in --central (its subjectAltName must; see docs/operations.md)",
    ),
    ("Tls handshake failed", "TLS handshake failed: check --tls-ca against central's certificate"),
    ("Connection refused", "connection refused: is central running at --central?"),
    (
        "before receiving SETTINGS frame",
        "central accepted the connection but does not answer (hung or overloaded?)",
    ),
    ("ping timeout", "central stopped answering keepalive pings (hung, or the network dropped it)"),
)


def explain_transport(details: str) -> str:
    """A transport failure's cause in the operator's terms, keeping gRPC's text after it."""
    for needle, meaning in _EXPLANATIONS:
        if needle in details:
            return f"{meaning} [{details}]"
    return details or "no details"


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
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return Unavailable.deadline_passed(f"deadline exceeded: {details}")
    if code in _UNAVAILABLE:
        # The body a REST client gets says only this; the cause is for the operator.
        return Unavailable("central unavailable", detail=explain_transport(details))
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return Unavailable("central refused the cluster secret")
    # A status central's servicers never send (no edgekv code): gRPC's own text (message
    # size, unimplemented method, ...) stays in the log, not in a client's response.
    return InternalError("central failed the call", detail=f"{code.name}: {details}")
