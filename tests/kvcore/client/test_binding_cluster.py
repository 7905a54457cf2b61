"""Every binding method, sync and async, against central and a replica of a real cluster."""

from __future__ import annotations

import asyncio
import time

import pytest
from helpers.dev_cluster import PROPAGATION_DELAY_S, Cluster

from kvcore import errors
from kvcore.client import AsyncKVNamespace, KVNamespace

pytestmark = pytest.mark.timeout(60)
WHERE = ["central", "us"]
AWKWARD = "dir/sub?q=1#frag 100%:ok!ü"


@pytest.mark.parametrize("where", WHERE)
def test_sync_binding_every_method(cluster: Cluster, namespace: str, where: str) -> None:
    with KVNamespace(cluster.endpoint(where), cluster.account_id, namespace, cluster.token) as kv:
        assert kv.get("missing") is None
        assert kv.get_with_metadata("missing") == (None, None)
        assert kv.get_with_version("missing") == (None, None)

        kv.put("text", "héllo")
        assert kv.get("text") == "héllo"
        assert kv.get("text", "bytes") == "héllo".encode()
        kv.put("json", {"a": [1, 2], "b": None})
        assert kv.get("json", "json") == {"a": [1, 2], "b": None}
        kv.put(AWKWARD, bytes(range(256)))
        assert kv.get(AWKWARD, "bytes") == bytes(range(256))
        assert kv.get(AWKWARD, "bytes", consistency="strong") == bytes(range(256))

        kv.put("meta", "v", metadata={"owner": "me"}, expiration_ttl=300)
        assert kv.get_with_metadata("meta") == ("v", {"owner": "me"})
        assert kv.get_with_metadata("text") == ("héllo", None)
        expires = int(time.time()) + 600
        kv.put("exp", "v", expiration=expires)

        page = kv.list()
        names = [k["name"] for k in page.keys]
        assert names == sorted([AWKWARD, "exp", "json", "meta", "text"], key=lambda n: n.encode())
        assert page.list_complete and page.cursor is None
        by_name = {k["name"]: k for k in page.keys}
        assert by_name["meta"]["metadata"] == {"owner": "me"} and "expiration" in by_name["meta"]
        assert by_name["exp"]["expiration"] == expires
        assert "metadata" not in by_name["text"] and "expiration" not in by_name["text"]

        kv.delete("text")
        assert kv.get("text") is None
        kv.delete("text")  # a missing key deletes fine


@pytest.mark.parametrize("where", WHERE)
def test_list_pages_follow_cursor(cluster: Cluster, namespace: str, where: str) -> None:
    with cluster.admin() as admin:
        admin.bulk_put(
            namespace, [{"key": f"p/{i:03d}", "value": "v"} for i in range(45)] + [{"key": "q", "value": "v"}]
        )
    with KVNamespace(cluster.endpoint(where), cluster.account_id, namespace, cluster.token) as kv:
        names: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = kv.list(prefix="p/", limit=10, cursor=cursor)
            names += [k["name"] for k in page.keys]
            pages += 1
            if page.list_complete:
                break
            cursor = page.cursor
        assert names == [f"p/{i:03d}" for i in range(45)]
        assert pages >= 5


@pytest.mark.parametrize("where", WHERE)
def test_sync_conditional_writes(cluster: Cluster, namespace: str, where: str) -> None:
    with KVNamespace(cluster.endpoint(where), cluster.account_id, namespace, cluster.token) as kv:
        kv.put("c", "1", if_none_match=True)
        with pytest.raises(errors.PreconditionFailed):
            kv.put("c", "x", if_none_match=True)
        value, v1 = kv.get_with_version("c", consistency="strong")
        assert value == "1" and v1
        kv.put("c", "2", if_match=v1)
        with pytest.raises(errors.PreconditionFailed):
            kv.put("c", "x", if_match=v1)
        value, v2 = kv.get_with_version("c", consistency="strong")
        assert value == "2" and v2 != v1
        with pytest.raises(errors.PreconditionFailed):
            kv.delete("c", if_match=v1)
        kv.delete("c", if_match=v2)
        assert kv.get("c", consistency="strong") is None


