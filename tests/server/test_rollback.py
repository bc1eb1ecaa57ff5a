"""kill -9 between a B+ tree's commits: the rollback must not break replication.

A B+ tree database keeps its writes in a transaction until the next commit
(``--commit-interval``), so a kill -9 rolls it back. Its update log and a
replica's position are written as each write is made. These tests kill B+
tree masters and replicas with writes made since their last commit and check
that every server ends with each write exactly once: the master's database
equal to its log (to its replicas, to a RESTORE of the log), a replica's
equal to its master's. Writes that are not idempotent (addint, putcat,
putdup) show any write lost or applied twice.

And a fixed-length database killed after writes past its last SYNC: RNUM and
iteration must know every record after the restart.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant import protocol as p
from tests.replicas import dual_master, dump, wait_converged, wait_until
from tests.server.test_replica import counter, log_entries
from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]
NEVER = 3600  # a commit interval no test outlives: every kill lands between commits


def write_round(t: Tyrant, n: int, tag: int) -> None:
    """``n`` each of addint, putcat, putdup and put, pipelined."""
    with t.pipeline() as pipe:
        for i in range(n):
            pipe.addint("count", 1)
            pipe.putcat("trail", b"%d," % (i % 10))
            pipe.misc("putdup", ["dups", f"{tag}.{i}"])
            pipe.put(f"k{tag}.{i}", str(i))
        pipe.execute()


def state(t: Tyrant) -> tuple[dict[bytes, bytes], list[bytes]]:
    """Every record (the first value of a duplicated key) and every value of "dups"."""
    keys = t.fwmkeys(b"")
    return t.mget(keys), t.misc("getlist", ["dups"])


def test_btree_master_killed_between_commits_keeps_what_its_log_holds(
        tmp_path: Path, server_factory: ServerFactory) -> None:
    master = server_factory(str(tmp_path / "m.tcb"), ulog=tmp_path / "mlog", sid=1,
                            commit_interval=NEVER)
    replica = server_factory("btree", sid=2, master=f"127.0.0.1:{master.port}")
    with Tyrant(*master.address, timeout=10) as m, Tyrant(*replica.address, timeout=10) as r:
        write_round(m, 300, 0)
        m.sync()  # a commit point: what comes after it is rolled back by the kill
        write_round(m, 300, 1)
        m.out("k0.7")
        # shipped before the kill (the whole round: count reaches 600 before the
        # entries of the last iteration that follow its addint)
        assert wait_until(lambda: state(r) == state(m))
        assert counter(r, "count") == 600
        master.kill()
        master.start()
        assert counter(m, "count") == 600
        assert state(m) == state(r)
        # killed again, this time before the replica may have had it all
        write_round(m, 200, 2)
        master.kill()
        master.start()
        assert counter(m, "count") == 800
        assert wait_until(lambda: counter(r, "count") == 800)
        assert wait_until(lambda: state(m) == state(r))
        dups = m.misc("getlist", ["dups"])[1::2]  # key, value, key, value ...
        assert len(dups) == len(set(dups)) == 800
        assert m.get("trail") == b"".join(b"%d," % (i % 10) for n in (300, 300, 200)
                                         for i in range(n))
        # a replica started now takes the whole log and ends the same
        late = server_factory("btree", sid=3, master=f"127.0.0.1:{master.port}")
        with Tyrant(*late.address, timeout=10) as lt:
            assert wait_until(lambda: counter(lt, "count") == 800)
            assert wait_until(lambda: state(lt) == state(m))
        master.stop()
    # the log restores to what the database holds (no entry missing or doubled)
    fresh = server_factory(str(tmp_path / "fresh.tcb"), dump_dir=tmp_path)
    with Wire(fresh.address) as wire:
        assert wire.call(p.encode_restore(b"mlog", 0, 0)).ok
    master.start()
    with Tyrant(*master.address, timeout=10) as m, Tyrant(*fresh.address, timeout=10) as f:
        assert state(f) == state(m)
    assert "update-log entries written after its last commit" in master.stderr()


@pytest.mark.parametrize("own_log, interval", [(False, 0.2), (True, 0.2), (False, NEVER)])
def test_btree_replica_killed_between_commits_resumes_exactly(
        tmp_path: Path, server_factory: ServerFactory, own_log: bool, interval: float) -> None:
    """Killed at random points while it applies the backlog; ``interval``
    0.2 s puts commits anywhere among the entries, NEVER rolls back everything
    since the start at each kill."""
    master = server_factory("hash", ulog=tmp_path / "mlog", sid=1)
    rts = tmp_path / "replica.rts"
    replica = server_factory(str(tmp_path / "r.tcb"), sid=2, rts=rts,
                             ulog=tmp_path / "rlog" if own_log else None,
                             master=f"127.0.0.1:{master.port}", commit_interval=interval)
    rng = random.Random(14)
    rounds, n = 4, 500
    with Tyrant(*master.address, timeout=10) as m:
        for tag in range(rounds):
            with m.pipeline() as pipe:
                for i in range(n):
                    pipe.addint("count", 1)
                    pipe.putcat("trail", b"%d," % (i % 10))
                    pipe.put(f"k{tag}.{i}", str(rng.random()))
                pipe.execute()
            time.sleep(rng.uniform(0.05, 0.4))  # somewhere in the backlog, or after it
            replica.kill()
            replica.start()
        with Tyrant(*replica.address, timeout=10) as r:
            assert wait_until(lambda: counter(r, "count") == rounds * n, 30)
            time.sleep(0.3)
            assert counter(r, "count") == rounds * n  # (nothing applied twice)
            assert wait_until(lambda: dump(replica) == dump(master))
    if own_log:  # every master entry once in the replica's own log
        master_log = sorted(pl for *_x, pl in log_entries(tmp_path / "mlog"))
        assert sorted(pl for *_x, pl in log_entries(tmp_path / "rlog")) == master_log


def test_btree_dual_master_half_killed_between_commits_converges(tmp_path: Path) -> None:
    a, b = dual_master(tmp_path, "btree", commit_interval=NEVER)
    try:
        with Tyrant(*a.address, timeout=10) as ta, Tyrant(*b.address, timeout=10) as tb:
            for _ in range(150):
                ta.addint("hits", 1)
                tb.addint("hits", 1)
                ta.putcat("from-a", b"a")
                tb.putcat("from-b", b"b")
            assert wait_until(lambda: counter(ta, "hits") == counter(tb, "hits") == 300)
            a.kill()  # its own writes and the ones it took from b: all since its start
            tb.addint("hits", 1)  # made while a is down
            a.start()
            assert wait_converged(a, b)
            assert counter(ta, "hits") == counter(tb, "hits") == 301
            for t in (ta, tb):
                assert (t.get("from-a"), t.get("from-b")) == (b"a" * 150, b"b" * 150)
        a_log, b_log = log_entries(tmp_path / "alog"), log_entries(tmp_path / "blog")
        assert len(a_log) == len(b_log) == 601  # no entry travelled back or twice
    finally:
        a.close()
        b.close()


def test_fixed_length_kill9_rnum_and_iteration(tmp_path: Path) -> None:
    server = ServerProcess(str(tmp_path / "db.tcf#width=16"))
    try:
        expected: dict[int, bytes] = {}
        with Wire(server.address) as wire:
            for i in range(1, 301):
                assert wire.put(b"%d" % i, b"v%d" % i)
                expected[i] = b"v%d" % i
            assert wire.call(p.encode_simple(p.SYNC)).ok
            for i in range(301, 601):  # past the greatest ID the header knows
                value = b"" if i % 50 == 0 else b"w%d" % i  # empty values are records too
                assert wire.put(b"%d" % i, value)
                expected[i] = value
            for i in (1, 150, 300):
                assert wire.call(p.encode_key(p.OUT, b"%d" % i)).ok
                del expected[i]
            assert wire.put(b"9000", b"far")
            expected[9000] = b"far"
        server.kill()
        for restart in (server.start, server.restart):  # after the kill, then a clean stop
            restart()
            with Wire(server.address) as wire:
                assert wire.rnum() == len(expected)
                assert wire.call(p.encode_simple(p.ITERINIT)).ok
                keys = []
                while True:
                    reply = wire.call(p.encode_simple(p.ITERNEXT))
                    if not reply.ok:
                        break
                    keys.append(int(reply.value))
                assert keys == sorted(expected)
                assert all(wire.get(b"%d" % i) == v for i, v in expected.items())
        assert "corrected to 598" in server.stderr()
    finally:
        server.close()


def test_no_replay_without_an_unclean_shutdown(tmp_path: Path,
                                              server_factory: ServerFactory) -> None:
    """A clean stop commits everything: the next start replays nothing, and a
    database given a fresh update-log directory after a kill is left as it is."""
    master = server_factory(str(tmp_path / "m.tcb"), ulog=tmp_path / "mlog", sid=1,
                            commit_interval=NEVER)
    with Tyrant(*master.address, timeout=10) as m:
        write_round(m, 50, 0)
        master.restart()
        assert counter(m, "count") == 50
        write_round(m, 50, 1)
        master.kill()
        master.opts["ulog"] = tmp_path / "otherlog"
        master.start()
        assert counter(m, "count") == 50  # rolled back; that log is not this one's
    assert "update-log entries" not in master.stderr()
    assert "another log" in master.stderr()
    assert os.path.isdir(tmp_path / "otherlog")
