"""The binding's request shapes and response handling, against an in-memory fake API."""

from __future__ import annotations

import httpx
import pytest
from fake_api_support import ACCOUNT, TOKEN, FakeAPI

from kvcore import errors
from kvcore.client import AsyncKVNamespace, KVClient, KVNamespace

pytestmark = pytest.mark.timeout(10)
ENDPOINT = "http://kv.test"


@pytest.fixture
def api() -> FakeAPI:
    fake = FakeAPI()
    fake.namespaces["a" * 32] = "ns"
    fake.data["a" * 32] = {}
    return fake


@pytest.fixture
def kv(api: FakeAPI) -> KVNamespace:
    client = httpx.Client(transport=api.transport())
    return KVNamespace(ENDPOINT, ACCOUNT, "a" * 32, TOKEN, http_client=client)


def test_put_get_types_and_raw_body(kv: KVNamespace, api: FakeAPI) -> None:
    kv.put("k", "héllo")
    put = api.requests[-1]
    assert put.method == "PUT"
    assert put.headers["content-type"] == "application/octet-stream"
    assert put.url.raw_path.endswith(b"/values/k")
    assert kv.get("k") == "héllo"
    assert kv.get("k", "bytes") == "héllo".encode()
    kv.put("j", {"a": [1]})
    assert kv.get("j", "json") == {"a": [1]}
    assert kv.get("missing") is None
    assert kv.get("missing", "json") is None


def test_strong_reads_and_awkward_keys_round_trip(kv: KVNamespace, api: FakeAPI) -> None:
    key = "a/b?c#d e%f:g!ü"
    kv.put(key, b"\x00\x01")
    assert kv.get(key, "bytes", consistency="strong") == b"\x00\x01"
    assert api.requests[-1].url.params["consistency"] == "strong"
    assert key in api.data["a" * 32]


def test_metadata_goes_multipart_and_comes_back(kv: KVNamespace, api: FakeAPI) -> None:
    kv.put("m", "v", metadata={"owner": "me"}, expiration_ttl=120)
    put = api.requests[-1]
    assert put.headers["content-type"].startswith("multipart/form-data")
    assert put.url.params["expiration_ttl"] == "120"
    assert kv.get_with_metadata("m") == ("v", {"owner": "me"})
    assert kv.get_with_metadata("none") == (None, None)
    kv.put("plain", "v")
    assert kv.get_with_metadata("plain") == ("v", None)
    with pytest.raises(errors.PayloadTooLarge):
        kv.put("big", "v", metadata="x" * 2000)


def test_list_pages_with_cursor(kv: KVNamespace, api: FakeAPI) -> None:
    for i in range(7):
        kv.put(f"p{i}", "v", metadata={"i": i} if i == 0 else None)
    kv.put("other", "v")
    seen: list[str] = []
    cursor = None
    while True:
        page = kv.list(prefix="p", cursor=cursor, limit=10)
        seen += [k["name"] for k in page.keys]
        if page.list_complete:
            assert page.cursor is None
            break
        cursor = page.cursor
    assert seen == [f"p{i}" for i in range(7)]
    assert kv.list(prefix="p0").keys == [{"name": "p0", "metadata": {"i": 0}}]


def test_conditional_writes(kv: KVNamespace) -> None:
    kv.put("c", "1", if_none_match=True)
    with pytest.raises(errors.PreconditionFailed):
        kv.put("c", "1", if_none_match=True)
    value, version = kv.get_with_version("c")
    assert value == "1" and version is not None
    kv.put("c", "2", if_match=version)
    with pytest.raises(errors.PreconditionFailed):
        kv.put("c", "3", if_match=version)
    _, v2 = kv.get_with_version("c")
    with pytest.raises(errors.PreconditionFailed):
        kv.delete("c", if_match=version)
    kv.delete("c", if_match=v2)
    assert kv.get_with_version("c") == (None, None)
    kv.delete("c")  # deleting a missing key is fine


