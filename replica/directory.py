"""The namespaces and API tokens a replica knows, kept by the change stream. No I/O.

The stream's first batch carries a snapshot of every namespace and token (`load`);
after it, central pushes every namespace and token change at once (`apply`), so the
map is as current as the stream. Until the first snapshot nothing is known here
(`loaded` is False) and every account check is left to central.

The account rule (DESIGN.md, Cloudflare's): a namespace of another account is
`NamespaceNotFound`, never a hint that it exists.
"""

from __future__ import annotations

from kvcore import limits
from kvcore.errors import NamespaceNotFound
from kvcore.model import Change, ChangeKind, Namespace, Snapshot, Token


class Directory:
    """`namespaces` (id -> Namespace) and `tokens` (secret hash -> Token) as last seen
    on the stream; read them, change them only through the methods."""

    def __init__(self) -> None:
        self.loaded = False
        self.namespaces: dict[str, Namespace] = {}
        self.tokens: dict[str, Token] = {}
        self._hash_of: dict[str, str] = {}  # token id -> secret hash

    # ------------------------------------------------------------------ questions

    def owns(self, account_id: str, namespace_id: str) -> bool:
        """True when the namespace is known here and belongs to the account (local state
        may answer); False when it is not known here (ask central, which checks).
        Raises NamespaceNotFound when it is known to belong to another account."""
        ns = self.namespaces.get(namespace_id)
        if ns is None:
            return False
        if ns.account_id != account_id:
            raise NamespaceNotFound()
        return True

    def namespace(self, account_id: str, namespace_id: str) -> Namespace | None:
        """The account's namespace as known here, or None (unknown, or another account's)."""
        ns = self.namespaces.get(namespace_id)
        return ns if ns is not None and ns.account_id == account_id else None

    def listing(
        self, account_id: str, page: int, per_page: int, order: str, direction: str
    ) -> tuple[list[Namespace], int] | None:
        """One page of the account's namespaces as known here and their total, ordered as
        central orders them (`order` "id" or "title", `direction` "asc" or "desc"); None
        before the first snapshot. Raises ValidationError for bad paging (kvcore.limits)."""
        if not self.loaded:
            return None
        page, per_page = limits.validate_page(page, per_page)
        limits.validate_order(order, direction)
        mine = [ns for ns in self.namespaces.values() if ns.account_id == account_id]
        mine.sort(key=lambda n: n.title if order == "title" else n.id, reverse=direction == "desc")
        start = (page - 1) * per_page
        return mine[start : start + per_page], len(mine)

    # ------------------------------------------------------------------ changes

    def load(self, snap: Snapshot) -> set[str]:
        """Replace everything with a snapshot; returns the ids of namespaces that were
        known before and are gone now (their keys must go too)."""
        namespaces = {ns.id: ns for ns in snap.namespaces}
        gone = set(self.namespaces) - set(namespaces) if self.loaded else set()
        self.namespaces = namespaces
        self.tokens = {t.secret_hash: t for t in snap.tokens}
        self._hash_of = {t.id: t.secret_hash for t in snap.tokens}
        self.loaded = True
        return gone

    def apply(self, change: Change) -> None:
        """A namespace create/rename/delete or token put/revoke from the stream (other
        kinds are not the directory's and are ignored)."""
        kind = change.kind
        if kind in (ChangeKind.NAMESPACE_CREATE, ChangeKind.NAMESPACE_RENAME):
            self.add(Namespace(change.namespace_id, change.account_id, change.title))
        elif kind is ChangeKind.NAMESPACE_DELETE:
            self.namespaces.pop(change.namespace_id, None)
        elif kind is ChangeKind.TOKEN_PUT and change.token is not None:
            self._put_token(change.token)
        elif kind is ChangeKind.TOKEN_REVOKE and change.token is not None:
            self._revoke_token(change.token)

    def add(self, ns: Namespace) -> None:
        """A namespace created or renamed (by the stream, or by a write central acknowledged)."""
        if self.loaded:
            self.namespaces[ns.id] = ns

    def _put_token(self, token: Token) -> None:
        old_hash = self._hash_of.get(token.id)
        if old_hash is not None and old_hash != token.secret_hash:
            self.tokens.pop(old_hash, None)
        self.tokens[token.secret_hash] = token
        self._hash_of[token.id] = token.secret_hash

    def _revoke_token(self, token: Token) -> None:
        """A revoke record may carry only the token's id."""
        h = self._hash_of.pop(token.id, None)
        for secret_hash in (h, token.secret_hash):
            if secret_hash:
                t = self.tokens.get(secret_hash)
                if t is not None and t.id == token.id:
                    del self.tokens[secret_hash]
