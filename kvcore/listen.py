"""Listening sockets and data directories, claimed exclusively at start.

Every listener of an edgekv process (central's gRPC and HTTP ports, a replica's HTTP
port, and later a workerd front end) is claimed here before the process logs that
it started, so a port already in use ends the process with one line naming the flag
instead of a traceback, or worse, a silent second server: gRPC sets `SO_REUSEPORT`
by default on Linux, which lets a second central share a port with the first and
take a share of its connections with an empty store (split brain). Use
`bind_listener` for sockets we hand to a server, `GRPC_NO_REUSEPORT` plus
`add_grpc_port` for gRPC, and `lock_data_dir` before opening a store.

Errors: `StartupError` (kvcore.errors), whose message is the whole line to print.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from typing import IO, Any

import grpc

from kvcore.errors import StartupError
from kvcore.settings import split_addr

# gRPC channel arg: never share a port with another process (see the module docstring).
GRPC_NO_REUSEPORT: tuple[str, Any] = ("grpc.so_reuseport", 0)
LOCK_FILE = "edgekv.lock"


def _why(exc: OSError, addr: str) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"{addr} is already in use (is another edgekv process running there?)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{addr} is not an address of this machine"
    if exc.errno == errno.EACCES:
        return f"{addr}: permission denied (ports below 1024 need privileges)"
    return f"cannot listen on {addr}: {exc.strerror or exc}"


def port_in_use(addr: str) -> bool:
    """True when something already listens on `addr` (HOST:PORT), checked by binding it."""
    try:
        bind_listener(addr, "addr").close()
    except StartupError:
        return True
    return False


def bind_listener(addr: str, flag: str, *, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on `addr` (HOST:PORT, IPv4 or [IPv6]) without SO_REUSEPORT.

    SO_REUSEADDR is set, as every server does, so a restart is not refused by the old
    process's TIME_WAIT connections; on Linux it never lets two sockets listen on one
    port. Raises StartupError("<flag>: <addr> is already in use ...") and the like."""
    host, port = split_addr(addr)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        infos = socket.getaddrinfo(host, port, family=0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family = infos[0][0] if infos else family
    except socket.gaierror as exc:
        raise StartupError(f"{flag}: cannot resolve {host!r}: {exc.strerror}") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(infos[0][4])
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise StartupError(f"{flag}: {_why(exc, addr)}") from None
    return sock


def with_port(addr: str, port: int) -> str:
    """`addr` (HOST:PORT, IPv4 or [IPv6]) with its port replaced by `port`: for a HOST:0
    address, the port the system chose when it was bound."""
    host, _, _ = addr.rpartition(":")
    return f"{host}:{port}"


def listening_addr(addr: str, sock: socket.socket) -> str:
    """The address `sock`, bound from `addr` (HOST:PORT), listens on: `addr` with the
    port the system chose for HOST:0."""
    return with_port(addr, sock.getsockname()[1])


def add_grpc_port(server: grpc.aio.Server, addr: str, flag: str, creds: grpc.ServerCredentials | None) -> str:
    """Bind `server` (built with GRPC_NO_REUSEPORT) to `addr` and return the address it
    listens on (the chosen port for HOST:0), or raise StartupError.

    grpc returns port 0 (older releases) or raises RuntimeError (newer) when it cannot
    bind, and logs a multi-line complaint from its C core; neither says why, so the
    address is first tried by binding it ourselves (and released at once)."""
    bind_listener(addr, flag).close()
    try:
        bound = server.add_secure_port(addr, creds) if creds else server.add_insecure_port(addr)
    except RuntimeError:
        bound = 0
    if not bound:  # taken in the instant between our check and grpc's bind
        raise StartupError(f"{flag}: cannot listen on {addr}")
    return with_port(addr, bound)


def lock_data_dir(path: str, flag: str, who: str) -> IO[str]:
    """Create `path` if needed and hold an exclusive lock on it for the process's life.

    Returns the open lock file (keep it open; closing it releases the lock). Raises
    StartupError when the directory cannot be created or written, or is locked by
    another process: "another <who> is using this data dir (<path>, pid N)"."""
    try:
        os.makedirs(path, exist_ok=True)
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "permission denied")
        handle = open(os.path.join(path, LOCK_FILE), "a+")  # noqa: SIM115 - held for the process's life
    except OSError as exc:
        raise StartupError(f"{flag}: cannot use {path}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        pid = f", pid {holder}" if holder.isdigit() else ""
        raise StartupError(f"another {who} is using this data dir ({path}{pid})") from None
    with contextlib.suppress(OSError):
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
    return handle
