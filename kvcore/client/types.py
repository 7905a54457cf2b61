"""Result shapes returned by the binding and the admin client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NotRequired, TypedDict


class KeyInfo(TypedDict):
    """One listed key, as the Workers binding shows it: `expiration` and `metadata`
    are present only when the key has them."""

    name: str
    expiration: NotRequired[int]
    metadata: NotRequired[Any]


@dataclass(frozen=True, slots=True)
class ListResult:
    keys: list[KeyInfo]
    list_complete: bool
    cursor: str | None  # None once the listing is complete


@dataclass(frozen=True, slots=True)
class Namespace:
    id: str
    title: str
    supports_url_encoding: bool | None = None


@dataclass(slots=True)
class BulkResult:
    successful_key_count: int = 0
    unsuccessful_keys: list[str] = field(default_factory=list)

    def add(self, other: BulkResult) -> None:
        self.successful_key_count += other.successful_key_count
        self.unsuccessful_keys.extend(other.unsuccessful_keys)


def parse_key_info(item: Any) -> KeyInfo:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise ValueError(f"malformed key item: {item!r}")
    info: KeyInfo = {"name": item["name"]}
    expiration = item.get("expiration")
    if isinstance(expiration, int | float) and not isinstance(expiration, bool):
        info["expiration"] = int(expiration)
    if item.get("metadata") is not None:
        info["metadata"] = item["metadata"]
    return info


def parse_namespace(item: Any) -> Namespace:
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise ValueError(f"malformed namespace: {item!r}")
    support = item.get("supports_url_encoding")
    return Namespace(
        id=item["id"],
        title=str(item.get("title", "")),
        supports_url_encoding=support if isinstance(support, bool) else None,
    )


def parse_bulk_result(result: Any, sent: int) -> BulkResult:
    """A bulk write/delete result; an empty result (older servers) means all succeeded."""
    if not isinstance(result, dict) or "successful_key_count" not in result:
        return BulkResult(successful_key_count=sent)
    failed = result.get("unsuccessful_keys") or []
    return BulkResult(
        successful_key_count=int(result.get("successful_key_count") or 0),
        unsuccessful_keys=[str(k) for k in failed],
    )
