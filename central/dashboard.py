"""Central's side of the web dashboard (`/ui/api`): the regions, and where one key's
copies are across them.

Central learns the regions from the change stream: a replica announces its HTTP URL
when it subscribes (`SubscribeRequest.http_url`, kept in `ChangeFeed.announced`).

- `status`: central at a glance: committed seq, updates held for lazy propagation.
- `regions`: every announced region, connected or not (as central sees its stream),
  with the replica's own `/ui/api/status` (connected, lag, hit ratio) fetched from it.
- `locate`: central's live version of one key and the change the feed holds for it,
  and each region's copy from its `/ui/api/inspect` (which counts no read). A region
  has a newer version *on its way* when it caches a copy older than the newest change
  central committed for the key: still held by the feed (then `arrives_in_s` says
  when it is flushed) or already on the stream.

Replicas are asked concurrently with the browser's own Authorization header (each
replica checks the token itself) and at most `probe_timeout_s`; one that does not
answer is reported with the error, never waited for. `DashboardService` answers the
same routes over gRPC for replicas that relay them.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from starlette.routing import BaseRoute

from central.changefeed import ChangeFeed
from kvcore.errors import KeyNotFound
from kvcore.model import ChangeKind
from kvcore.pb import edgekv_pb2 as pb
from kvcore.pb import edgekv_pb2_grpc as pb_grpc
from kvcore.rest.backend import Backend
from kvcore.ui.api import DashboardApi, UiRequest, authorize_read, json_handler, key_target
from kvcore.ui.assets import asset_routes

PROBE_TIMEOUT_S = 1.5


class CentralDashboard:
    def __init__(
        self,
        *,
        backend: Backend,
        feed: ChangeFeed,
        propagation_delay_s: float,
        probe_timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._backend = backend
        self._feed = feed
        self._delay_s = propagation_delay_s
        self._http = httpx.AsyncClient(timeout=probe_timeout_s, follow_redirects=False)
        self.api = DashboardApi(
            {
                "/ui/api/status": json_handler(self.status),
                "/ui/api/regions": json_handler(self.regions),
                "/ui/api/locate": json_handler(self.locate),
            }
        )

    def routes(self) -> list[BaseRoute]:
        """The page's files at `/ui` and the JSON routes under `/ui/api`."""
        return [*asset_routes(), *self.api.routes()]

    async def close(self) -> None:
        await self._http.aclose()

    # -- routes

    async def status(self, req: UiRequest) -> dict[str, Any]:
        await authorize_read(self._backend, req)
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """{region: "central", committed_seq, pending_updates, propagation_delay_s, subscribers}."""
        return {
            "region": "central",
            "committed_seq": self._feed.committed_seq,
            "pending_updates": len(self._feed.held),
            "propagation_delay_s": self._delay_s,
            "subscribers": sum(self._feed.connected_regions().values()),
        }

    async def regions(self, req: UiRequest) -> dict[str, Any]:
        """{central: snapshot(), regions: [{region, url, connected, status | None, error | None}]}."""
        _, account_id = await authorize_read(self._backend, req)
        rows = self._region_rows()
        answers = await asyncio.gather(
            *(self._ask(row["url"], "status", {"account_id": account_id}, req.authorization) for row in rows)
        )
        for row, (result, error) in zip(rows, answers, strict=True):
            row["status"], row["error"] = result, error
        return {"central": self.snapshot(), "regions": rows}

    async def locate(self, req: UiRequest) -> dict[str, Any]:
        """{key, central: {version, expiration, held}, regions: [{region, url, connected,
        copy | None, error | None, newer_on_its_way, incoming_seq, arrives_in_s}]}.

        `held` is {seq, kind: "update"|"delete", flush_in_s} or None."""
        _, account_id = await authorize_read(self._backend, req)
        namespace_id, key = key_target(req)
        await self._backend.get_namespace(account_id, namespace_id)
        try:
            entry = (await self._backend.get(account_id, namespace_id, key, metadata_only=True)).entry
        except KeyNotFound:
            entry = None
        held_change = self._feed.held.find((namespace_id, key))
        held = None
        newest = entry.version if entry is not None else 0
        if held_change is not None:
            change, flush_in_s = held_change
            kind = "delete" if change.kind is ChangeKind.KEY_DELETE else "update"
            held = {"seq": change.seq, "kind": kind, "flush_in_s": flush_in_s}
            newest = max(newest, change.seq)
        rows = self._region_rows()
        params = {"account_id": account_id, "namespace_id": namespace_id, "key": key}
        answers = await asyncio.gather(
            *(self._ask(row["url"], "inspect", params, req.authorization) for row in rows)
        )
        for row, (copy, error) in zip(rows, answers, strict=True):
            row["copy"], row["error"] = copy, error
            version = copy["version"] if copy and copy.get("cached") else None
            on_its_way = version is not None and newest > version
            row["newer_on_its_way"] = on_its_way
            row["incoming_seq"] = newest if on_its_way else None
            row["arrives_in_s"] = held["flush_in_s"] if on_its_way and held is not None else None
        return {
            "key": key,
            "central": {
                "version": entry.version if entry is not None else None,
                "expiration": entry.expiration if entry is not None else None,
                "held": held,
            },
            "regions": rows,
        }

    # -- helpers

    def _region_rows(self) -> list[dict[str, Any]]:
        connected = self._feed.connected_regions()
        names = sorted(set(self._feed.announced) | set(connected))
        return [
            {"region": n, "url": self._feed.announced.get(n, ""), "connected": connected.get(n, 0) > 0}
            for n in names
        ]

    async def _ask(
        self, base_url: str, route: str, params: dict[str, str], authorization: str
    ) -> tuple[dict[str, Any] | None, str | None]:
        """(result, None) from a replica's `/ui/api/{route}`, or (None, why not)."""
        if not base_url:
            return None, "the replica announced no HTTP URL"
        headers = {"authorization": authorization} if authorization else {}
        try:
            r = await self._http.get(f"{base_url}/ui/api/{route}", params=params, headers=headers)
            body = r.json()
        except (httpx.HTTPError, ValueError) as exc:
            return None, f"unreachable: {type(exc).__name__}"
        if not isinstance(body, dict) or not body.get("success"):
            errors = body.get("errors") if isinstance(body, dict) else None
            message = errors[0].get("message") if errors else f"HTTP {r.status_code}"
            return None, str(message)
        result = body.get("result")
        return (result if isinstance(result, dict) else None), None


class DashboardService(pb_grpc.DashboardServicer):  # type: ignore[misc]
    """The dashboard routes over gRPC, for replicas relaying their `/ui/api` calls."""

    def __init__(self, api: DashboardApi) -> None:
        self._api = api

    async def Relay(self, request: pb.DashboardRequest, context: Any) -> pb.DashboardResponse:
        status, body = await self._api.answer(request.path, request.query, request.authorization)
        return pb.DashboardResponse(status=status, body=body)
