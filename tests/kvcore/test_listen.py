"""Listeners claimed at start (kvcore.listen): the address a HOST:0 listener reports,
and a replica that cannot claim a port stops before its start line, releasing the rest."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgekv.launch import free_addr
from kvcore.errors import StartupError
from kvcore.listen import bind_listener, lock_data_dir, port_in_use, with_port
from kvcore.serving import http_server
from kvcore.settings import ReplicaSettings
from replica.resume import STATE_DIR
from replica.server import serve


@pytest.mark.parametrize(
    ("addr", "want"),
    [("127.0.0.1:0", "127.0.0.1:5"), ("[::1]:0", "[::1]:5"), ("localhost:8080", "localhost:5")],
)
def test_with_port(addr: str, want: str) -> None:
    assert with_port(addr, 5) == want


def test_http_server_reports_the_chosen_port() -> None:
    server = http_server(object(), "127.0.0.1:0")
    assert server.listen_sockets
    port = server.listen_sockets[0].getsockname()[1]
    server.listen_sockets[0].close()
    assert port != 0 and server.bound_addr == f"127.0.0.1:{port}"


@pytest.fixture
def taken() -> Iterator[str]:
    with bind_listener("127.0.0.1:0", "test") as sock:
        yield f"127.0.0.1:{sock.getsockname()[1]}"


async def test_workerd_port_in_use_stops_the_replica_before_its_start_line(
    tmp_path: Path, taken: str, caplog: pytest.LogCaptureFixture
) -> None:
    http = free_addr()
    settings = ReplicaSettings(
        region="eu", central="127.0.0.1:1", data_dir=str(tmp_path), http_addr=http, workerd_addr=taken
    )
    with caplog.at_level(logging.INFO), pytest.raises(StartupError, match="--workerd-addr"):
        await serve(settings)
    assert "replica eu: http" not in caplog.text
    assert not port_in_use(http)


async def test_a_failed_start_releases_the_ports(tmp_path: Path) -> None:
    (tmp_path / STATE_DIR).write_text("")  # a file where the resume point's directory goes
    http, kv = free_addr(), free_addr()
    settings = ReplicaSettings(
        region="eu", central="127.0.0.1:1", data_dir=str(tmp_path), http_addr=http, workerd_addr=kv
    )
    with pytest.raises(FileExistsError):
        await serve(settings)
    assert not port_in_use(http) and not port_in_use(kv)
    lock_data_dir(str(tmp_path), "--data-dir", "replica").close()  # the lock is released too