@pytest.mark.parametrize("where", WHERE)
async def test_async_binding_every_method(cluster: Cluster, namespace: str, where: str) -> None:
    async with AsyncKVNamespace(cluster.endpoint(where), cluster.account_id, namespace, cluster.token) as kv:
        assert await kv.get("missing") is None
        assert await kv.get_with_metadata("missing") == (None, None)
        await kv.put("k", "v", metadata=[1, "two"], expiration_ttl=120)
        assert await kv.get("k") == "v"
        assert await kv.get("k", "bytes") == b"v"
        assert await kv.get_with_metadata("k") == ("v", [1, "two"])
        await kv.put("j", [1, {"x": True}])
        assert await kv.get("j", "json", consistency="strong") == [1, {"x": True}]
        await kv.put(AWKWARD, b"\x00")
        assert await kv.get(AWKWARD, "bytes") == b"\x00"
        page = await kv.list()
        assert [k["name"] for k in page.keys] == sorted([AWKWARD, "j", "k"], key=lambda n: n.encode())
        assert page.list_complete
        assert (await kv.list(prefix="k")).keys[0] == {
            "name": "k",
            "metadata": [1, "two"],
            "expiration": page.keys[-1]["expiration"],
        }
        _, version = await kv.get_with_version("k", consistency="strong")
        await kv.put("k", "v2", if_match=version)
        with pytest.raises(errors.PreconditionFailed):
            await kv.put("k", "v3", if_match=version)
        with pytest.raises(errors.PreconditionFailed):
            await kv.put("k", "v3", if_none_match=True)
        await kv.delete("k")
        assert await kv.get("k") is None
        await kv.put("fresh", "1", if_none_match=True)
        assert await kv.get("fresh") == "1"


def test_errors_from_the_cluster(cluster: Cluster, namespace: str) -> None:
    with KVNamespace(cluster.regions["eu"], cluster.account_id, "0" * 32, cluster.token) as kv:
        with pytest.raises(errors.NamespaceNotFound):
            kv.get("k")
        with pytest.raises(errors.NamespaceNotFound):
            kv.put("k", "v")
    with (
        KVNamespace(cluster.central, cluster.account_id, namespace, "not-a-token") as kv,
        pytest.raises(errors.AuthenticationError),
    ):
        kv.get("k")
    with KVNamespace(cluster.central, cluster.account_id, namespace, cluster.token) as kv:
        with pytest.raises(errors.ValidationError):
            kv.put("k", "v", expiration_ttl=5)
        kv.put("k", "{not json")
        with pytest.raises(errors.ValidationError):
            kv.get("k", "json")


async def test_regions_see_writes_from_other_regions(cluster: Cluster, namespace: str) -> None:
    """A create is served everywhere at once; an update within the propagation delay,
    and at once with consistency='strong'."""
    bindings = {
        r: AsyncKVNamespace(url, cluster.account_id, namespace, cluster.token)
        for r, url in cluster.regions.items()
    }
    try:
        assert await bindings["eu"].get("x") is None  # a negative entry in eu
        await bindings["us"].put("x", "1")
        acked = time.monotonic()
        for region in ("eu", "ap"):
            # C1: pushed at once; the bound is the stream's fan-out latency (p99 < 100 ms).
            while await bindings[region].get("x") != "1":
                assert time.monotonic() - acked < 0.25, f"create not visible in {region} within 250 ms"
                await asyncio.sleep(0.005)
        await bindings["us"].put("x", "2")
        assert await bindings["ap"].get("x", consistency="strong") == "2"
        deadline = time.monotonic() + PROPAGATION_DELAY_S + 3
        while await bindings["eu"].get("x") != "2":
            assert time.monotonic() < deadline, "update did not reach eu in time"
            await asyncio.sleep(0.1)
    finally:
        for kv in bindings.values():
            await kv.aclose()
