"""Helpers for replication tests: free ports, dual-master pairs, full dumps."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from doqu_tyrant.tyrant import Tyrant
from tests.servers import KINDS, ServerProcess

__all__ = ["free_port", "dual_master", "dump", "wait_until", "wait_converged", "Blackhole"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dual_master(directory: Path, kind: str = "table", **opts: Any) -> tuple[ServerProcess,
                                                                          ServerProcess]:
    """Servers A (sid 1) and B (sid 2), each the other's ``--master``, from the
    command line. The caller closes them."""
    port_a, port_b = free_port(), free_port()
    suffix = KINDS[kind]
    a = ServerProcess(str(directory / f"a{suffix}"), port=port_a, sid=1, ulog=directory / "alog",
                      master=f"127.0.0.1:{port_b}", **opts)
    try:
        b = ServerProcess(str(directory / f"b{suffix}"), port=port_b, sid=2,
                          ulog=directory / "blog", master=f"127.0.0.1:{port_a}", **opts)
    except BaseException:
        a.close()
        raise
    return a, b


def dump(address: tuple[str, int] | ServerProcess) -> dict[bytes, bytes]:
    """Every record of a server: key → value (a table record as its serialised columns)."""
    if isinstance(address, ServerProcess):
        address = address.address
    with Tyrant(*address, timeout=10) as t:
        keys = t.fwmkeys(b"")
        out: dict[bytes, bytes] = {}
        for start in range(0, len(keys), 5000):
            out.update(t.mget(keys[start:start + 5000]))
        return out


def wait_until(predicate: Callable[[], bool], seconds: float = 10.0,
               interval: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def wait_converged(a: ServerProcess, b: ServerProcess, seconds: float = 20.0) -> bool:
    """Wait until both servers hold the same records (and stay so for a moment)."""

    def same() -> bool:
        return dump(a) == dump(b)

    return wait_until(same, seconds, 0.2) and (time.sleep(0.3) or same())


class Blackhole:
    """A TCP listener on loopback that accepts and reads but never answers
    (``close_after_read=True``: it drops each connection once a request arrived).
    Counts the connections it accepted. A fault injector, not a database."""

    def __init__(self, close_after_read: bool = False) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.close_after_read = close_after_read
        self.accepted = 0
        self.received = bytearray()
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        self.sock.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        while not self._stop.is_set():
            try:
                data = conn.recv(65536)
            except OSError:
                continue
            if not data:
                break
            self.received += data
            if self.close_after_read:
                break
        conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> Blackhole:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
