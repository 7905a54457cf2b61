"""The pure parts of kvcore.workerd: the status line, keys from paths, the capnp config."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvcore.errors import NamespaceNotFound, ValidationError
from kvcore.workerd.app import error_reply, key_of, reason_phrase
from kvcore.workerd.config import KvBinding, WorkerSpec, render_config
from kvcore.workerd.server import _ReasonTransport, with_reason


def test_the_reason_header_becomes_the_status_line() -> None:
    head = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nx-edgekv-reason: limit: 5 is low\r\n\r\n"
    assert with_reason(head) == b"HTTP/1.1 400 limit: 5 is low\r\ncontent-type: text/plain\r\n\r\n"
    plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"
    assert with_reason(plain) == plain
    assert with_reason(b"HTTP/1.1 200 OK\r\nx-edgekv-reason: x\r\n") == b"HTTP/1.1 200 x\r\n"


def test_reason_phrases_are_printable_ascii_and_bounded() -> None:
    assert reason_phrase("key 'ü\r\n' bad") == b"key '\\xfc??' bad"
    assert len(reason_phrase("x" * 1000)) == 300


def test_a_missing_namespace_is_never_a_404() -> None:
    status, headers, _ = error_reply(NamespaceNotFound())
    assert status == 400 and (b"x-edgekv-reason", b"namespace not found") in headers


def test_keys_from_paths() -> None:
    assert key_of(b"/a%20b%2Fc%3Fd=%C3%A9", True) == "a b/c?d=é"
    assert key_of(b"/100%25", True) == "100%"
    assert key_of(b"/as%20is", False) == "as%20is"
    with pytest.raises(ValidationError):
        key_of(b"/%zz", True)
    with pytest.raises(ValidationError):
        key_of(b"/..", True)


def test_config_binds_each_worker_to_its_replica(tmp_path: Path) -> None:
    spec = WorkerSpec(
        "eu",
        tmp_path / "w" / "worker.js",
        "127.0.0.1:8102",
        kv=[KvBinding("REQUESTS", "127.0.0.1:9102", 'to"ken', "ab" * 16)],
        text={"REGION": "eu"},
        fetch_loopback=True,
    )
    text = render_config([spec], config_dir=tmp_path)
    assert 'esModule = embed "w/worker.js"' in text
    assert '(name = "Authorization", value = "Bearer to\\"ken")' in text
    assert f'(name = "x-edgekv-namespace", value = "{"ab" * 16}")' in text
    assert 'globalOutbound = "eu-net"' in text and 'allow = ["public", "local"]' in text
    assert 'cfBlobHeader = "cf-blob"' in text
    with pytest.raises(ValueError):
        render_config([spec, spec], config_dir=tmp_path)


def test_the_reason_goes_on_the_final_head_not_on_a_100_continue() -> None:
    sent: list[bytes] = []

    class Out:
        def write(self, data: bytes) -> None:
            sent.append(data)

    out = _ReasonTransport(Out())  # type: ignore[arg-type]
    out.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # uvicorn's, when the app reads the body
    out.write(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nx-edgekv-reason: KeyNotFound\r\n\r\n")
    assert sent == [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 404 KeyNotFound\r\ncontent-length: 0\r\n\r\n",
    ]


def test_a_websocket_upgrade_is_closed_not_left_to_uvicorns_error_path() -> None:
    # Returning without a message makes uvicorn log ERROR and answer 500 per upgrade.
    import asyncio

    from kvcore.workerd.app import WorkerdKV

    sent: list[dict[str, object]] = []

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async def receive() -> dict[str, object]:
        return {"type": "websocket.connect"}

    kv = WorkerdKV.__new__(WorkerdKV)  # the websocket branch touches no state
    asyncio.run(kv({"type": "websocket", "path": "/", "headers": []}, receive, send))
    assert [m["type"] for m in sent] == ["websocket.close"]
