"""Atomic record writes (doqu_tyrant.server.atomic): a kill -9 in the middle of a
write leaves a hash database, or a table's rows, as they were before the write
or after it, and a torn write-ahead log entry does not keep the next open from
rolling back."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from doqu_tyrant.server.atomic import repair_wal
from doqu_tyrant.server.cabinet import Cabinet
from doqu_tyrant.server.durable import DurableCabinet
from doqu_tyrant.tyrant import protocol as p
from tests.server.test_durability import PATHS, assert_present, iterated, put_batch
from tests.server.wire import Wire
from tests.servers import ROOT, ServerProcess

PIECE = 128  # bytes a PUTCAT appends to the growing value
PIECES = 1000  # PUTCATs per round: the record grows to PIECE * PIECES bytes


def piece(kind: str, i: int) -> bytes:
    """What the ``i``-th PUTCAT appends: bytes to a value, or a column to a row."""
    body = b"%08d" % i * (PIECE // 8)
    return b"c%d\0%s" % (i, body) if kind == "table" else body


def pieces_in(kind: str, value: bytes) -> int:
    """How many pieces ``value`` is made of, asserting that it is exactly the
    first ones in order (nothing torn, skipped or repeated)."""
    if kind == "table":
        cols = value.split(b"\0")
        count = len(cols) // 2
        assert dict(zip(cols[0::2], cols[1::2])) == dict(
            piece(kind, i).split(b"\0") for i in range(count))
        return count
    count = len(value) // PIECE
    assert value == b"".join(piece(kind, i) for i in range(count))
    return count


@pytest.mark.parametrize("kind", ["hash", "table"])
def test_kill9_while_records_grow_loses_no_acknowledged_write(
        tmp_path: Path, kind: str) -> None:
    """The engine moves a record that grows in several steps; a kill between them
    used to leave its bucket pointing at a free block: the record (and its
    neighbours in the bucket's tree) gone, "read error" at the next open, and
    later writes losing more. Each round grows a record of its own while the
    server is killed; after every restart each grown record holds the pieces
    appended so far (all of those seen before), and nothing acknowledged is lost."""
    server = ServerProcess(str(tmp_path / PATHS[kind]))
    rng = random.Random(5)
    try:
        acknowledged: dict[bytes, bytes] = {}
        seen: dict[bytes, int] = {}  # growing record -> pieces a restart showed
        for n in range(5):
            with Wire(server.address) as wire:
                acknowledged.update(put_batch(wire, range(n * 300, (n + 1) * 300), n))
                # the kill lands while the server is still applying this pipeline
                key = b"grow%d" % n
                wire.send(b"".join(p.encode_put(key, piece(kind, i), p.PUTCAT)
                                   for i in range(PIECES)))
                time.sleep(rng.uniform(0.02, 0.1))
                server.kill()
            server.start()
            with Wire(server.address) as wire:
                assert_present(wire, acknowledged)
                seen[key] = 0
                for grown, before in seen.items():
                    value = wire.get(grown)
                    # (absent only if the kill came before its first pieces)
                    assert value is not None or not before, f"{grown!r} was lost"
                    count = 0 if value is None else pieces_in(kind, value)
                    assert count >= before
                    seen[grown] = count
                present = sum(wire.get(k) is not None for k in seen)
                assert iterated(wire) == wire.rnum() == len(acknowledged) + present
    finally:
        server.close()


# -- a torn log entry ------------------------------------------------------------------


_CHILD = """
import os, sys
from doqu_tyrant.server.cabinet import Cabinet
db = Cabinet(sys.argv[1])
assert db.tranbegin()
for i in range(0, 400, 3):
    assert db.put(b"k%04d" % i, b"changed" * (i % 40 + 1))
wal = sys.argv[1].split("#")[0] + ".wal"
with open(wal, "ab") as f:  # an entry the kill cut short: its write had not begun
    f.write((1000).to_bytes(8, "big") + (500).to_bytes(4, "big") + b"partial")
os._exit(0)  # like a kill -9: no commit, no close
"""


def test_torn_log_entry_is_cut_and_the_transaction_rolled_back(tmp_path: Path) -> None:
    db_file = tmp_path / "db.tch"
    before = {b"k%04d" % i: b"v%d" % i * (i % 7 + 1) for i in range(400)}
    with Cabinet(db_file) as db:
        for key, value in before.items():
            assert db.put(key, value)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run([sys.executable, "-c", _CHILD, str(db_file)], check=True, env=env)
    assert (tmp_path / "db.tch.wal").stat().st_size > 8 + 12 + 256
    with DurableCabinet(db_file) as db:
        assert db.unclean
        assert db.misc(b"error", []) == [b"0: success"]  # the log was accepted
        assert db.rnum() == len(before)
        assert db.mget(before) == list(before.items())
    assert not (tmp_path / "db.tch.wal").exists()  # the engine removed it


def test_repair_wal_keeps_a_complete_log(tmp_path: Path) -> None:
    wal = tmp_path / "db.tch.wal"
    complete = (123).to_bytes(8, "big") + (0).to_bytes(8, "big") + (3).to_bytes(4, "big") + b"abc"
    wal.write_bytes(complete)
    assert not repair_wal(os.fsencode(tmp_path / "db.tch"))
    assert wal.read_bytes() == complete
    wal.write_bytes(complete + (9).to_bytes(8, "big") + b"\0\0")  # torn in its header
    assert repair_wal(os.fsencode(tmp_path / "db.tch"))
    assert wal.read_bytes() == complete
    assert not repair_wal(os.fsencode(tmp_path / "missing.tch"))


@pytest.mark.parametrize("name, atomic", [
    ("db.tch", True), ("db.tct", True), ("db.tcb", False), ("db.tcf", False), ("*", False)])
def test_which_databases_write_atomically(tmp_path: Path, name: str, atomic: bool) -> None:
    """Hash and table rows; a B+ tree has its standing transaction instead, a
    fixed-length record is one slot, an on-memory database has no file."""
    spec = name if name == "*" else str(tmp_path / name)
    with DurableCabinet(spec) as db:
        assert db.atomic_writes is atomic
        assert db.put(b"1", b"a\0b") and db.get(b"1") == b"a\0b"
    if name != "*":
        with DurableCabinet(spec + "#mode=r") as reader:
            assert not reader.atomic_writes and reader.get(b"1") == b"a\0b"
        assert not (tmp_path / (name + ".wal")).exists()


@pytest.mark.parametrize("name", ["db.tch", "db.tct"])
def test_a_callers_transaction_still_works(tmp_path: Path, name: str) -> None:
    """Inside a transaction of the caller's the writes are not wrapped again
    (the engine would wait forever for its own transaction to end)."""
    with DurableCabinet(tmp_path / name) as db:
        assert db.put(b"kept", b"a\0b")
        assert db.tranbegin()
        assert db.put(b"dropped", b"a\0b") and db.putcat(b"kept", b"c\0d")
        assert db.misc(b"putlist", [b"x", b"a\0b"]) is not None
        assert db.tranabort()
        assert db.get(b"dropped") is None and db.get(b"x") is None
        assert db.get(b"kept") == b"a\0b"
        assert db.put(b"after", b"a\0b")  # wrapped again, and committed
        assert db.tranbegin() and db.out(b"kept") and db.trancommit()
        assert db.get(b"kept") is None and db.rnum() == 1
