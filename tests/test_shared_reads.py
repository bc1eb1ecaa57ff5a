"""Long reads beside other work, in-process on the real library.

:meth:`Cabinet.misc_shared` runs a search without the binding's lock: other
threads' reads go on, writes wait for it without holding the lock; the
gate's order of waiting connections; which requests the planner sends to
the worker pool.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doqu_tyrant.server import longreads
from doqu_tyrant.server.cabinet import Cabinet
from doqu_tyrant.server.commands import Commands
from doqu_tyrant.server.durable import DurableCabinet
from doqu_tyrant.server.gate import LONG, OPEN, OTHER, READ, READS, SHUT, Gate
from doqu_tyrant.server.limits import Budget
from doqu_tyrant.server.ulog import UpdateLog
from doqu_tyrant.tyrant import protocol as p

SLOW = [b"addcond\0v\0STRRX\0x.*y"]  # quadratic in each value's length
BOUND = 1.0


def slow_table(db: Cabinet, seconds: float = 1.5) -> None:
    """Fill ``db`` so that a search for SLOW takes about ``seconds``."""
    value = b"v\0" + b"x" * 6000
    assert db.put(b"x0", value)
    started = time.monotonic()
    db.misc(b"search", SLOW)
    each = max(time.monotonic() - started, 1e-3)
    count = min(max(int(seconds / each) + 1, 4), 400)
    assert db.misc(b"putlist", [x for i in range(1, count) for x in (b"x%d" % i, value)]) == []


class Background:
    """``fn`` in a thread; ``result`` once joined."""

    def __init__(self, fn: object) -> None:
        self.result: object = None
        self._fn = fn
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.result = self._fn()  # type: ignore[operator]

    def join(self) -> object:
        self._thread.join(120)
        assert not self._thread.is_alive()
        return self.result

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def table(tmp_path: Path) -> Iterator[Cabinet]:
    db = Cabinet(tmp_path / "t.tct")
    slow_table(db)
    assert db.put(b"small", b"v\0s")
    yield db
    db.close()


def test_reads_go_on_and_a_waiting_write_holds_no_lock(table: Cabinet) -> None:
    search = Background(lambda: table.misc_shared(b"search", SLOW))
    wait_until(lambda: table._shared == 1)
    started = time.monotonic()
    assert table.get(b"small") == b"v\0s"
    assert table.misc(b"search", [b"addcond\0v\0STREQ\0s"]) == [b"small"]
    assert table.vsiz(b"small") > 0 and table.rnum() > 4
    writer = Background(lambda: table.put(b"new", b"v\0xxy"))
    wait_until(lambda: table._wanted == 1)  # the write waits for the search...
    assert table.get(b"small") == b"v\0s"  # ...without holding the lock
    assert time.monotonic() - started < BOUND
    assert search.running and writer.running
    assert search.join() == []  # the write came after it
    assert writer.join() is True
    assert table.get(b"new") == b"v\0xxy"


def test_shared_reads_wait_for_a_waiting_write(table: Cabinet) -> None:
    first = Background(lambda: table.misc_shared(b"search", SLOW))
    wait_until(lambda: table._shared == 1)
    writer = Background(lambda: table.put(b"new", b"v\0xxy"))
    wait_until(lambda: table._wanted == 1)
    second = Background(lambda: table.misc_shared(b"search", [b"addcond\0v\0STRRX\0^xxy$"]))
    time.sleep(0.05)
    assert table._shared == 1  # the second waits behind the write
    assert first.join() == []
    assert writer.join() is True
    assert second.join() == [b"new"]


def test_close_waits_for_a_shared_read(table: Cabinet) -> None:
    search = Background(lambda: table.misc_shared(b"search", SLOW))
    wait_until(lambda: table._shared == 1)
    table.close()
    assert search.join() == []
    assert table.closed


def test_other_functions_run_as_misc(table: Cabinet) -> None:
    assert table.misc_shared(b"get", [b"small"]) == [b"v", b"s"]
    assert table.misc_shared(b"search", [b"addcond\0v\0STREQ\0s", b"out"]) == []
    assert table.get(b"small") is None  # "out" removed it, as misc does


def test_two_key_scans_in_turn(tmp_path: Path) -> None:
    """MISC regex moves a hash database's iterator: two never interleave."""
    db = Cabinet(tmp_path / "k.tch")
    try:
        keys = [b"k%04d" % i for i in range(2000)]
        assert all(db.putmany([(k, b"v") for k in keys]))
        scans = [Background(lambda: db.misc_shared(b"regex", [b"^k"])) for _ in range(4)]
        for scan in scans:
            found = scan.join()
            assert isinstance(found, list) and sorted(found[0::2]) == keys
    finally:
        db.close()


