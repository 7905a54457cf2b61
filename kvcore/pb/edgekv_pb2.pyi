from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    KEY_CREATE: _ClassVar[ChangeKind]
    KEY_UPDATE: _ClassVar[ChangeKind]
    KEY_DELETE: _ClassVar[ChangeKind]
    NAMESPACE_CREATE: _ClassVar[ChangeKind]
    NAMESPACE_RENAME: _ClassVar[ChangeKind]
    NAMESPACE_DELETE: _ClassVar[ChangeKind]
    TOKEN_PUT: _ClassVar[ChangeKind]
    TOKEN_REVOKE: _ClassVar[ChangeKind]
CHANGE_KIND_UNSPECIFIED: ChangeKind
KEY_CREATE: ChangeKind
KEY_UPDATE: ChangeKind
KEY_DELETE: ChangeKind
NAMESPACE_CREATE: ChangeKind
NAMESPACE_RENAME: ChangeKind
NAMESPACE_DELETE: ChangeKind
TOKEN_PUT: ChangeKind
TOKEN_REVOKE: ChangeKind

class Namespace(_message.Message):
    __slots__ = ("id", "account_id", "title")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    id: str
    account_id: str
    title: str
    def __init__(self, id: _Optional[str] = ..., account_id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ("key", "value", "metadata_json", "has_metadata", "expiration", "version")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    metadata_json: str
    has_metadata: bool
    expiration: int
    version: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ..., metadata_json: _Optional[str] = ..., has_metadata: _Optional[bool] = ..., expiration: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class KeyInfo(_message.Message):
    __slots__ = ("name", "expiration", "metadata_json", "has_metadata")
    NAME_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_METADATA_FIELD_NUMBER: _ClassVar[int]
    name: str
    expiration: int
    metadata_json: str
    has_metadata: bool
    def __init__(self, name: _Optional[str] = ..., expiration: _Optional[int] = ..., metadata_json: _Optional[str] = ..., has_metadata: _Optional[bool] = ...) -> None: ...

class Condition(_message.Message):
    __slots__ = ("if_match", "if_none_match")
    IF_MATCH_FIELD_NUMBER: _ClassVar[int]
    IF_NONE_MATCH_FIELD_NUMBER: _ClassVar[int]
    if_match: int
    if_none_match: bool
    def __init__(self, if_match: _Optional[int] = ..., if_none_match: _Optional[bool] = ...) -> None: ...

class WriteItem(_message.Message):
    __slots__ = ("key", "value", "metadata_json", "has_metadata", "expiration")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    metadata_json: str
    has_metadata: bool
    expiration: int
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ..., metadata_json: _Optional[str] = ..., has_metadata: _Optional[bool] = ..., expiration: _Optional[int] = ...) -> None: ...

class Empty(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NamespaceRef(_message.Message):
    __slots__ = ("account_id", "namespace_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ...) -> None: ...

class CreateNamespaceRequest(_message.Message):
    __slots__ = ("account_id", "title")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    title: str
    def __init__(self, account_id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class RenameNamespaceRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "title")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    title: str
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., title: _Optional[str] = ...) -> None: ...

class ListNamespacesRequest(_message.Message):
    __slots__ = ("account_id", "page", "per_page", "order", "direction")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PER_PAGE_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    page: int
    per_page: int
    order: str
    direction: str
    def __init__(self, account_id: _Optional[str] = ..., page: _Optional[int] = ..., per_page: _Optional[int] = ..., order: _Optional[str] = ..., direction: _Optional[str] = ...) -> None: ...

class ListNamespacesResponse(_message.Message):
    __slots__ = ("namespaces", "total_count")
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[Namespace]
    total_count: int
    def __init__(self, namespaces: _Optional[_Iterable[_Union[Namespace, _Mapping]]] = ..., total_count: _Optional[int] = ...) -> None: ...

class PutRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "item", "condition")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    item: WriteItem
    condition: Condition
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., item: _Optional[_Union[WriteItem, _Mapping]] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "key", "condition")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    key: str
    condition: Condition
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., key: _Optional[str] = ..., condition: _Optional[_Union[Condition, _Mapping]] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("seq", "created", "commit_time")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    seq: int
    created: bool
    commit_time: float
    def __init__(self, seq: _Optional[int] = ..., created: _Optional[bool] = ..., commit_time: _Optional[float] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "key", "metadata_only")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_ONLY_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    key: str
    metadata_only: bool
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., key: _Optional[str] = ..., metadata_only: _Optional[bool] = ...) -> None: ...

