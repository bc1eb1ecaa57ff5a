"""What survives: kill -9 around SYNC and OPTIMIZE, failed COPYs, restarts.

Each kill lands at a chosen point: before a SYNC, while it runs (a few
milliseconds after it was sent: a B+ tree's SYNC writes back its pages for
10-20 ms), just after its reply, and during an OPTIMIZE. After every restart
the records made durable by the last completed SYNC must all be there, and a
table's indexes must answer exactly what a full scan answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from doqu_tyrant.tyrant import Tyrant
from doqu_tyrant.tyrant import protocol as p
from doqu_tyrant.tyrant.errors import TyrantCommandError
from tests.server.wire import Wire
from tests.servers import ServerProcess

ServerFactory = Callable[..., ServerProcess]

PATHS = {
    "hash": "db.tch",
    "btree": "db.tcb",
    "table": "db.tct#idx=age:dec#idx=name:lex",
}
# records per batch: B+ tree pages must be many to be half-written when a kill lands
BATCH = {"hash": 3000, "btree": 6000, "table": 2000}
NOIDX = 1 << 25  # query condition flag: scan the records, do not use an index
# (kill point, seconds to wait after sending the command before kill -9)
KILLS = [("before", 0.0), ("sync", 0.001), ("sync", 0.005), ("sync", 0.012),
         ("after", 0.0), ("optimize", 0.01), ("optimize", 0.08)]  # fmt: skip


def record(i: int, gen: int) -> bytes:
    """A record that is a valid table row as well as a plain value."""
    return b"age\0%d\0name\0u%d\0gen\0%d\0pad\0%s" % (i, i, gen, b"x" * (i % 97))


def put_batch(wire: Wire, keys: range, gen: int) -> dict[bytes, bytes]:
    written = {b"k%06d" % i: record(i, gen) for i in keys}
    replies = wire.pipeline([p.encode_put(k, v) for k, v in written.items()])
    assert all(r.ok for r in replies)
    return written


def search_count(wire: Wire, cond: bytes) -> int:
    result = wire.misc(b"search", [cond, b"count"], p.MISC_NOULOG)
    assert result is not None
    return int(result[0])


def assert_indexes_match_scan(wire: Wire) -> None:
    """Every indexed condition counts what a full scan counts."""
    for column, op, operand in ((b"age", 10, b"0"), (b"name", 2, b"u")):  # NUMGE, STRBW
        indexed = search_count(wire, b"addcond\0%s\0%d\0%s" % (column, op, operand))
        scanned = search_count(wire, b"addcond\0%s\0%d\0%s" % (column, op | NOIDX, operand))
        assert indexed == scanned == wire.rnum(), column


def iterated(wire: Wire) -> int:
    """How many keys ITERINIT/ITERNEXT walk through."""
    assert wire.call(p.encode_simple(p.ITERINIT)).ok
    count = 0
    while True:
        replies = wire.pipeline([p.encode_simple(p.ITERNEXT)] * 1000)
        found = sum(r.ok for r in replies)
        count += found
        if found < 1000:
            return count


def assert_present(wire: Wire, expected: dict[bytes, bytes]) -> None:
    keys = list(expected)
    replies = wire.pipeline([p.encode_key(p.GET, k) for k in keys])
    missing = [k for k, r in zip(keys, replies) if not r.ok]
    assert not missing, f"{len(missing)} records lost, e.g. {missing[:3]}"
    wrong = [k for k, r in zip(keys, replies) if r.value != expected[k]]
    assert not wrong, f"{len(wrong)} records changed, e.g. {wrong[:3]}"


@pytest.mark.parametrize("kind", list(PATHS))
def test_kill9_around_sync_and_optimize_loses_no_synced_record(
    tmp_path: Path, kind: str
) -> None:
    server = ServerProcess(str(tmp_path / PATHS[kind]))
    try:
        durable: dict[bytes, bytes] = {}  # made durable by a completed SYNC
        acknowledged: dict[bytes, bytes] = {}  # acknowledged, maybe not synced
        size = BATCH[kind]
        for n, (point, delay) in enumerate(KILLS):
            base = n * 2 * size
            with Wire(server.address) as wire:
                batch = put_batch(wire, range(base, base + size), n)
                # overwrite part of what earlier rounds made durable: pages full of
                # synced records are dirty again when the kill lands
                batch.update(put_batch(wire, range(0, base, 7), n))
                assert wire.call(p.encode_simple(p.SYNC)).ok
                durable.update(batch)
                acknowledged.update(batch)
                acknowledged.update(put_batch(wire, range(base + size, base + 2 * size), n))
                if point == "sync":
                    wire.send(p.encode_simple(p.SYNC))
                elif point == "optimize":
                    wire.send(p.encode_path(p.OPTIMIZE, b""))
                elif point == "after":
                    assert wire.call(p.encode_simple(p.SYNC)).ok
                    durable = dict(acknowledged)
                time.sleep(delay)
                server.kill()
            server.start()
            with Wire(server.address) as wire:
                assert_present(wire, durable)
                if kind == "btree":  # unsynced writes may be rolled back
                    acknowledged = dict(durable)
                else:  # rows reach the file mapping before the reply
                    assert_present(wire, acknowledged)
                assert iterated(wire) == wire.rnum() >= len(durable)
                if kind == "table":
                    assert_indexes_match_scan(wire)
            assert not [f for f in os.listdir(tmp_path) if ".tmp." in f]
    finally:
        server.close()


def test_table_indexes_after_kill9_of_unsynced_records(tmp_path: Path) -> None:
    """1,000 synced and 1,000 unsynced records, kill -9: every index finds all 2,000."""
    server = ServerProcess(str(tmp_path / "people.tct#idx=age:dec"))
    try:
        with Wire(server.address) as wire:
            put_batch(wire, range(1000), 0)
            assert wire.call(p.encode_simple(p.SYNC)).ok
            put_batch(wire, range(1000, 2000), 0)
        server.kill()
        server.start()
        with Wire(server.address) as wire:
            assert wire.rnum() == 2000
            assert search_count(wire, b"addcond\0age\0" b"8\0" b"1500") == 1
            assert search_count(wire, b"addcond\0age\0" b"10\0" b"0") == 2000
            # updating a record whose index entry was lost must work too
            assert wire.put(b"k001500", record(1500, 1))
        server.restart()  # a clean restart keeps it so
        with Wire(server.address) as wire:
            assert search_count(wire, b"addcond\0age\0" b"10\0" b"0") == 2000
    finally:
        server.close()


def test_stray_optimize_file_is_removed_at_start(tmp_path: Path) -> None:
    (tmp_path / "db.tct.tmp.123456").write_bytes(b"ToKyO CaBiNeT half-written")
    # an index's own optimize file, left by a kill during a table's OPTIMIZE
    (tmp_path / "db.tct.idx.age.dec.tmp.123456").write_bytes(b"ToKyO CaBiNeT half-written")
    (tmp_path / "db.tct.tmp.notanumber").write_bytes(b"a user's file")
    (tmp_path / "other.tct.idx.age.dec.tmp.1").write_bytes(b"another database's")
    server = ServerProcess(str(tmp_path / "db.tct"))
    try:
        assert not (tmp_path / "db.tct.tmp.123456").exists()
        assert not (tmp_path / "db.tct.idx.age.dec.tmp.123456").exists()
        assert (tmp_path / "db.tct.tmp.notanumber").exists()
        assert (tmp_path / "other.tct.idx.age.dec.tmp.1").exists()
    finally:
        server.close()


# -- failed COPY ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["btree", "table", "hash"])
def test_failed_copy_then_writes_survive_restart(tmp_path: Path, kind: str) -> None:
    dump = tmp_path / "dump"
    (dump / "adir").mkdir(parents=True)
    server = ServerProcess(str(tmp_path / PATHS[kind]), dump_dir=dump)
    try:
        with Wire(server.address) as wire:
            put_batch(wire, range(100), 0)
            assert wire.call(p.encode_simple(p.SYNC)).ok
            for target in (b"x" * 300, b"adir", b"adir/../adir"):  # too long, a directory
                assert not wire.call(p.encode_path(p.COPY, target)).ok
            assert "fatal" not in wire.stat()
            later = put_batch(wire, range(100, 1100), 0)
            assert wire.call(p.encode_simple(p.SYNC)).ok
        server.stop()
        server.start()
        with Wire(server.address) as wire:
            assert wire.rnum() == 1100
            assert_present(wire, later)
            if kind == "table":
                assert search_count(wire, b"addcond\0age\0" b"10\0" b"0") == 1100
            assert wire.call(p.encode_path(p.COPY, b"good.db")).ok
        assert list(dump.iterdir()) != []
    finally:
        server.close()


def test_copy_refused_when_a_table_index_name_would_be_too_long(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    server = ServerProcess(str(tmp_path / "db.tct#idx=age:dec"), dump_dir=dump)
    try:
        name = b"b" * 250  # fine on its own; "<name>.idx.age.dec" is not
        with Wire(server.address) as wire:
            assert wire.put(b"k", record(1, 0))
            assert not wire.call(p.encode_path(p.COPY, name)).ok
            assert "fatal" not in wire.stat()
            assert wire.put(b"k2", record(2, 0))
        assert list(dump.iterdir()) == []
        server.restart()
        with Wire(server.address) as wire:
            assert search_count(wire, b"addcond\0age\0" b"10\0" b"0") == 2
    finally:
        server.close()


# -- ADDDOUBLE NaN -------------------------------------------------------------------------


def adddouble(wire: Wire, key: bytes, num: float) -> p.Reply:
    return wire.call(p.encode_adddouble(key, num))


@pytest.mark.parametrize("kind", ["hash", "btree", "table", "memhash"])
def test_adddouble_nan_fails_without_writing(server_factory: ServerFactory, kind: str) -> None:
    server = server_factory(kind)
    with Wire(server.address) as wire:
        assert not adddouble(wire, b"nan", float("nan")).ok
        assert wire.get(b"nan") is None and wire.rnum() == 0
        assert adddouble(wire, b"inf", float("inf")).value == float("inf")
        before = wire.get(b"inf")
        assert not adddouble(wire, b"inf", float("nan")).ok
        assert not adddouble(wire, b"inf", float("-inf")).ok  # the sum would be NaN
        assert wire.get(b"inf") == before
        assert adddouble(wire, b"inf", 1.0).value == float("inf")
        assert adddouble(wire, b"d", 1.5).value == 1.5 and wire.rnum() == 2


def test_client_adddouble_nan_message(server_factory: ServerFactory) -> None:
    server = server_factory("hash")
    with Tyrant(server.host, server.port) as t:
        with pytest.raises(TyrantCommandError, match="NaN") as info:
            t.adddouble("nan", float("nan"))
        assert "int32" not in str(info.value)
        assert t.rnum() == 0
        assert t.addint("n", 2**31 - 1) == 2**31 - 1
        with pytest.raises(TyrantCommandError, match="INT32_MIN"):
            t.addint("n", 1)
