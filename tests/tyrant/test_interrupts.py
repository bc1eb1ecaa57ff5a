"""Interruptions and event-loop lifecycles.

* Ctrl-C (and any exception that is not an I/O error) during a call or a
  streamed read propagates as itself, never as a TyrantConnectionError a
  retry loop would swallow; the connection it happened on is discarded.
* AsyncTyrant closes the sockets of an event loop when that loop finishes,
  and a connection the server closed while no loop was running costs no
  failed request.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, TyrantError
from tests.faultproxy import FaultProxy, Faults
from tests.servers import ROOT, ServerProcess

RECORDS = 300


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(str(tmp_path_factory.mktemp("interrupts") / "i.tct"))
    with Tyrant(srv.host, srv.port, timeout=10) as t:
        t.putlist({f"r{i:04d}": {"n": str(i), "pad": "x" * 100} for i in range(RECORDS)})
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def slow(table: ServerProcess) -> Iterator[FaultProxy]:
    """The table server, its replies trickled (a streamed read takes minutes)."""
    with FaultProxy(table.address, Faults(trickle=0.002), seed=1) as prx:
        yield prx


def ctrl_c_in(seconds: float) -> threading.Timer:
    """SIGINT to the main thread (where the test runs) after ``seconds``."""
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_during_a_streamed_read_is_a_keyboard_interrupt(slow: FaultProxy) -> None:
    with Tyrant("127.0.0.1", slow.port, timeout=30) as t:
        seen = 0
        timer = ctrl_c_in(0.5)
        with pytest.raises(KeyboardInterrupt) as info:
            for _pk, _record in t.query.iter_items():
                seen += 1
        timer.join()
        assert info.type is KeyboardInterrupt and info.value.__cause__ is None
        assert seen < RECORDS
        before = slow.stats.connections
        slow.faults = Faults()
        assert len(t.query.items()) == RECORDS  # the next call works
        assert slow.stats.connections == before + 1  # on a new connection


def test_ctrl_c_during_a_request_is_a_keyboard_interrupt(slow: FaultProxy) -> None:
    with Tyrant("127.0.0.1", slow.port, timeout=30) as t:
        timer = ctrl_c_in(0.3)
        with pytest.raises(KeyboardInterrupt) as info:
            t.getlist([f"r{i:04d}" for i in range(RECORDS)])
        timer.join()
        assert info.value.__cause__ is None
        slow.faults = Faults()
        assert len(t.getlist(["r0001", "r0002"])) == 2


def test_ctrl_c_is_not_retried_by_retry_loops(slow: FaultProxy) -> None:
    """The trap the old behaviour set: ``except ConnectionError`` loops."""
    attempts = 0
    with Tyrant("127.0.0.1", slow.port, timeout=30) as t:
        timer = ctrl_c_in(0.3)
        with pytest.raises(KeyboardInterrupt):
            for _ in range(3):
                attempts += 1
                try:
                    list(t.query.iter_items())
                except ConnectionError:
                    continue
        timer.join()
    assert attempts == 1


def test_asyncio_cancelled_stream_is_cancelled_error(slow: FaultProxy) -> None:
    async def main() -> None:
        t = AsyncTyrant("127.0.0.1", slow.port, timeout=30)

        async def read_all() -> int:
            return len([item async for item in t.query.iter_items()])

        task = asyncio.ensure_future(read_all())
        await asyncio.sleep(0.4)
        conns = list(t._pool._conns)  # noqa: SLF001
        assert len(conns) == 1 and conns[0].busy
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert conns[0].closed  # discarded
        slow.faults = Faults()
        assert len(await t.query.items()) == RECORDS
        await t.aclose()

    asyncio.run(main())


def test_asyncio_ctrl_c_is_a_keyboard_interrupt(slow: FaultProxy) -> None:
    t = AsyncTyrant("127.0.0.1", slow.port, timeout=30)

    async def main() -> None:
        async for _item in t.query.iter_items():
            pass

    timer = ctrl_c_in(0.4)
    with pytest.raises(KeyboardInterrupt) as info:
        asyncio.run(main())
    timer.join()
    assert not isinstance(info.value, TyrantError) and info.value.__cause__ is None
    assert not t._pool._conns  # noqa: SLF001 - closed as that loop finished


# -- event loops ---------------------------------------------------------------------------


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_sockets_of_finished_event_loops_are_closed(table: ServerProcess) -> None:
    t = AsyncTyrant(table.host, table.port, timeout=10, pool_size=4)

    async def some_calls() -> None:
        await asyncio.gather(*(t.table_get(f"r{i:04d}") for i in range(8)))

    asyncio.run(some_calls())  # warm up (imports, the first loop)
    gc.collect()
    gc.disable()  # sockets must not wait for the garbage collector
    try:
        before = open_fds()
        for _ in range(40):
            asyncio.run(some_calls())
        after = open_fds()
    finally:
        gc.enable()
    assert after <= before


def test_a_loop_closed_without_shutdown_leaves_no_socket_behind(table: ServerProcess) -> None:
    """A loop closed by hand (no ``asyncio.run``): its sockets are closed
    when the client is next used, in another loop."""
    t = AsyncTyrant(table.host, table.port, timeout=10)
    gc.collect()
    gc.disable()
    try:
        before = open_fds()
        for _ in range(10):
            loop = asyncio.new_event_loop()
            loop.run_until_complete(t.table_get("r0001"))
            loop.close()
        asyncio.run(t.aclose())
        after = open_fds()
    finally:
        gc.enable()
    assert after <= before


def test_run_until_complete_survives_a_server_restart(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The server closed the connection while the loop was not running: the
    next request (a write, never retried once sent) still succeeds."""
    srv = server_factory("hash")
    loop = asyncio.new_event_loop()
    try:
        t = AsyncTyrant(srv.host, srv.port, timeout=10)
        loop.run_until_complete(t.put("k", "1"))
        for n in range(3):
            srv.restart()
            time.sleep(0.05)
            loop.run_until_complete(t.put("k", str(n)))
            assert loop.run_until_complete(t.get("k")) == str(n).encode()
        loop.run_until_complete(t.aclose())
    finally:
        loop.close()


def test_ctrl_c_during_a_cli_export(slow: FaultProxy, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``doqu-tyrant export`` interrupted: "interrupted", status 130 (it used
    to report an unreachable server, status 3)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "doqu_tyrant", "--url", slow.url, "-q", "export", "-o",
         str(tmp_path / "out.jsonl")], stderr=subprocess.PIPE, env=env)
    try:
        deadline = time.monotonic() + 20
        while slow.stats.chunks < 1:  # the export is talking to the server
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)  # and waiting for the trickled reply
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
