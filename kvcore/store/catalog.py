"""In-memory mirror of namespaces and tokens.

Every entry read and write first checks that the namespace belongs to the account;
doing that against a dict keeps a point read at a single RocksDB get. Tokens are
looked up by secret hash on every request, so that lookup is a dict too. The mirror
is loaded at open and changed only by the writer thread, after a batch is durable.

`CatalogView` is the writer's view while it builds a group: an operation layer over a
group layer over the mirror, so later operations in a group see earlier ones and a
failed operation's changes are dropped alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from kvcore.model import Namespace, Token


class Catalog:
    def __init__(self, namespaces: Iterable[Namespace] = (), tokens: Iterable[Token] = ()) -> None:
        # Readers use single dict lookups (atomic under the GIL) without the lock;
        # anything that iterates copies under it, since the writer may be mutating.
        self._lock = threading.Lock()
        self.namespaces: dict[str, Namespace] = {}
        self.titles: dict[tuple[str, str], str] = {}
        self.by_account: dict[str, set[str]] = {}
        self.tokens: dict[str, Token] = {}
        self.by_hash: dict[str, Token] = {}
        for ns in namespaces:
            self.set_namespace(ns.id, ns)
        for token in tokens:
            self.set_token(token.id, token)

    # -- mutation (writer thread only)

    def set_namespace(self, namespace_id: str, ns: Namespace | None) -> None:
        with self._lock:
            # Overwrite rather than pop-then-add: lock-free readers must never see a
            # renamed namespace briefly missing.
            old = self.namespaces.get(namespace_id)
            if ns is None:
                self.namespaces.pop(namespace_id, None)
            if old is not None:
                self.titles.pop((old.account_id, old.title), None)
                ids = self.by_account.get(old.account_id)
                if ids is not None:
                    ids.discard(namespace_id)
                    if not ids:
                        del self.by_account[old.account_id]
            if ns is not None:
                self.namespaces[namespace_id] = ns
                self.titles[(ns.account_id, ns.title)] = namespace_id
                self.by_account.setdefault(ns.account_id, set()).add(namespace_id)

    def set_token(self, token_id: str, token: Token | None) -> None:
        with self._lock:
            old = self.tokens.pop(token_id, None)
            if old is not None and self.by_hash.get(old.secret_hash) is old:
                del self.by_hash[old.secret_hash]
                # Two tokens may share a secret (a fixed dev secret reused); keep the other.
                for other in self.tokens.values():
                    if other.secret_hash == old.secret_hash:
                        self.by_hash[other.secret_hash] = other
                        break
            if token is not None:
                self.tokens[token_id] = token
                self.by_hash[token.secret_hash] = token

    # -- snapshots (any thread)

    def account_namespaces(self, account_id: str) -> list[Namespace]:
        with self._lock:
            return [self.namespaces[i] for i in self.by_account.get(account_id, ())]

    def all_namespaces(self) -> list[Namespace]:
        with self._lock:
            return list(self.namespaces.values())

    def all_tokens(self) -> list[Token]:
        with self._lock:
            return list(self.tokens.values())


class CatalogView:
    """The catalog as the writer sees it while building one group (writer thread only)."""

    def __init__(self, base: Catalog) -> None:
        self._base = base
        self._ns_group: dict[str, Namespace | None] = {}
        self._ns_op: dict[str, Namespace | None] = {}
        self._tok_group: dict[str, Token | None] = {}
        self._tok_op: dict[str, Token | None] = {}

    def namespace(self, namespace_id: str) -> Namespace | None:
        for layer in (self._ns_op, self._ns_group):
            if namespace_id in layer:
                return layer[namespace_id]
        return self._base.namespaces.get(namespace_id)

    def title_owner(self, account_id: str, title: str) -> str | None:
        """The id of the live namespace of this account with this title, if any."""
        for layer in (self._ns_op, self._ns_group):
            for ns_id, ns in layer.items():
                if (
                    ns is not None
                    and ns.account_id == account_id
                    and ns.title == title
                    and self.namespace(ns_id) == ns
                ):
                    return ns_id
        base_id = self._base.titles.get((account_id, title))
        if base_id is not None:
            current = self.namespace(base_id)
            if current is not None and current.title == title:
                return base_id
        return None

    def namespace_count(self, account_id: str) -> int:
        base_ids = self._base.by_account.get(account_id, set())
        count = len(base_ids)
        for ns_id in self._ns_op.keys() | self._ns_group.keys():
            live = self.namespace(ns_id) is not None
            if ns_id in base_ids:
                count -= not live
            else:
                current = self.namespace(ns_id)
                count += current is not None and current.account_id == account_id
        return count

    def token(self, token_id: str) -> Token | None:
        for layer in (self._tok_op, self._tok_group):
            if token_id in layer:
                return layer[token_id]
        return self._base.tokens.get(token_id)

    def set_namespace(self, namespace_id: str, ns: Namespace | None) -> None:
        self._ns_op[namespace_id] = ns

    def set_token(self, token_id: str, token: Token | None) -> None:
        self._tok_op[token_id] = token

    # -- operation and group boundaries

    def commit_op(self) -> None:
        self._ns_group.update(self._ns_op)
        self._tok_group.update(self._tok_op)
        self.rollback_op()

    def rollback_op(self) -> None:
        self._ns_op.clear()
        self._tok_op.clear()

    def publish(self) -> None:
        """Apply the group's changes to the mirror, once its batch is durable."""
        for ns_id, ns in self._ns_group.items():
            self._base.set_namespace(ns_id, ns)
        for token_id, token in self._tok_group.items():
            self._base.set_token(token_id, token)