def test_a_fatal_error_during_a_shared_read_reopens_after_it(tmp_path: Path) -> None:
    db = DurableCabinet(tmp_path / "t.tct")
    try:
        slow_table(db)
        search = Background(lambda: db.misc_shared(b"search", SLOW))
        wait_until(lambda: db._shared == 1)
        assert not db.copy(os.path.join(tmp_path, "x" * 300))  # the library goes fatal
        if search.running:  # the reopen waits: the search still uses the handle
            assert db.recoveries == 0
        assert search.join() == []
        assert db.recoveries == 1
        assert db.put(b"after", b"v\0a") and db.get(b"after") == b"v\0a"
    finally:
        db.close()


# -- the gate ------------------------------------------------------------------------------


def test_gate_lets_reads_pass_and_long_reads_wait_behind_writes() -> None:
    gate = Gate()
    order: list[str] = []
    gate.shut(READS)
    assert gate.mode == READS and gate.admits_long_read()
    gate.shut(READS)  # a second long read beside the first
    gate.wait(lambda: order.append("write"), OTHER)
    assert not gate.admits_long_read()
    gate.wait(lambda: order.append("long"), LONG)
    gate.open(READS)
    assert gate.mode == READS and order == []  # one long read still runs
    gate.open(READS)
    assert gate.mode == OPEN and order == ["write", "long"]


def test_gate_release_stops_when_a_resumed_one_shuts_it() -> None:
    gate = Gate()
    order: list[str] = []
    gate.shut(SHUT)

    def sync() -> None:
        order.append("sync")
        gate.shut(SHUT)

    gate.wait(lambda: order.append("read"), READ)
    gate.wait(sync, OTHER)
    gate.wait(lambda: order.append("write"), OTHER)
    gate.open(SHUT)
    assert order == ["read", "sync"] and gate.mode == SHUT
    gate.open(SHUT)
    assert order == ["read", "sync", "write"] and gate.mode == OPEN


def test_gate_reads_pass_while_long_reads_run() -> None:
    gate = Gate()
    order: list[str] = []
    gate.shut(SHUT)
    gate.wait(lambda: (order.append("long"), gate.shut(READS)), LONG)
    gate.wait(lambda: order.append("write"), OTHER)
    gate.wait(lambda: order.append("read"), READ)
    gate.open(SHUT)  # the long read starts; the read after the write need not wait
    assert order == ["long", "read"] and gate.mode == READS
    gate.open(READS)
    assert order == ["long", "read", "write"]


def test_logged_misc_is_no_read_for_the_gate() -> None:
    search = p.Request(p.MISC, (b"search", 0, [b"addcond\0a\0STREQ\0b"]))
    unlogged = p.Request(p.MISC, (b"search", p.MISC_NOULOG, [b"addcond\0a\0STREQ\0b"]))
    gate = Gate(logged_misc=True)
    gate.shut(READS)
    assert not gate.admits(search) and gate.admits(unlogged)
    assert Gate().kind_of(search) == READ and gate.kind_of(search) == OTHER


# -- the planner ---------------------------------------------------------------------------


def misc(name: bytes, args: list[bytes], opts: int = p.MISC_NOULOG) -> p.Request:
    return p.Request(p.MISC, (name, opts, args))


@pytest.fixture
def planner(tmp_path: Path) -> Iterator[tuple[Cabinet, longreads.Planner]]:
    db = Cabinet(tmp_path / "p.tct")
    yield db, longreads.Planner(Commands(db), Budget(1 << 30))
    db.close()