class GetResponse(_message.Message):
    __slots__ = ("found", "entry", "as_of_seq")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    AS_OF_SEQ_FIELD_NUMBER: _ClassVar[int]
    found: bool
    entry: Entry
    as_of_seq: int
    def __init__(self, found: _Optional[bool] = ..., entry: _Optional[_Union[Entry, _Mapping]] = ..., as_of_seq: _Optional[int] = ...) -> None: ...

class BulkPutRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "items")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    items: _containers.RepeatedCompositeFieldContainer[WriteItem]
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[WriteItem, _Mapping]]] = ...) -> None: ...

class BulkDeleteRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "keys")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class BulkWriteResponse(_message.Message):
    __slots__ = ("successful_key_count", "unsuccessful_keys", "seq")
    SUCCESSFUL_KEY_COUNT_FIELD_NUMBER: _ClassVar[int]
    UNSUCCESSFUL_KEYS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    successful_key_count: int
    unsuccessful_keys: _containers.RepeatedScalarFieldContainer[str]
    seq: int
    def __init__(self, successful_key_count: _Optional[int] = ..., unsuccessful_keys: _Optional[_Iterable[str]] = ..., seq: _Optional[int] = ...) -> None: ...

class BulkGetRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "keys")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., keys: _Optional[_Iterable[str]] = ...) -> None: ...

class BulkGetResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[GetResponse, _Mapping]]] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("account_id", "namespace_id", "prefix", "limit", "cursor")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    namespace_id: str
    prefix: str
    limit: int
    cursor: str
    def __init__(self, account_id: _Optional[str] = ..., namespace_id: _Optional[str] = ..., prefix: _Optional[str] = ..., limit: _Optional[int] = ..., cursor: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys", "cursor")
    KEYS_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[KeyInfo]
    cursor: str
    def __init__(self, keys: _Optional[_Iterable[_Union[KeyInfo, _Mapping]]] = ..., cursor: _Optional[str] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("region", "from_seq", "http_url")
    REGION_FIELD_NUMBER: _ClassVar[int]
    FROM_SEQ_FIELD_NUMBER: _ClassVar[int]
    HTTP_URL_FIELD_NUMBER: _ClassVar[int]
    region: str
    from_seq: int
    http_url: str
    def __init__(self, region: _Optional[str] = ..., from_seq: _Optional[int] = ..., http_url: _Optional[str] = ...) -> None: ...

class TokenRecord(_message.Message):
    __slots__ = ("id", "account_id", "permission", "secret_hash", "created")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    id: str
    account_id: str
    permission: str
    secret_hash: str
    created: float
    def __init__(self, id: _Optional[str] = ..., account_id: _Optional[str] = ..., permission: _Optional[str] = ..., secret_hash: _Optional[str] = ..., created: _Optional[float] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("seq", "kind", "commit_time", "namespace_id", "account_id", "key", "expiration", "metadata_json", "has_metadata", "title", "token", "value", "has_value")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COMMIT_TIME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRATION_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_METADATA_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    HAS_VALUE_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: ChangeKind
    commit_time: float
    namespace_id: str
    account_id: str
    key: str
    expiration: int
    metadata_json: str
    has_metadata: bool
    title: str
    token: TokenRecord
    value: bytes
    has_value: bool
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., commit_time: _Optional[float] = ..., namespace_id: _Optional[str] = ..., account_id: _Optional[str] = ..., key: _Optional[str] = ..., expiration: _Optional[int] = ..., metadata_json: _Optional[str] = ..., has_metadata: _Optional[bool] = ..., title: _Optional[str] = ..., token: _Optional[_Union[TokenRecord, _Mapping]] = ..., value: _Optional[bytes] = ..., has_value: _Optional[bool] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("namespaces", "tokens")
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[Namespace]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenRecord]
    def __init__(self, namespaces: _Optional[_Iterable[_Union[Namespace, _Mapping]]] = ..., tokens: _Optional[_Iterable[_Union[TokenRecord, _Mapping]]] = ...) -> None: ...

class ChangeBatch(_message.Message):
    __slots__ = ("changes", "safe_seq", "committed_seq", "reset", "snapshot", "has_snapshot", "replay", "heartbeat")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    SAFE_SEQ_FIELD_NUMBER: _ClassVar[int]
    COMMITTED_SEQ_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    HAS_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    REPLAY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    safe_seq: int
    committed_seq: int
    reset: bool
    snapshot: Snapshot
    has_snapshot: bool
    replay: bool
    heartbeat: bool
    def __init__(self, changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ..., safe_seq: _Optional[int] = ..., committed_seq: _Optional[int] = ..., reset: _Optional[bool] = ..., snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., has_snapshot: _Optional[bool] = ..., replay: _Optional[bool] = ..., heartbeat: _Optional[bool] = ...) -> None: ...

class HotKey(_message.Message):
    __slots__ = ("namespace_id", "key")
    NAMESPACE_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    namespace_id: str
    key: str
    def __init__(self, namespace_id: _Optional[str] = ..., key: _Optional[str] = ...) -> None: ...

class HotKeysReport(_message.Message):
    __slots__ = ("region", "keys")
    REGION_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    region: str
    keys: _containers.RepeatedCompositeFieldContainer[HotKey]
    def __init__(self, region: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[HotKey, _Mapping]]] = ...) -> None: ...

