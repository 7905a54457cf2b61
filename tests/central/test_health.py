"""Central serves the standard gRPC health service and HTTP health endpoints."""

from __future__ import annotations

from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc


async def test_grpc_health_and_http_probes(central_factory: Any) -> None:
    central = central_factory()
    async with grpc.aio.insecure_channel(central.grpc) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "edgekv.v1.KV", "edgekv.v1.Replication", "edgekv.v1.Admin"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    assert httpx.get(f"{central.http}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{central.http}/readyz").status_code == 200
    assert httpx.get(f"{central.http}/openapi.json").json()["paths"]
