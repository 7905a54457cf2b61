"""The REST hot path for repeat reads of a cached value (kvcore.rest.fastpath `HotReads` and
`ReplicaBackend.cached_read`), in process over ASGI: it answers exactly as the full
path does, counts what the full path counts, and gives way to it whenever anything
about the request or the token changed (a revoked token is refused at once)."""

from __future__ import annotations

from typing import Any

import httpx
from helpers.hot_edge import ACC, NS, OTHER_SECRET, PATH, SECRET, hot_edge, token

from kvcore.clock import ManualClock
from kvcore.model import Change, ChangeBatch, ChangeKind


def _get(client: httpx.AsyncClient, secret: str, path: str = PATH) -> Any:
    return client.get(path, headers={"authorization": f"Bearer {secret}"})


def _hot_scope() -> dict[str, Any]:
    """An ASGI scope of a repeat GET of the hot key, as a server would pass it."""
    return {
        "type": "http",
        "method": "GET",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": [(b"host", b"r"), (b"authorization", f"Bearer {SECRET}".encode())],
    }


async def test_repeat_reads_answer_like_the_first_and_are_counted() -> None:
    app, edge, metrics, clock = hot_edge()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        first = await _get(c, SECRET)
        # The first read took the full path and left the memo the next ones use.
        assert app.hot is not None and (PATH.encode(), f"Bearer {SECRET}".encode()) in app.hot
        freq = edge.cache.frequency((NS, "hot"))
        clock.advance(3)
        repeats = [await _get(c, SECRET) for _ in range(5)]
    assert first.status_code == 200 and first.content == b"value"
    for r in repeats:
        assert r.status_code == 200 and r.content == b"value"
        assert {k: v for k, v in r.headers.items() if k != "age"} == {
            k: v for k, v in first.headers.items() if k != "age"
        }
        assert r.headers["age"] == "3" and r.headers["x-edgekv-source"] == "cache"
    assert edge.cache.frequency((NS, "hot")) == freq + 5  # every read counted in the sketch
    text = metrics.render().decode()
    assert 'edgekv_cache_requests_total{region="us",result="hit"} 6.0' in text
    assert 'edgekv_http_requests_total{code="200",method="GET",region="us",route="values"} 6.0' in text


async def test_revocation_other_accounts_and_changes_take_the_full_path() -> None:
    app, edge, _, clock = hot_edge()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        assert (await _get(c, SECRET)).status_code == 200
        assert (await _get(c, SECRET)).status_code == 200
        # Another account's token, same path: 403 every time, never the value.
        assert (await _get(c, OTHER_SECRET)).status_code == 403
        assert (await _get(c, OTHER_SECRET)).status_code == 403
        # A newer version from the stream is served at once (C4: never an older one).
        edge.apply_batch(
            ChangeBatch(
                [
                    Change(
                        6,
                        ChangeKind.KEY_UPDATE,
                        clock.now(),
                        namespace_id=NS,
                        account_id=ACC,
                        key="hot",
                        value=b"newer",
                        has_value=True,
                    )
                ],
                6,
                6,
            )
        )
        r = await _get(c, SECRET)
        assert r.content == b"newer" and r.headers["etag"] == '"6"'
        # Revoked: refused on the very next request, memo or not.
        revoke = Change(7, ChangeKind.TOKEN_REVOKE, clock.now(), token=token("t1", ACC, SECRET))
        edge.apply_batch(ChangeBatch([revoke], 7, 7))
        assert (await _get(c, SECRET)).status_code == 401


async def test_age_and_expiration_headers_follow_the_clock_and_expiry_ends_the_hot_path() -> None:
    clock0 = ManualClock()
    expiration = int(clock0.now()) + 10
    app, edge, _, clock = hot_edge(expiration)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        first = await _get(c, SECRET)
        ages = []
        for step_s in (0.4, 0.5, 0.2, 1.0, 2.9):  # whole ages 0, 0, 1, 2, 5
            clock.advance(step_s)
            r = await _get(c, SECRET)
            assert r.content == b"value" and r.headers["expiration"] == str(expiration)
            assert {k: v for k, v in r.headers.items() if k != "age"} == {
                k: v for k, v in first.headers.items() if k != "age"
            }
            ages.append(r.headers["age"])
    assert ages == ["0", "0", "1", "2", "5"]
    # Expired: the hot path gives way (the full path drops the copy and reads through),
    # counting nothing itself.
    clock.advance(expiration - clock.now())
    hits, freq = edge.hits, edge.cache.frequency((NS, "hot"))
    assert app.hot is not None
    assert app.hot.answer(_hot_scope()) is None
    assert (edge.hits, edge.cache.frequency((NS, "hot"))) == (hits, freq)


async def test_a_repeat_is_recognised_by_raw_and_decoded_path_together() -> None:
    """The memo is keyed by the raw path as received; a request with the same raw bytes
    but another decoded path (which the table would route differently) is not a repeat."""
    app, edge, _, _ = hot_edge()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as c:
        assert (await _get(c, SECRET)).status_code == 200
    assert app.hot is not None
    scope = _hot_scope()
    hits = edge.hits
    answer = app.hot.answer(scope)
    assert answer is not None and answer[1]["body"] == b"value" and edge.hits == hits + 1
    assert app.hot.answer({**scope, "path": PATH + "/"}) is None
    assert app.hot.answer({**scope, "query_string": b"strong=true"}) is None
    assert app.hot.answer({**scope, "method": "HEAD"}) is None
    assert app.hot.answer({**scope, "headers": [(b"host", b"r")]}) is None
    assert edge.hits == hits + 1  # none of those counted