class CreateTokenRequest(_message.Message):
    __slots__ = ("account_id", "permission", "secret")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    PERMISSION_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    permission: str
    secret: str
    def __init__(self, account_id: _Optional[str] = ..., permission: _Optional[str] = ..., secret: _Optional[str] = ...) -> None: ...

class CreateTokenResponse(_message.Message):
    __slots__ = ("token", "secret")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    token: TokenRecord
    secret: str
    def __init__(self, token: _Optional[_Union[TokenRecord, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListTokensRequest(_message.Message):
    __slots__ = ("account_id",)
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    def __init__(self, account_id: _Optional[str] = ...) -> None: ...

class ListTokensResponse(_message.Message):
    __slots__ = ("tokens",)
    TOKENS_FIELD_NUMBER: _ClassVar[int]
    tokens: _containers.RepeatedCompositeFieldContainer[TokenRecord]
    def __init__(self, tokens: _Optional[_Iterable[_Union[TokenRecord, _Mapping]]] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class StreamedWrite(_message.Message):
    __slots__ = ("id", "put", "delete", "deadline_unix_ms")
    ID_FIELD_NUMBER: _ClassVar[int]
    PUT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    id: int
    put: PutRequest
    delete: DeleteRequest
    deadline_unix_ms: int
    def __init__(self, id: _Optional[int] = ..., put: _Optional[_Union[PutRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., deadline_unix_ms: _Optional[int] = ...) -> None: ...

class WriteBatchRequest(_message.Message):
    __slots__ = ("writes",)
    WRITES_FIELD_NUMBER: _ClassVar[int]
    writes: _containers.RepeatedCompositeFieldContainer[StreamedWrite]
    def __init__(self, writes: _Optional[_Iterable[_Union[StreamedWrite, _Mapping]]] = ...) -> None: ...

class StreamedWriteResult(_message.Message):
    __slots__ = ("id", "result", "grpc_status", "error_code", "message")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    GRPC_STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    id: int
    result: WriteResponse
    grpc_status: str
    error_code: int
    message: str
    def __init__(self, id: _Optional[int] = ..., result: _Optional[_Union[WriteResponse, _Mapping]] = ..., grpc_status: _Optional[str] = ..., error_code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class WriteBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[StreamedWriteResult]
    def __init__(self, results: _Optional[_Iterable[_Union[StreamedWriteResult, _Mapping]]] = ...) -> None: ...

class DashboardRequest(_message.Message):
    __slots__ = ("path", "query", "authorization")
    PATH_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_FIELD_NUMBER: _ClassVar[int]
    path: str
    query: str
    authorization: str
    def __init__(self, path: _Optional[str] = ..., query: _Optional[str] = ..., authorization: _Optional[str] = ...) -> None: ...

class DashboardResponse(_message.Message):
    __slots__ = ("status", "body")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    status: int
    body: bytes
    def __init__(self, status: _Optional[int] = ..., body: _Optional[bytes] = ...) -> None: ...