def test_errors_surface_as_the_error_tree(api: FakeAPI) -> None:
    client = httpx.Client(transport=api.transport())
    with pytest.raises(errors.NamespaceNotFound):
        KVNamespace(ENDPOINT, ACCOUNT, "b" * 32, TOKEN, http_client=client).get("k")
    with pytest.raises(errors.AuthenticationError):
        KVNamespace(ENDPOINT, ACCOUNT, "a" * 32, "wrong", http_client=client).get("k")
    with pytest.raises(errors.PermissionDenied):
        KVNamespace(ENDPOINT, "f" * 32, "a" * 32, TOKEN, http_client=client).get("k")


def test_unreachable_endpoint_is_unavailable() -> None:
    with (
        KVNamespace("http://127.0.0.1:9", ACCOUNT, "a" * 32, TOKEN, timeout=2) as kv,
        pytest.raises(errors.Unavailable),
    ):
        kv.get("k")


async def test_async_binding_does_the_same(api: FakeAPI) -> None:
    client = httpx.AsyncClient(transport=api.transport())
    async with AsyncKVNamespace(ENDPOINT, ACCOUNT, "a" * 32, TOKEN, http_client=client) as kv:
        await kv.put("k", "v", metadata=[1, 2])
        assert await kv.get("k") == "v"
        assert await kv.get("k", "bytes") == b"v"
        assert await kv.get_with_metadata("k") == ("v", [1, 2])
        assert await kv.get_with_metadata("nope") == (None, None)
        _, version = await kv.get_with_version("k")
        await kv.put("k", {"n": 1}, if_match=version)
        assert await kv.get("k", "json") == {"n": 1}
        with pytest.raises(errors.PreconditionFailed):
            await kv.put("k", "x", if_none_match=True)
        page = await kv.list()
        assert [k["name"] for k in page.keys] == ["k"] and page.list_complete
        await kv.delete("k")
        assert await kv.get("k") is None
    await client.aclose()


def test_admin_client_namespaces_keys_and_bulk(api: FakeAPI) -> None:
    api.page_size = 10
    with KVClient(ENDPOINT, ACCOUNT, TOKEN, http_client=httpx.Client(transport=api.transport())) as c:
        created = [c.create_namespace(f"t{i:02d}") for i in range(5)]
        with pytest.raises(errors.DuplicateTitle):
            c.create_namespace("t00")
        assert [n.title for n in c.list_namespaces(per_page=2)] == ["ns"] + [f"t{i:02d}" for i in range(5)]
        assert c.find_namespace("t03").id == created[3].id
        with pytest.raises(errors.NamespaceNotFound):
            c.find_namespace("nope")
        assert c.rename_namespace(created[0].id, "renamed").title == "renamed"
        ns = created[1].id
        items = [{"key": f"k{i:04d}", "value": str(i)} for i in range(250)]
        done: list[int] = []
        result = c.bulk_put(ns, items, batch_size=100, progress=done.append)
        assert result.successful_key_count == 250 and not result.unsuccessful_keys
        assert done == [100, 100, 50]
        assert len(c.list_keys(ns)) == 250
        assert len(c.list_keys(ns, prefix="k00")) == 100
        got = c.bulk_get(ns, [f"k{i:04d}" for i in range(150)] + ["missing"])
        assert len(got) == 151 and got["k0149"] == "149" and got["missing"] is None
        with_meta = c.bulk_get(ns, ["k0001"], with_metadata=True)
        assert with_meta == {"k0001": {"value": "1", "metadata": None}}
        assert c.bulk_delete(ns, [f"k{i:04d}" for i in range(200)], batch_size=64).successful_key_count == 200
        assert len(c.list_keys(ns)) == 50
        c.delete_namespace(ns)
        with pytest.raises(errors.NamespaceNotFound):
            c.get_namespace(ns)
