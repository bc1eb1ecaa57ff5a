"""Faults: dropped connections, silent servers, restarts, many threads."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from doqu_tyrant.tyrant import (
    RetryingClient,
    Tyrant,
    TyrantCommandError,
    TyrantConnectionError,
    TyrantPoolTimeout,
    TyrantTimeout,
)
from doqu_tyrant.tyrant import protocol as p

Handler = Callable[[socket.socket, int], None]


class Listener:
    """A loopback listener running ``handler(conn, index)`` per connection."""

    def __init__(self, handler: Handler) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.handler = handler
        self.connections = 0
        self.received: list[bytes] = []
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            index = self.connections
            self.connections += 1
            threading.Thread(target=self._run, args=(conn, index), daemon=True).start()

    def _run(self, conn: socket.socket, index: int) -> None:
        with conn:
            try:
                self.handler(conn, index)
            except OSError:
                pass

    def read_request(self, conn: socket.socket) -> bytes:
        conn.settimeout(5)
        data = conn.recv(65536)
        self.received.append(data)
        return data

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for lst in made:
        lst.close()


def make(listeners: list[Listener], handler: Handler) -> Listener:
    lst = Listener(handler)
    listeners.append(lst)
    return lst


# -- a connection that breaks after the request was sent ----------------------


def test_drop_after_request_read_retried_write_not(listeners: list[Listener]) -> None:
    def handler(conn: socket.socket, index: int) -> None:
        lst.read_request(conn)  # then close without a reply

    lst = make(listeners, handler)
    t = Tyrant("127.0.0.1", lst.port, timeout=5)
    with pytest.raises(TyrantConnectionError) as info:
        t.get("k")
    assert info.value.request_sent
    assert len(lst.received) == 2  # a read: retried once on a fresh connection
    lst.received.clear()
    with pytest.raises(TyrantConnectionError):
        t.put("k", "v")
    assert len(lst.received) == 1  # a write: never retried silently
    lst.received.clear()
    with pytest.raises(TyrantConnectionError):
        t.pipeline().put("k", "v").get("k").execute()
    assert len(lst.received) == 1
    lst.received.clear()
    with pytest.raises(TyrantConnectionError):
        Tyrant("127.0.0.1", lst.port, retry_reads=False).get("k")
    assert len(lst.received) == 1


def test_retrying_client_opts_in_for_writes(listeners: list[Listener]) -> None:
    def handler(conn: socket.socket, index: int) -> None:
        lst.read_request(conn)
        if index >= 2:
            conn.sendall(b"\x00")  # the third attempt succeeds

    lst = make(listeners, handler)
    t = RetryingClient(Tyrant("127.0.0.1", lst.port, timeout=5), attempts=3)
    assert t.put("k", "v") is None
    assert len(lst.received) == 3 and all(r == p.encode_put(b"k", b"v") for r in lst.received)


def test_retrying_client_respects_do_not_retry_for(listeners: list[Listener]) -> None:
    def handler(conn: socket.socket, index: int) -> None:
        lst.read_request(conn)

    lst = make(listeners, handler)
    never = RetryingClient(Tyrant("127.0.0.1", lst.port, timeout=5), attempts=3,
                           do_not_retry_for=(TyrantConnectionError,))
    with pytest.raises(TyrantConnectionError):
        never.put("k", "v")
    assert len(lst.received) == 1


def test_retrying_client_does_not_retry_command_errors(kv: Tyrant) -> None:
    calls = []
    t = RetryingClient(kv, attempts=5)
    kv.put("text", "x")
    original = kv.addint

    def counting(*args: object) -> int:
        calls.append(args)
        return original(*args)  # type: ignore[arg-type]

    kv.addint = counting  # type: ignore[method-assign, assignment]
    try:
        with pytest.raises(TyrantCommandError):
            t.addint("text", 1)
    finally:
        del kv.addint
    assert len(calls) == 1
    assert t.get("text") == b"x" and "text" in t and len(t) == 1
    assert "RetryingClient" in repr(t)
    assert list(t.iterkeys()) == [b"text"]


# -- a server that never answers ----------------------------------------------


def test_silent_server_times_out_then_next_call_is_clean(listeners: list[Listener]) -> None:
    def handler(conn: socket.socket, index: int) -> None:
        lst.read_request(conn)
        if index == 0:
            time.sleep(0.6)  # answer late, and wrongly: a desynced client would read this
            conn.sendall(p.reply_u64(111))
            lst.stop.wait(5)
        else:
            conn.sendall(p.reply_u64(222))
            lst.read_request(conn)
            conn.sendall(p.reply_u64(333))

    lst = make(listeners, handler)
    t = Tyrant("127.0.0.1", lst.port, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TyrantTimeout):
        t.rnum()
    assert time.monotonic() - started < 2
    with pytest.raises(TimeoutError):  # also the builtin
        raise TyrantTimeout("x")
    time.sleep(0.5)  # the late reply reaches the old, discarded socket
    assert t.rnum() == 222  # a fresh connection, the right answer
    assert t.rnum() == 333
    assert lst.connections == 2


def test_connect_timeout() -> None:
    # A listener whose accept queue is full: further SYNs are dropped and
    # connect() hangs.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        t = Tyrant("127.0.0.1", port, timeout=5, connect_timeout=0.3)
        started = time.monotonic()
        with pytest.raises(TyrantTimeout):
            t.rnum()
        assert time.monotonic() - started < 3
    finally:
        for s in fillers:
            s.close()
        server.close()


def test_garbage_reply_is_a_protocol_error_and_discards(listeners: list[Listener]) -> None:
    from doqu_tyrant.tyrant import TyrantProtocolError

    def handler(conn: socket.socket, index: int) -> None:
        lst.read_request(conn)
        conn.sendall(b"\x07garbage" if index == 0 else p.reply_u64(5))

    lst = make(listeners, handler)
    t = Tyrant("127.0.0.1", lst.port, timeout=2)
    with pytest.raises(TyrantProtocolError):
        t.rnum()
    assert t.rnum() == 5
    assert lst.connections == 2


def test_pool_timeout(listeners: list[Listener]) -> None:
    def handler(conn: socket.socket, index: int) -> None:
        lst.read_request(conn)
        lst.stop.wait(5)

    lst = make(listeners, handler)
    t = Tyrant("127.0.0.1", lst.port, timeout=3, pool_size=1, pool_timeout=0.2)
    def busy() -> None:
        with pytest.raises((TyrantTimeout, TyrantConnectionError)):
            t.rnum()  # holds the only connection until the listener gives up

    th = threading.Thread(target=busy)
    th.start()
    time.sleep(0.2)
    with pytest.raises(TyrantPoolTimeout):
        t.rnum()
    lst.stop.set()
    th.join()


# -- the real server: killed, restarted ---------------------------------------


def test_server_killed_mid_request(server_factory: Callable) -> None:
    srv = server_factory("hash")
    t = Tyrant.from_url(srv.url, timeout=10)
    t.put("k", "v")
    errors: list[BaseException] = []
    running = threading.Event()

    def hammer() -> None:
        big = {f"r{i}": "y" * 100 for i in range(2000)}  # a hash database: values
        running.set()
        try:
            while True:
                t.putlist(big)
                t.get("k")
        except BaseException as exc:
            errors.append(exc)

    th = threading.Thread(target=hammer)
    th.start()
    running.wait()
    time.sleep(0.2)
    srv.kill()
    th.join(10)
    assert not th.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TyrantConnectionError), errors
    with pytest.raises(TyrantConnectionError):
        t.get("k")  # nobody listens
    srv.start()  # same port, same file
    assert t.get("k") == b"v"  # transparent reconnect


def test_server_restarted_transparently(server_factory: Callable) -> None:
    srv = server_factory("table")
    t = Tyrant.from_url(srv.url, timeout=10, pool_size=4)
    t["a"] = {"n": "1"}
    with t.pipeline() as pl:  # open a few pooled connections
        pl.rnum()
        pl.execute()
    srv.restart()
    assert t["a"] == {"n": "1"}  # read on a stale socket: detected, reconnected
    srv.restart()
    t["b"] = {"n": "2"}  # a write too: the stale socket is noticed before sending
    assert t.table_putkeep("c", {}) is True
    srv.restart()
    assert t.pipeline().rnum().table_get("b").execute() == [3, {"n": "2"}]


# -- many threads, one client -------------------------------------------------


def test_32_threads_share_one_client(tyrant_url: str) -> None:
    t = Tyrant.from_url(tyrant_url, timeout=20, pool_size=6)
    t.vanish()
    errors: list[BaseException] = []
    start = threading.Barrier(32)

    def worker(n: int) -> None:
        try:
            start.wait()
            for i in range(60):
                pk = f"t{n}-{i}"
                record = {"thread": str(n), "i": str(i), "pad": "x" * (n * 37 % 500)}
                t[pk] = record
                assert t[pk] == record
                assert t.get(pk) == p.pack_record(
                    [(k.encode(), v.encode()) for k, v in record.items()])
                if i % 10 == 0:
                    got = t.pipeline().table_get(pk).vsiz(pk).table_out(pk).execute()
                    assert got[0] == record and got[1] > 0 and got[2] is True
                    t[pk] = record
                if i % 15 == 0:
                    mine = t.query.filter(thread=str(n)).keys()
                    assert all(k.startswith(f"t{n}-") for k in mine)
                    assert len(mine) == i + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not errors, errors[:3]
    assert len(t) == 32 * 60
    t.vanish()
    t.close()