def test_searches_of_a_small_table_stay_inline(
        planner: tuple[Cabinet, longreads.Planner]) -> None:
    db, plan = planner
    assert db.put(b"a", b"c\0v")
    assert plan.plan(misc(b"search", [b"addcond\0c\0STREQ\0v"])) is None
    assert plan.plan(misc(b"metasearch", [b"addcond\0c\0STREQ\0v", b"next"])) is None
    job = plan.plan(misc(b"search", [b"addcond\0c\0STRRX\0v"]))  # a regular expression
    assert job is not None and job.mode == READS and job.work() == p.reply_list([b"a"])
    job = plan.plan(misc(b"search", [b"addcond\0c\0RX\0(a*)*\\1"]))  # refused, in the job
    assert job is not None and job.work() == p.REPLY_MISC_FAIL


def test_searches_of_a_large_table_go_to_the_pool(
        planner: tuple[Cabinet, longreads.Planner]) -> None:
    db, plan = planner
    count = longreads.INLINE_WORK // 2 + 10
    rows = [x for i in range(count) for x in (b"r%d" % i, b"n\0%d" % i)]
    assert db.misc(b"putlist", rows) == []
    search = misc(b"search", [b"addcond\0n\0NUMEQ\0" b"7"])
    job = plan.plan(search)
    assert job is not None and job.mode == READS
    assert job.work() == p.reply_list([b"r7"])
    job = plan.plan(misc(b"search", [b"addcond\0n\0NUMEQ\0" b"7", b"out"]))
    assert job is not None and job.mode == SHUT  # it removes what it finds: a write
    assert job.work()[:1] == b"\0"
    assert db.get(b"r7") is None
    job = plan.plan(p.Request(p.FWMKEYS, (b"r1", -1)))
    assert job is not None and job.mode == SHUT


def test_logged_searches_shut_the_gate(tmp_path: Path) -> None:
    db = Cabinet(tmp_path / "l.tct")
    ulog = UpdateLog(str(tmp_path / "ulog"), 1)
    try:
        plan = longreads.Planner(Commands(db, sid=1, ulog=ulog), Budget(1 << 30))
        args = [b"addcond\0c\0STRRX\0v"]
        logged = plan.plan(misc(b"search", args, 0))
        unlogged = plan.plan(misc(b"search", args))
        assert logged is not None and logged.mode == SHUT
        assert unlogged is not None and unlogged.mode == READS
    finally:
        ulog.close()
        db.close()


def test_many_keys_go_to_the_pool(tmp_path: Path) -> None:
    db = Cabinet(tmp_path / "m.tcb")
    try:
        plan = longreads.Planner(Commands(db), Budget(1 << 30))
        keys = [b"k%05d" % i for i in range(longreads.MANY_KEYS + 1)]
        assert all(db.putmany([(k, b"v") for k in keys]))
        assert plan.plan(p.Request(p.MGET, (keys[:100],))) is None
        job = plan.plan(p.Request(p.MGET, (keys,)))
        assert job is not None and job.mode == OPEN and job.reserved == (1 << 30) // 8
        assert job.work() == p.reply_pairs([(k, b"v") for k in keys])
        job = plan.plan(misc(b"getlist", keys))
        assert job is not None and job.mode == OPEN
        pairs = [x for k in keys for x in (k, b"v")]
        assert job.work() == p.reply_list(pairs)
        job = plan.plan(misc(b"putlist", pairs))
        assert job is not None and job.mode == SHUT
        # a B+ tree finds a prefix in its index: a limited FWMKEYS stays inline
        assert plan.plan(p.Request(p.FWMKEYS, (b"k", 10))) is None
        job = plan.plan(p.Request(p.FWMKEYS, (b"k", -1)))
        assert job is not None and job.mode == SHUT
        assert plan.plan(misc(b"range", [b"k", b"0", b"l", b"0", b"10"])) is not None
        assert plan.plan(misc(b"regex", [b"^k"])) is not None
    finally:
        db.close()
