"""`create_token(store, ...)`: a token written straight into a store (`PutTokenOp.new`
then `store.run`), for tests that set up a store in process; its (Token, secret)."""

from __future__ import annotations

from typing import Any

from kvcore.model import Permission, Token
from kvcore.store.ops import PutTokenOp


def create_token(
    store: Any, account_id: str, permission: Permission | str, secret: str | None = None
) -> tuple[Token, str]:
    op, secret = PutTokenOp.new(account_id, permission, secret, store.clock.now())
    return store.run(op), secret
