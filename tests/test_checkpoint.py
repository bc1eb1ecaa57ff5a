"""Commit stamps of a B+ tree (DurableCabinet.stamp_commits, checkpoint.py) on
the real library; kills are real: a child process stamps, writes and kills
itself."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from doqu_tyrant.server.checkpoint import Stamp, decode_stamp, encode_stamp
from doqu_tyrant.server.durable import STAMP_SIZE, DurableCabinet
from doqu_tyrant.server.rts import Position
from tests.servers import ROOT

CHILD = """
import os, signal, sys, threading
from doqu_tyrant.server.durable import DurableCabinet
db = DurableCabinet(sys.argv[1])
stamp = [b"first"]
db.stamp_commits(lambda: stamp[0], threading.RLock())
db.put(b"a", b"1")
assert db.commit()                 # committed with "first"
stamp[0] = b"second"
db.put(b"b", b"2")                 # never committed
if sys.argv[2] == "vanish":
    assert db.vanish()             # clears the header's user region, then re-stamps it
    db.put(b"c", b"3")
os.kill(os.getpid(), signal.SIGKILL)
"""


def run_child(path: Path, mode: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", CHILD, str(path), mode], env=env,
                            capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr.decode(errors="replace")


def test_a_stamp_is_committed_and_rolled_back_with_the_data(tmp_path: Path) -> None:
    path = tmp_path / "db.tcb"
    run_child(path, "commit")
    with DurableCabinet(path) as db:
        assert db.unclean
        assert db.committed_stamp == b"first".ljust(STAMP_SIZE, b"\0")
        assert db.get(b"a") == b"1" and db.get(b"b") is None
    with DurableCabinet(path) as db:  # closed cleanly: no stamp was set, none written
        assert not db.unclean and db.committed_stamp.startswith(b"first")


def test_vanish_keeps_the_stamp(tmp_path: Path) -> None:
    path = tmp_path / "db.tcb"
    run_child(path, "vanish")
    with DurableCabinet(path) as db:
        assert db.unclean and db.committed_stamp.startswith(b"second\0")
        assert db.rnum() == 0  # VANISH is not in the transaction; the put after it is


def test_commit_points_take_the_given_lock(tmp_path: Path) -> None:
    lock = threading.RLock()
    db = DurableCabinet(tmp_path / "db.tcb")
    try:
        db.stamp_commits(lambda: b"s", lock)
        done = threading.Event()
        with lock:
            worker = threading.Thread(target=lambda: (db.commit(), done.set()))
            worker.start()
            assert not done.wait(0.3)  # held back while the lock is taken
        worker.join(10)
        assert done.is_set()
        with lock:
            assert db.sync() and db.vanish()  # re-entrant: commit points under the lock
    finally:
        db.close()


def test_stamps_round_trip() -> None:
    for stamp in (Stamp(7, 123, None), Stamp(None, 0, 9, Position(55, None), 3),
                  Stamp(1, 2**63, 2, Position(2**60, 4), 10**12)):
        data = encode_stamp(stamp)
        assert len(data) <= STAMP_SIZE
        assert decode_stamp(data.ljust(STAMP_SIZE, b"\0")) == stamp
    good = encode_stamp(Stamp(7, 123, None))
    assert decode_stamp(good[:-1] + bytes([good[-1] ^ 1])) is None  # damaged
    assert decode_stamp(bytes(STAMP_SIZE)) is None  # never stamped
