"""One error tree for the whole system.

Every class carries, as data, the three ways it is spoken on the wire: the HTTP
status, the Cloudflare API error code and the gRPC status name. The REST app renders
any `KVError` into Cloudflare's failure envelope with one handler; the gRPC adapter
maps it to a status (and back, by `code`) with one table. Nothing here imports a
transport: gRPC statuses are kept as their names.

Beside the tree, `StartupError` is what an operator sees when a process cannot start
(a port in use, a data dir locked or unusable, a TLS file missing): one line, printed
by the command without a traceback, and a non-zero exit.
"""

from __future__ import annotations

from typing import ClassVar


class StartupError(Exception):
    """A process cannot start; the message is the whole line shown to the operator."""


class KVError(Exception):
    """Base of every error edgekv reports to a client."""

    http_status: ClassVar[int] = 400
    code: ClassVar[int] = 10001
    grpc_status: ClassVar[str] = "INVALID_ARGUMENT"
    default_message: ClassVar[str] = "bad request"

    def __init__(self, message: str | None = None, *, detail: str = "") -> None:
        self.message = message or self.default_message
        # For the operator (logs, the CLI), never rendered to an API client: it may hold
        # transport text and internal addresses.
        self.detail = detail
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class ValidationError(KVError):
    """Malformed input: a field out of its limits, unparsable JSON, a bad parameter."""

    http_status = 400
    code = 10001
    grpc_status = "INVALID_ARGUMENT"
    default_message = "invalid request"


class PayloadTooLarge(ValidationError):
    """A value, metadata or bulk body over its size limit."""

    http_status = 413
    code = 10011
    default_message = "payload too large"


class KeyTooLong(ValidationError):
    """A key over 512 bytes named in a URL (a value or metadata path, a list prefix):
    Cloudflare's storage gateway answers 414 "UTF-8 encoded length of N exceeds key
    length limit of 512." (workerd api/kv.c++, Miniflare's KV validator). Over gRPC it
    shares (10001, INVALID_ARGUMENT) with ValidationError, so a peer rebuilds it as that."""

    http_status = 414


class MalformedNamespaceId(ValidationError):
    """A namespace id not of the form Cloudflare issues (32 lowercase hex characters):
    Cloudflare answers 400 with code 10011 "could not parse UUID ..." rather than 404.
    Its code is PayloadTooLarge's too (the HTTP status tells them apart); gRPC callers
    get NamespaceNotFound for such an id."""

    http_status = 400
    code = 10011


class KeyNotFound(KVError):
    """A key with no live value. The message is Cloudflare's for a read of one
    (shared/reference/cloudflare-kv-api.md, error 10009), wherever it is raised."""

    http_status = 404
    code = 10009
    grpc_status = "NOT_FOUND"
    default_message = "get: 'key not found'"


class NamespaceNotFound(KVError):
    http_status = 404
    code = 10013
    grpc_status = "NOT_FOUND"
    default_message = "namespace not found"


class DuplicateTitle(KVError):
    http_status = 400
    code = 10014
    grpc_status = "ALREADY_EXISTS"
    default_message = "a namespace with this account ID and title already exists"


class AuthenticationError(KVError):
    """Missing, malformed or unknown API token."""

    http_status = 401
    code = 10000
    grpc_status = "UNAUTHENTICATED"
    default_message = "Authentication error"


class PermissionDenied(KVError):
    """A known token used beyond its rights: another account, or a write with a read token."""

    http_status = 403
    code = 10000
    grpc_status = "PERMISSION_DENIED"
    default_message = "Authentication error"


class InvalidApiToken(AuthenticationError):
    """A token that `GET /user/tokens/verify` cannot verify: Cloudflare answers such a
    request with code 1000 "Invalid API Token" (its KV routes answer 10000 instead)."""

    code = 1000
    default_message = "Invalid API Token"


class TokenNotRecognised(AuthenticationError):
    """Cloudflare's 9106, authentication failed (wrangler `core/handle-errors.ts`). edgekv
    never answers it; it is here so the HTTP client maps Cloudflare's own answer back."""

    code = 9106
    default_message = "Authentication error"


class Unauthorized(PermissionDenied):
    """Cloudflare's 9109, for a resource the token may not read (edgekv: `/user`, since
    an edgekv token belongs to an account, not to a user)."""

    code = 9109
    default_message = "Unauthorized to access requested resource"


class PreconditionFailed(KVError):
    """`If-Match` / `If-None-Match` did not hold (edgekv extension)."""

    http_status = 412
    code = 10030
    grpc_status = "FAILED_PRECONDITION"
    default_message = "precondition failed: the key's version does not match"


class NotFoundRoute(KVError):
    http_status = 404
    code = 7003
    grpc_status = "UNIMPLEMENTED"
    default_message = "No route for the URI"


class MethodNotAllowed(KVError):
    http_status = 405
    code = 10405
    grpc_status = "UNIMPLEMENTED"
    default_message = "method not allowed for this route"


class TooManyNamespaces(KVError):
    http_status = 400
    code = 10026
    grpc_status = "RESOURCE_EXHAUSTED"
    default_message = "namespace limit per account reached (1000)"


class Unavailable(KVError):
    """A dependency (central, for a replica) cannot be reached in time."""

    http_status = 503
    code = 10043
    grpc_status = "UNAVAILABLE"
    default_message = "service unavailable: central cannot be reached"

    @classmethod
    def deadline_passed(cls, detail: str = "") -> Unavailable:
        """Central did not answer a call within its deadline (a replica's or a client's):
        the one wording of it, whichever layer noticed."""
        return cls("central did not answer in time", detail=detail)


class LogTruncated(KVError):
    """A change-stream resume point older than the retained change log."""

    http_status = 500
    code = 10044
    grpc_status = "OUT_OF_RANGE"
    default_message = "requested changes are older than the retained change log"


class InternalError(KVError):
    http_status = 500
    code = 10002
    grpc_status = "INTERNAL"
    default_message = "internal error"


def error_classes() -> list[type[KVError]]:
    """Every class of this module below `KVError`, each parent before its children
    (breadth first, in order of definition): the one source both wire tables are
    derived from (the gRPC one below, the HTTP client's in kvcore.client._errors), as
    aiokafka derives its `for_code()` registry from the subclasses."""
    found: list[type[KVError]] = []
    level = KVError.__subclasses__()
    while level:
        found.extend(cls for cls in level if cls.__module__ == __name__)
        level = [sub for cls in level for sub in cls.__subclasses__()]
    return found


def _by_code_and_status() -> dict[tuple[int, str], type[KVError]]:
    # (code, gRPC status) is the key, since PermissionDenied shares 10000 with
    # AuthenticationError; where a child says exactly what its parent says (KeyTooLong:
    # 10001, INVALID_ARGUMENT, told apart only by its HTTP status), the parent stands for it.
    table: dict[tuple[int, str], type[KVError]] = {}
    for cls in error_classes():
        table.setdefault((cls.code, cls.grpc_status), cls)
    return table


_BY_CODE = _by_code_and_status()


def error_from_code(code: int, grpc_status: str, message: str) -> KVError:
    """Rebuild the error a peer raised, from its Cloudflare code and gRPC status name."""
    cls = _BY_CODE.get((code, grpc_status)) or _BY_CODE.get((code, "INVALID_ARGUMENT")) or InternalError
    return cls(message)
