"""DurableCabinet on the real library: the fatal state, transactions, start-up recovery."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from doqu_tyrant.server.cabinet import Cabinet
from doqu_tyrant.server.durable import DurableCabinet, _without_truncation
from doqu_tyrant.server.preflight import copy_problem, optimize_problem

FLAGS = 33  # offset of the header's flag byte


def row(i: int) -> bytes:
    return b"age\0%d\0name\0u%d" % (i, i)


def age_count(db: Cabinet, op: int = 10) -> int:
    result = db.misc(b"search", [b"addcond\0age\0%d\0" % op + b"0", b"count"])
    assert result is not None
    return int(result[0])


@pytest.mark.parametrize("name", ["db.tcb", "db.tch", "db.tct#idx=age:dec", "db.tcf"])
def test_a_fatal_error_reopens_and_later_writes_persist(tmp_path: Path, name: str) -> None:
    path = os.path.join(tmp_path, name)
    db = DurableCabinet(path)
    keys = [b"%d" % i for i in range(1, 1101)]  # numeric: fixed-length keys too
    assert all(db.putmany([(k, row(int(k))) for k in keys[:100]]))
    assert db.sync()
    assert not db.copy(os.path.join(tmp_path, "x" * 300))  # the library goes fatal here
    assert db.recoveries == 1
    assert db.misc(b"error", []) is not None and b"fatal" not in (db.misc(b"error", []) or [])
    assert all(db.putmany([(k, row(int(k))) for k in keys[100:]]))
    assert db.sync()
    db.close()
    again = DurableCabinet(path)
    try:
        assert again.rnum() == 1100
        assert again.get(b"1100") is not None
        if name.startswith("db.tct"):
            assert age_count(again) == 1100
    finally:
        again.close()


def test_btree_keeps_a_transaction_open(tmp_path: Path) -> None:
    db = DurableCabinet(tmp_path / "db.tcb")
    try:
        assert db.transactional
        assert not db.tranbegin()  # the transaction is DurableCabinet's
        assert db.put(b"k", b"v") and db.commit() and db.sync()
        assert db.optimize() and db.vanish() and db.rnum() == 0
        assert db.misc(b"optimize", []) == [] and db.transactional
    finally:
        db.close()
    for name in ("db.tch", "db.tct", "*", "+"):
        other = DurableCabinet(name if name in "*+" else tmp_path / name)
        try:
            assert not other.transactional and other.commit()
        finally:
            other.close()


def test_reader_is_left_alone(tmp_path: Path) -> None:
    Cabinet(tmp_path / "db.tcb").close()
    db = DurableCabinet(os.fsencode(tmp_path / "db.tcb") + b"#mode=r")
    try:
        assert not db.transactional and not db.put(b"k", b"v")
    finally:
        db.close()


def set_flag(path: Path, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[FLAGS] |= bit
    path.write_bytes(bytes(data))


def test_unclean_table_rebuilds_indexes_at_open(tmp_path: Path) -> None:
    path = tmp_path / "db.tct"
    idx = tmp_path / "db.tct.idx.age.dec"
    with DurableCabinet(os.fsencode(path) + b"#idx=age:dec") as db:
        assert all(db.putmany([(b"k%d" % i, row(i)) for i in range(100)]))
        assert db.rebuild_seconds is None
    stale = idx.read_bytes()  # the index as it was with 100 rows
    with DurableCabinet(path) as db:
        assert all(db.putmany([(b"k%d" % i, row(i)) for i in range(100, 500)]))
    # what a kill -9 can leave: index pages not written back, the "open" flag set
    idx.write_bytes(stale)
    set_flag(path, 1)
    with DurableCabinet(path) as db:
        assert db.rebuild_seconds is not None
        assert age_count(db) == 500 and db.indexes == {b"age": "dec"}
        assert db.put(b"k300", row(3000))  # an update needs the old index entry
    with DurableCabinet(path) as db:  # closed cleanly: no rebuild this time
        assert db.rebuild_seconds is None and age_count(db) == 500


def test_fatal_flag_of_an_earlier_run_is_cleared(tmp_path: Path) -> None:
    path = tmp_path / "db.tch"
    with Cabinet(path) as raw:
        raw.put(b"k", b"v")
    set_flag(path, 2)
    db = DurableCabinet(path)
    try:
        assert db.misc(b"error", []) == [b"0: success"]
        assert db.put(b"k2", b"v2")
        assert not db._is_fatal()
    finally:
        db.close()
    assert path.read_bytes()[FLAGS] & 3 == 0


def test_stray_temporary_files_are_removed(tmp_path: Path) -> None:
    for name in ("db.tcb.tmp.77", "db.tcb.tmp.77.wal", "db.tcb.tmp.x", "other.tcb.tmp.1"):
        (tmp_path / name).write_bytes(b"")
    DurableCabinet(tmp_path / "db.tcb").close()
    assert sorted(os.listdir(tmp_path)) == ["db.tcb", "db.tcb.tmp.x", "other.tcb.tmp.1"]


def test_copy_problems(tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    db = DurableCabinet(os.fsencode(tmp_path / "db.tct") + b"#idx=age:dec")
    try:
        good = str(tmp_path / "copy.tct")
        assert copy_problem(db, good) is None
        assert "directory" in str(copy_problem(db, str(tmp_path / "adir")))
        assert "not a directory" in str(copy_problem(db, str(tmp_path / "none" / "x.tct")))
        assert "too long" in str(copy_problem(db, str(tmp_path / ("x" * 300))))
        # the copy's index file would be "<name>.idx.age.dec"
        assert "too long" in str(copy_problem(db, str(tmp_path / ("y" * 250))))
        assert optimize_problem(db) is None
        assert db.copy(good) and os.path.exists(good + ".idx.age.dec")
    finally:
        db.close()


def test_reopen_never_truncates() -> None:
    assert _without_truncation(b"a.tcb#mode=wct#bnum=9") == b"a.tcb#mode=wc#bnum=9"
    assert _without_truncation(b"a.tcb#MODE=wT") == b"a.tcb#MODE=w"
    assert _without_truncation(b"a.tcb") == b"a.tcb"


@pytest.mark.parametrize("kind,code", [("lex", b"0"), ("tok", b"2"), ("qgr", b"3")])
def test_rebuild_covers_every_index_type(tmp_path: Path, kind: str, code: bytes) -> None:
    path = tmp_path / "db.tct"
    idx = tmp_path / f"db.tct.idx.name.{kind}"
    with DurableCabinet(path) as db:
        assert db.misc(b"setindex", [b"name", code]) == []
        assert all(db.putmany([(b"k%d" % i, row(i)) for i in range(50)]))
    stale = idx.read_bytes()
    with DurableCabinet(path) as db:
        assert all(db.putmany([(b"k%d" % i, row(i)) for i in range(50, 300)]))
    idx.write_bytes(stale)
    set_flag(path, 1)
    op = {"lex": 2, "tok": 6, "qgr": 15}[kind]  # STRBW, STROREQ, FTSPH
    operand = {"lex": b"u", "tok": b"u299", "qgr": b"u299"}[kind]
    with DurableCabinet(path) as db:
        assert db.indexes == {b"name": kind}
        found = db.misc(b"search", [b"addcond\0name\0%d\0%s" % (op, operand), b"count"])
        assert found == [b"300" if kind == "lex" else b"1"]


def test_fatal_flag_left_by_a_crashed_writer_is_cleared(tmp_path: Path) -> None:
    path = tmp_path / "db.tct"
    with Cabinet(os.fsencode(path) + b"#idx=age:dec") as raw:
        raw.putmany([(b"k%d" % i, row(i)) for i in range(10)])
    set_flag(path, 1 | 2)  # open and fatal: a writer died after a fatal error
    with DurableCabinet(path) as db:
        assert not db._is_fatal() and db.rebuild_seconds is not None
        assert db.put(b"k10", row(10)) and age_count(db) == 11
    assert path.read_bytes()[FLAGS] & 3 == 0
