"""Both clients behind a fault-injecting proxy (tests/faultproxy.py).

Whatever the proxy does to the server's replies -- delays, splits, drops,
resets, duplicated chunks, trickled bytes, bytes nobody asked for -- every
call returns the right answer or raises a :class:`TyrantError`, never
somebody else's reply, and every call ends within its timeout plus a
small margin.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator

import pytest

from doqu_tyrant.tyrant import AsyncTyrant, Tyrant, TyrantError, TyrantTimeout
from tests.faultproxy import FaultProxy, Faults, ProxyProcess
from tests.servers import ServerProcess

# Generous: CI machines are slow and shared.
MARGIN = 1.5
TIMEOUT = 2.0

VALUES = {b"k%02d" % i: b"value-%02d:" % i + b"x" * (i * 37 % 400) for i in range(40)}
VALUES[b"big"] = bytes(range(256)) * 800  # 200 KiB: a reply in several chunks


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = ServerProcess(str(tmp_path_factory.mktemp("faults") / "f.tch"))
    with Tyrant(srv.host, srv.port, timeout=10) as t:
        for key, value in VALUES.items():
            t.put(key, value)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    with FaultProxy(server.address, seed=7) as prx:
        yield prx


class Tally:
    def __init__(self) -> None:
        self.right = self.wrong = self.errors = 0
        self.slowest = 0.0

    def check(self, key: bytes, got: bytes | None, started: float) -> None:
        self.slowest = max(self.slowest, time.monotonic() - started)
        if got == VALUES[key]:
            self.right += 1
        else:
            self.wrong += 1

    def failed(self, started: float) -> None:
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.errors += 1


SMALL_KEYS = [key for key in VALUES if key != b"big"]


def blocking_run(port: int, calls: int, seed: int, pause: float = 0.0,
                 keys: list[bytes] | None = None, tasks: int = 1,
                 between: Callable[[], None] | None = None) -> Tally:
    tally = Tally()
    rnd = random.Random(seed)
    keys = keys or list(VALUES)
    with Tyrant("127.0.0.1", port, timeout=TIMEOUT, connect_timeout=TIMEOUT) as t:
        for _ in range(calls):
            key = rnd.choice(keys)
            started = time.monotonic()
            try:
                got = t.get(key)
            except TyrantError:
                tally.failed(started)
            else:
                tally.check(key, got, started)
            if pause:
                time.sleep(pause)
            if between is not None:
                between()
    return tally


def async_run(port: int, calls: int, seed: int, pause: float = 0.0,
              keys: list[bytes] | None = None, tasks: int = 4,
              between: Callable[[], None] | None = None) -> Tally:
    tally = Tally()
    keys = keys or list(VALUES)

    async def worker(t: AsyncTyrant, n: int) -> None:
        rnd = random.Random(seed * 100 + n)
        for _ in range(calls // tasks):
            key = rnd.choice(keys)
            started = time.monotonic()
            try:
                got = await t.get(key)
            except TyrantError:
                tally.failed(started)
            else:
                tally.check(key, got, started)
            if pause:
                await asyncio.sleep(pause)
            if between is not None:
                between()

    async def main() -> None:
        # twice as many connections as tasks: the one a task just used is taken
        # last (least recently used first), after any stray bytes for it came
        t = AsyncTyrant("127.0.0.1", port, timeout=TIMEOUT, pool_size=2 * tasks)
        await asyncio.gather(*(worker(t, n) for n in range(tasks)))
        await t.aclose()

    asyncio.run(main())
    return tally


RUNNERS = {"blocking": blocking_run, "asyncio": async_run}


@pytest.mark.parametrize("client", list(RUNNERS))
def test_duplicated_chunks_never_give_a_wrong_reply(proxy: FaultProxy, client: str) -> None:
    proxy.faults = Faults(duplicate=0.25)
    tally = RUNNERS[client](proxy.port, 300, seed=1)
    assert tally.wrong == 0
    assert proxy.stats.duplicated > 20  # the proxy did its part
    assert tally.errors > 0 and tally.right > 100
    assert tally.slowest < TIMEOUT + MARGIN


@pytest.mark.parametrize("client", list(RUNNERS))
def test_unsolicited_bytes_between_requests(proxy: FaultProxy, client: str) -> None:
    """Bytes nobody asked for, arriving while a connection is idle, look like a
    valid reply: they are found before the next request on it, which goes
    out on a fresh connection and gets its own answer. (Bytes arriving while
    a request is in flight cannot be told from its reply, by any client: so
    here one caller, who lets them arrive before its next call.)"""
    proxy.faults = Faults(unsolicited=0.3, unsolicited_after=0.005)
    tally = RUNNERS[client](proxy.port, 80, seed=3, keys=SMALL_KEYS, tasks=1,
                            between=proxy.settle)
    assert tally.wrong == 0
    junk = proxy.stats.unsolicited
    assert junk > 10
    # Found before the next request: a fresh connection, no failed call. (Junk
    # that a slow client reads together with the reply fails that call.)
    assert tally.errors < junk // 4 and tally.right == 80 - tally.errors
    assert proxy.stats.connections > junk // 2


@pytest.mark.parametrize("client", list(RUNNERS))
def test_delays_and_splits(proxy: FaultProxy, client: str) -> None:
    proxy.faults = Faults(delay=0.002, split=5)
    tally = RUNNERS[client](proxy.port, 60, seed=4, keys=SMALL_KEYS)
    assert tally.wrong == 0 and tally.errors == 0
    assert tally.slowest < TIMEOUT + MARGIN


@pytest.mark.parametrize("client", list(RUNNERS))
def test_drops_and_resets(proxy: FaultProxy, client: str) -> None:
    proxy.faults = Faults(drop=0.1, reset=0.1)
    tally = RUNNERS[client](proxy.port, 200, seed=5)
    assert tally.wrong == 0
    assert proxy.stats.dropped + proxy.stats.reset > 10
    assert tally.right > 100  # reads are retried once on a fresh connection
    assert tally.slowest < TIMEOUT + MARGIN


@pytest.mark.parametrize("client", list(RUNNERS))
def test_everything_at_once(server: ServerProcess, client: str) -> None:
    faults = Faults(delay=0.001, duplicate=0.1, drop=0.03, reset=0.03)
    with ProxyProcess(server.address, faults, seed=6) as prx:
        tally = RUNNERS[client](prx.port, 200, seed=6)
    assert tally.wrong == 0
    assert tally.right > 50
    assert tally.slowest < TIMEOUT + MARGIN


@pytest.mark.parametrize("client", list(RUNNERS))
def test_everything_with_stray_bytes(proxy: FaultProxy, client: str) -> None:
    proxy.faults = Faults(delay=0.001, duplicate=0.1, unsolicited=0.1, drop=0.03, reset=0.03)
    tally = RUNNERS[client](proxy.port, 100, seed=8, keys=SMALL_KEYS, tasks=1,
                            between=proxy.settle)
    assert tally.wrong == 0
    assert tally.right > 50
    assert tally.slowest < TIMEOUT + MARGIN


# -- the deadline of a call -------------------------------------------------------------


def test_blocking_timeout_bounds_the_whole_call(proxy: FaultProxy) -> None:
    """A reply trickled one byte every 0.2 s: the call still ends at its
    timeout (it used to restart the timeout with every byte)."""
    proxy.faults = Faults(trickle=0.2)
    with Tyrant("127.0.0.1", proxy.port, timeout=1.0) as t:
        started = time.monotonic()
        with pytest.raises(TyrantTimeout):
            t.get(b"k10")  # ~400 bytes: 80 s at that pace
        assert time.monotonic() - started < 1.0 + MARGIN
        proxy.faults = Faults()
        assert t.get(b"k10") == VALUES[b"k10"]  # a fresh connection


def test_blocking_pipeline_has_one_deadline(proxy: FaultProxy) -> None:
    proxy.faults = Faults(trickle=0.2)
    with Tyrant("127.0.0.1", proxy.port, timeout=1.0) as t:
        pl = t.pipeline()
        for key in list(VALUES)[:5]:
            pl.get(key)
        started = time.monotonic()
        with pytest.raises(TyrantTimeout):
            pl.execute()
        assert time.monotonic() - started < 1.0 + MARGIN


def test_blocking_stream_deadline_is_per_chunk(proxy: FaultProxy) -> None:
    """A streamed reply (fwmkeys through MISC, the query iterators) waits at
    most ``timeout`` for each chunk; a trickle cannot keep it going."""
    proxy.faults = Faults(trickle=0.2)
    with Tyrant("127.0.0.1", proxy.port, timeout=1.0) as t:
        started = time.monotonic()
        with pytest.raises(TyrantTimeout):
            list(t._stream_misc(b"getlist", [b"k10", b"big"], 1))  # noqa: SLF001
        assert time.monotonic() - started < 1.0 + MARGIN


def test_asyncio_timeout_bounds_the_whole_call(proxy: FaultProxy) -> None:
    proxy.faults = Faults(trickle=0.2)

    async def main() -> float:
        t = AsyncTyrant("127.0.0.1", proxy.port, timeout=1.0)
        started = time.monotonic()
        with pytest.raises(TyrantTimeout):
            await t.get(b"k10")
        elapsed = time.monotonic() - started
        await t.aclose()
        return elapsed

    assert asyncio.run(main()) < 1.0 + MARGIN


def test_retry_keeps_the_first_deadline(proxy: FaultProxy) -> None:
    """A read whose connection breaks is retried once, within the same
    deadline: a slow reply followed by a reset cannot double the wait."""
    proxy.faults = Faults(delay=0.7, drop=1.0)
    with Tyrant("127.0.0.1", proxy.port, timeout=1.0) as t:
        started = time.monotonic()
        with pytest.raises(TyrantTimeout):  # the retry ran out of time, not 0.7 s later
            t.get(b"k01")
        assert time.monotonic() - started < 1.0 + MARGIN
    assert proxy.stats.connections == 2  # retried once
