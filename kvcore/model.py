"""Domain types shared by the store, the REST app, the gRPC adapters and the replica.

Plain frozen dataclasses: no transport, no storage. Metadata travels as its
serialized JSON text (`metadata_json`), validated once where it enters and never
re-serialized, so its size limit is checked on exactly the bytes that are stored.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass, field
from typing import Final

# API token secrets chosen by an operator (bootstrap, `edgekv token create --secret`)
# must be at least this long; generated ones are 43 characters.
MIN_TOKEN_SECRET_CHARS = 16


def token_hash(secret: str) -> str:
    """What is stored and compared for a bearer secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class Permission(enum.StrEnum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True, slots=True)
class Namespace:
    id: str  # 32 lowercase hex
    account_id: str
    title: str


@dataclass(frozen=True, slots=True)
class Entry:
    """A live value as stored: `version` is the seq of the change that wrote it."""

    key: str
    value: bytes
    metadata_json: str | None
    expiration: int | None  # epoch seconds, None = never
    version: int


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One item of a key listing."""

    name: str
    expiration: int | None
    metadata_json: str | None


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[KeyInfo]
    cursor: str  # "" when the listing is complete


@dataclass(frozen=True, slots=True)
class WriteItem:
    """One validated write: expiration already resolved to an absolute epoch second."""

    key: str
    value: bytes
    metadata_json: str | None = None
    expiration: int | None = None


@dataclass(frozen=True, slots=True)
class Condition:
    """Conditional write (edgekv extension): `if_match` holds when the key's live version
    equals it; `if_none_match` holds when the key has no live value."""

    if_match: int | None = None
    if_none_match: bool = False

    @property
    def is_set(self) -> bool:
        return self.if_match is not None or self.if_none_match


NO_CONDITION = Condition()


@dataclass(frozen=True, slots=True)
class Token:
    """An API token as central stores it: only the SHA-256 of the secret is kept."""

    id: str
    account_id: str
    permission: Permission
    secret_hash: str  # hex sha256 of the bearer secret
    created: float


class ChangeKind(enum.IntEnum):
    # Values are wire values (see proto ChangeKind) and persisted in the change log.
    KEY_CREATE = 1
    KEY_UPDATE = 2
    KEY_DELETE = 3
    NAMESPACE_CREATE = 4
    NAMESPACE_RENAME = 5
    NAMESPACE_DELETE = 6
    TOKEN_PUT = 7
    TOKEN_REVOKE = 8

    @property
    def is_lazy(self) -> bool:
        """Updates and deletes are coalesced and held up to the propagation delay;
        everything else (creates, namespaces, tokens) is pushed at once."""
        return self in (ChangeKind.KEY_UPDATE, ChangeKind.KEY_DELETE)


KEY_KINDS: Final = (ChangeKind.KEY_CREATE, ChangeKind.KEY_UPDATE, ChangeKind.KEY_DELETE)
"""The changes of one key (the rest are of namespaces and tokens)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as recorded in the change log.

    `value` is filled only when a change is shipped with its value (a small create, or
    an update of a key a replica reported hot); the log itself stores no values.
    """

    seq: int
    kind: ChangeKind
    commit_time: float  # central's wall clock at commit, for replication lag
    namespace_id: str = ""
    account_id: str = ""
    key: str = ""
    expiration: int | None = None
    metadata_json: str | None = None
    title: str = ""
    token: Token | None = None
    value: bytes | None = None
    has_value: bool = field(default=False)

    @property
    def version(self) -> int:
        return self.seq


@dataclass(frozen=True, slots=True)
class WriteResult:
    """The outcome of a durable single-key write (or of a no-op delete: seq 0)."""

    seq: int
    created: bool
    commit_time: float


@dataclass(frozen=True, slots=True)
class BulkResult:
    successful_key_count: int
    unsuccessful_keys: list[str]
    seq: int  # last seq of the batch (0 when nothing changed)


@dataclass(frozen=True, slots=True)
class ReadResult:
    """A value read by a backend; `age_s` is how old the served copy is (0 at central)."""

    entry: Entry
    age_s: float = 0.0
    source: str = "central"  # "central", "cache" or "read-through"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a replica needs before applying changes: every namespace and token."""

    namespaces: list[Namespace]
    tokens: list[Token]


@dataclass(frozen=True, slots=True)
class ChangeBatch:
    """One message of the change stream.

    `safe_seq`: every change with seq <= safe_seq has been sent; a replica persists it
    and resumes from it. Lazily held updates mean a batch may carry creates newer than
    updates still pending at central, so the highest seq seen is not a safe resume point.
    """

    changes: list[Change]
    safe_seq: int
    committed_seq: int
    reset: bool = False
    snapshot: Snapshot | None = None
    replay: bool = False  # catch-up from the log: lag metrics skip these changes
    heartbeat: bool = False  # no changes: proof of life after a silence (replica/stream.py)
