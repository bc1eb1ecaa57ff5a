"""Tests of the ctypes Tokyo Cabinet binding on real databases (files and memory)."""

from __future__ import annotations

import gc
import math
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doqu_tyrant.server import cabinet as cabmod
from doqu_tyrant.server.cabinet import (
    INT_MIN,
    LIBRARY_VERSION,
    Cabinet,
    CabinetClosedError,
    pack_record,
    parse_index_type,
    unpack_record,
)

CABINET_PY = Path(cabmod.__file__).resolve()

KV_KINDS = {"hash": "db.tch", "btree": "db.tcb", "memhash": "*", "memtree": "+"}
ALL_KINDS = {**KV_KINDS, "fixed": "db.tcf", "table": "db.tct"}
TYPE_NAMES = {
    "hash": "hash",
    "btree": "B+ tree",
    "memhash": "on-memory hash",
    "memtree": "on-memory tree",
    "fixed": "fixed-length",
    "table": "table",
}
OMODES = {
    "memhash": cabmod.ADBOMDB,
    "memtree": cabmod.ADBONDB,
    "hash": cabmod.ADBOHDB,
    "btree": cabmod.ADBOBDB,
    "fixed": cabmod.ADBOFDB,
    "table": cabmod.ADBOTDB,
}


def db_name(tmp_path: Path, name: str) -> str:
    return name if name[0] in "*+" else str(tmp_path / name)


@pytest.fixture(params=sorted(KV_KINDS))
def kv(request: pytest.FixtureRequest, tmp_path: Path):
    with Cabinet(db_name(tmp_path, KV_KINDS[request.param])) as cab:
        yield cab


@pytest.fixture
def table(tmp_path: Path):
    with Cabinet(str(tmp_path / "t.tct")) as cab:
        yield cab


def cols(cab: Cabinet, pk: bytes) -> list[bytes] | None:
    return cab.misc("get", [pk])


# --------------------------------------------------------------------------- opening


def test_library_version() -> None:
    assert LIBRARY_VERSION == "1.4.48"


def test_missing_library_message() -> None:
    code = textwrap.dedent(
        f"""
        import ctypes.util, importlib.util
        ctypes.util.find_library = lambda name: None
        spec = importlib.util.spec_from_file_location("cab", {str(CABINET_PY)!r})
        try:
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        except ImportError as exc:
            print(exc)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "libtokyocabinet9" in out.stdout


@pytest.mark.parametrize("kind", sorted(ALL_KINDS))
def test_open_every_type(tmp_path: Path, kind: str) -> None:
    name = db_name(tmp_path, ALL_KINDS[kind])
    with Cabinet.open(name) as cab:
        assert cab.db_type == TYPE_NAMES[kind]
        assert cab.omode == OMODES[kind]
        assert cab.path == os.fsencode(name)
        assert cab.rnum() == 0
        assert cab.size() >= 0
        assert cab.reveal() != 0
        if kind != "memtree":
            assert cab.size() > 0
    if name[0] not in "*+":
        assert os.path.exists(name)  # default mode is writer + create


@pytest.mark.parametrize(
    "suffix, kind",
    [
        ("x.tch#bnum=1000000#apow=4#opts=l", "hash"),
        ("x.hdb", "hash"),
        ("X.TCB#lmemb=64#nmemb=128", "B+ tree"),
        ("x.tcf#width=8", "fixed-length"),
        ("x.tct#bnum=1000#idx=age:dec", "table"),
        ("x.tch#mode=wc", "hash"),
    ],
)
def test_open_with_tuning_params(tmp_path: Path, suffix: str, kind: str) -> None:
    with Cabinet(str(tmp_path / suffix)) as cab:
        assert cab.db_type == kind
        assert cab.path == os.fsencode(tmp_path / suffix.split("#")[0])


@pytest.mark.parametrize(
    "name, kind", [("*#bnum=10", "on-memory hash"), ("+#capnum=5", "on-memory tree")]
)
def test_open_memory_with_params(name: str, kind: str) -> None:
    with Cabinet(name) as cab:
        assert cab.db_type == kind
        assert cab.path == name[:1].encode()


def test_fixed_width_param_truncates(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "w.tcf#width=4")) as cab:
        assert cab.put(b"1", b"abcdefgh")
        assert cab.get(b"1") == b"abcd"


@pytest.mark.parametrize("name", ["x.unknown", "missing.tch#mode=r", "nodir/x.tch"])
def test_open_failure_raises(tmp_path: Path, name: str) -> None:
    with pytest.raises(OSError):
        Cabinet(str(tmp_path / name))


def test_open_rejects_nul() -> None:
    with pytest.raises(ValueError):
        Cabinet(b"a\0.tch")


def test_close_twice_and_use_after_close(tmp_path: Path) -> None:
    cab = Cabinet(str(tmp_path / "c.tch"))
    assert not cab.closed
    assert cab.close()
    assert cab.close()  # no double free
    assert cab.closed
    for call in (
        lambda: cab.get(b"k"),
        lambda: cab.put(b"k", b"v"),
        lambda: cab.misc("get", [b"k"]),
        lambda: cab.rnum(),
    ):
        with pytest.raises(CabinetClosedError):
            call()
    assert "closed" in repr(cab)


def test_context_manager_closes(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "c.tcb")) as cab:
        cab.put(b"k", b"v")
    assert cab.closed


def test_del_closes_and_flushes(tmp_path: Path) -> None:
    # B+ tree leaves stay in the library's cache until close: finding the record
    # after reopening proves that dropping the object closed it.
    name = str(tmp_path / "d.tcb")
    cab = Cabinet(name)
    cab.put(b"k", b"v" * 100)
    del cab
    gc.collect()
    with Cabinet(name + "#mode=r") as again:
        assert again.get(b"k") == b"v" * 100


def test_reopen_keeps_data(tmp_path: Path) -> None:
    for suffix in ("r.tch", "r.tcb", "r.tcf", "r.tct"):
        name = str(tmp_path / suffix)
        with Cabinet(name) as cab:
            assert cab.put(b"1", b"a\0b")
        with Cabinet(name) as cab:
            assert cab.get(b"1") == b"a\0b"
            assert cab.rnum() == 1


# --------------------------------------------------------------------------- key/value


def test_kv_basic(kv: Cabinet) -> None:
    assert kv.get(b"k1") is None
    assert kv.put(b"k1", b"v1")
    assert kv.get(b"k1") == b"v1"
    assert kv.put(b"k1", b"v2")
    assert kv.get(b"k1") == b"v2"
    assert not kv.putkeep(b"k1", b"v3")
    assert kv.get(b"k1") == b"v2"
    assert kv.putkeep(b"k2", b"x")
    assert kv.putcat(b"k2", b"yz")
    assert kv.putcat(b"k3", b"new")
    assert kv.get(b"k2") == b"xyz"
    assert kv.get(b"k3") == b"new"
    assert kv.vsiz(b"k2") == 3
    assert kv.vsiz(b"nope") == -1
    assert kv.rnum() == 3
    assert kv.out(b"k2")
    assert not kv.out(b"k2")
    assert kv.get(b"k2") is None
    assert kv.rnum() == 2


def test_kv_binary_safe(kv: Cabinet) -> None:
    key, value = b"a\0b\xff", b"\0\x01\0" * 100
    assert kv.put(key, value)
    assert kv.get(key) == value
    assert kv.get(b"a") is None
    assert kv.vsiz(key) == 300
    assert kv.put(b"", b"")  # empty key and value are legal here
    assert kv.get(b"") == b""
    assert kv.vsiz(b"") == 0
    assert kv.fwmkeys(b"a\0") == [key]


def test_kv_iteration(kv: Cabinet) -> None:
    keys = {b"a%d" % i for i in range(50)}
    for k in keys:
        kv.put(k, b"v")
    assert kv.iterinit()
    seen = []
    while (nxt := kv.iternext()) is not None:
        seen.append(nxt)
    assert sorted(seen) == sorted(keys)
    assert kv.iternext() is None


def test_kv_sync_optimize_vanish(kv: Cabinet) -> None:
    for i in range(10):
        kv.put(b"%d" % i, b"v")
    assert kv.sync()
    assert kv.optimize(b"")
    assert kv.optimize("bnum=1000")
    assert kv.rnum() == 10
    assert kv.vanish()
    assert kv.rnum() == 0
    assert kv.iterinit()
    assert kv.iternext() is None


@pytest.mark.parametrize("name", ["db.tch", "db.tcb"])
def test_fwmkeys_ordering(tmp_path: Path, name: str) -> None:
    with Cabinet(str(tmp_path / name)) as cab:
        for k in (b"b", b"ab", b"a", b"c", b"abc", b"ba"):
            cab.put(k, b"v")
        if name.endswith("tcb"):
            assert cab.fwmkeys(b"") == [b"a", b"ab", b"abc", b"b", b"ba", b"c"]
            assert cab.fwmkeys(b"a") == [b"a", b"ab", b"abc"]
            assert cab.fwmkeys(b"", 2) == [b"a", b"ab"]
        else:
            assert sorted(cab.fwmkeys(b"a")) == [b"a", b"ab", b"abc"]
            assert len(cab.fwmkeys(b"", 2)) == 2
        assert cab.fwmkeys(b"", 0) == []
        assert cab.fwmkeys(b"", -1) == cab.fwmkeys(b"")
        assert len(cab.fwmkeys(b"")) == 6
        assert cab.fwmkeys(b"zz") == []


def test_memtree_is_ordered() -> None:
    with Cabinet("+") as cab:
        for k in (b"b", b"a", b"c", b"ab"):
            cab.put(k, b"v")
        assert cab.fwmkeys(b"") == [b"a", b"ab", b"b", b"c"]
        cab.iterinit()
        assert [cab.iternext() for _ in range(5)] == [b"a", b"ab", b"b", b"c", None]


def test_addint(kv: Cabinet) -> None:
    assert kv.addint(b"n", 5) == 5
    assert kv.get(b"n") == struct.pack("<i", 5)
    assert kv.addint(b"n", -7) == -2
    assert kv.addint(b"n", 0) == -2
    assert kv.addint(b"zero", 0) == 0  # a read that creates the record
    assert kv.get(b"zero") == b"\0\0\0\0"
    kv.put(b"txt", b"abcd")
    assert kv.addint(b"txt", 1) == 0x64636262  # any 4 bytes are an int
    assert kv.get(b"txt") == b"bbcd"
    kv.put(b"bad", b"abc")
    assert kv.addint(b"bad", 1) == INT_MIN
    kv.put(b"max", struct.pack("<i", 2**31 - 1))
    assert kv.addint(b"max", 1) == INT_MIN  # the sum is the sentinel
    assert kv.get(b"max") == struct.pack("<i", INT_MIN)


def test_adddouble(kv: Cabinet) -> None:
    assert kv.adddouble(b"d", 1.5) == 1.5
    assert kv.get(b"d") == struct.pack("<d", 1.5)
    assert kv.adddouble(b"d", -2.75) == -1.25
    assert math.isnan(kv.adddouble(b"d", float("nan")))
    assert kv.adddouble(b"inf", float("inf")) == float("inf")
    kv.addint(b"i", 1)
    assert math.isnan(kv.adddouble(b"i", 1.0))
    assert kv.addint(b"d", 1) == INT_MIN


@pytest.mark.parametrize("kind", sorted(KV_KINDS))
def test_putshl(tmp_path: Path, kind: str) -> None:
    with Cabinet(db_name(tmp_path, KV_KINDS[kind])) as cab:
        cab.put(b"k", b"one+more")
        assert cab.putshl(b"k", b"XYZ", 6)
        assert cab.get(b"k") == b"oreXYZ"
        assert cab.putshl(b"new", b"abcdef", 4)  # created whole, not truncated
        assert cab.get(b"new") == b"abcdef"
        assert cab.putshl(b"new", b"gh", 100)
        assert cab.get(b"new") == b"abcdefgh"
        assert cab.putshl(b"new", b"", 0)
        assert cab.get(b"new") == b""
        assert cab.putshl(b"", b"x\0", 1)
        assert cab.get(b"") == b"x\0"
        with pytest.raises(ValueError):
            cab.putshl(b"k", b"x", -1)


def test_transactions(tmp_path: Path) -> None:
    for suffix in ("x.tch", "x.tcb", "x.tcf", "x.tct"):
        with Cabinet(str(tmp_path / suffix)) as cab:
            assert cab.tranbegin()
            assert cab.put(b"1", b"a\0b")
            assert cab.tranabort()
            assert cab.get(b"1") is None
            assert cab.tranbegin()
            assert cab.put(b"1", b"a\0b")
            assert cab.trancommit()
            assert cab.get(b"1") == b"a\0b"
    with Cabinet("*") as mem:  # the abstract API has no transactions for memory DBs
        assert not mem.tranbegin()


def test_copy(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "src.tch")) as cab:
        cab.put(b"k", b"v")
        assert cab.copy(str(tmp_path / "dst.tch"))
        assert not cab.copy(str(tmp_path / "nodir" / "dst.tch"))
    with Cabinet(str(tmp_path / "dst.tch")) as copy:
        assert copy.get(b"k") == b"v"


def test_copy_table_with_index(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "src.tct#idx=name:lex")) as cab:
        cab.put(b"u1", b"name\0alice")
        assert cab.copy(tmp_path / "dst.tct")
    with Cabinet(str(tmp_path / "dst.tct")) as copy:
        assert copy.indexes == {b"name": "lex"}
        assert copy.get(b"u1") == b"name\0alice"


# --------------------------------------------------------------------------- fixed-length


def test_fixed(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "f.tcf")) as cab:
        assert not cab.put(b"abc", b"v")  # non-numeric key
        assert not cab.put(b"0", b"v")
        for k in (b"3", b"1", b"10"):
            assert cab.put(k, b"v" + k)
        assert cab.get(b" 3x") == b"v3"  # atoi-like key parsing
        assert cab.fwmkeys(b"[1,5]") == [b"1", b"3"]
        assert cab.fwmkeys(b"[min,max]") == [b"1", b"3", b"10"]
        assert cab.fwmkeys(b"1") == []  # a plain prefix is no interval
        assert cab.vsiz(b"abc") == 0  # the library's quirk
        assert cab.put(b"next", b"n")
        assert cab.get(b"11") == b"n"
        assert cab.get(b"max") == b"n"
        assert cab.get(b"min") == b"v1"
        assert cab.addint(b"20", 2) == 2
        assert cab.misc("range", [b"1", b"-1", b"10"]) == [b"1", b"v1", b"3", b"v3"]
        err = cab.misc("error")
        assert err is not None and err[0].split(b": ")[0].isdigit()
        assert cab.misc("iterinit", [b""]) is None  # fails without aborting here
        assert cab.misc("putdup", [b"1", b"x"]) is None


# --------------------------------------------------------------------------- misc (kv)


def test_misc_kv_functions(kv: Cabinet) -> None:
    assert kv.misc("put", [b"a", b"1"]) == []
    assert kv.misc(b"putkeep", [b"a", b"2"]) is None
    assert kv.misc("putcat", [b"a", b"2"]) == []
    assert kv.misc("get", [b"a"]) == [b"12"]
    assert kv.misc("get", [b"nope"]) is None
    assert kv.misc("get") is None
    assert kv.misc("putlist", [b"b", b"2", b"c", b"3", b"odd"]) == []
    assert kv.misc("getlist", [b"c", b"zz", b"b"]) in (
        [b"c", b"3", b"b", b"2"],
        [b"b", b"2", b"c", b"3"],
    )
    assert kv.misc("getpart", [b"a", b"1", b"5"]) == [b"2"]
    assert kv.misc("outlist", [b"b", b"c", b"zz"]) == []
    assert kv.misc("out", [b"b"]) is None
    assert kv.misc("out", [b"a"]) == []
    assert kv.misc("putlist", [b"r1", b"x", b"r2", b"y", b"s", b"z"]) == []
    assert sorted(kv.misc("regex", [b"^r"]) or []) == sorted([b"r1", b"x", b"r2", b"y"])
    assert kv.misc("regex", [b"^R"]) == []
    assert len(kv.misc("regex", [b"*^R"]) or []) == 4
    assert kv.misc("regex", [b"("]) is None
    assert kv.misc("iterinit") == []
    first = kv.misc("iternext")
    assert first is not None and len(first) == 2
    assert kv.misc("sync") == []
    assert kv.misc("optimize", [b""]) == []
    assert kv.misc("nosuchfunction") is None
    assert kv.misc("setindex", [b"c", b"lex"]) is None
    assert kv.misc("search", [b"addcond\0c\x000\0x"]) is None
    assert kv.misc("genuid") is None
    assert kv.misc("vanish") == []
    assert kv.rnum() == 0


def test_misc_error(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "e.tch")) as cab:
        cab.get(b"missing")
        assert cab.misc("error") == [b"22: no record found"]
    with Cabinet("*") as mem:
        assert mem.misc("error") is None


def test_btree_duplicates(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "d.tcb")) as cab:
        assert cab.misc("putdup", [b"k", b"1"]) == []
        assert cab.misc("putdup", [b"k", b"2"]) == []
        assert cab.misc("putdupback", [b"k", b"3"]) == []
        assert cab.misc("get", [b"k"]) == [b"3", b"1", b"2"]  # the library's order
        assert cab.get(b"k") == b"3"
        assert cab.rnum() == 3
        cab.iterinit()
        assert [cab.iternext() for _ in range(4)] == [b"k", b"k", b"k", None]
        assert cab.misc("getlist", [b"k"]) == [b"k", b"3", b"k", b"1", b"k", b"2"]
        assert cab.put(b"k", b"X")  # replaces the first value
        assert cab.misc("get", [b"k"]) == [b"X", b"1", b"2"]
        for k in (b"a", b"b", b"c"):
            cab.put(k, k)
        assert cab.misc("range", [b"a", b"-1", b"c"]) == [b"a", b"a", b"b", b"b"]
        assert cab.misc("range", [b"a", b"1"]) == [b"a", b"a"]
        assert cab.misc("iterinit", [b"b"]) == []
        assert cab.misc("iternext") == [b"b", b"b"]
        assert cab.misc("iterinit", [b""]) == []  # a B+ tree accepts an empty start key
        assert cab.misc("outlist", [b"k"]) == []
        assert cab.misc("get", [b"k"]) is None


def test_memory_range_and_capnum() -> None:
    with Cabinet("+") as cab:
        for k in (b"a", b"b", b"c", b"d"):
            cab.put(k, k)
        assert cab.misc("range", [b"b", b"-1", b"d"]) == [b"b", b"b", b"c", b"c"]
        assert cab.optimize(b"capnum=2")
        assert cab.fwmkeys(b"") == [b"c", b"d"]
    with Cabinet("*") as mem:
        assert mem.misc("range", [b"a"]) is None


# --------------------------------------------------------------------------- tables


def test_table_binary_records(table: Cabinet) -> None:
    assert table.put(b"p1", b"name\0alice\0age\x0030")
    assert table.get(b"p1") == b"name\0alice\0age\x0030"
    assert table.vsiz(b"p1") == 18  # internal encoding, not the GET length
    assert cols(table, b"p1") == [b"name", b"alice", b"age", b"30"]
    assert table.putcat(b"p1", b"age\x0099\0city\0tokyo")
    assert table.get(b"p1") == b"name\0alice\0age\x0030\0city\0tokyo"
    assert not table.putkeep(b"p1", b"a\0b")
    assert not table.put(b"p2", b"\0v\0a\0x")  # empty column name
    assert table.get(b"p2") is None
    assert table.put(b"p3", b"justtext")
    assert table.get(b"p3") == b""
    assert table.misc("get", [b"p3"]) == []
    assert table.get(b"") is None
    assert not table.out(b"")
    assert table.vsiz(b"") == -1


@pytest.mark.parametrize(
    "value, stored",
    [
        (b"a\0\0b\0x", [(b"a", b""), (b"b", b"x")]),
        (b"a\0x\0b", [(b"a", b"x")]),
        (b"a\0x\0", [(b"a", b"x")]),
        (b"a\x001\0b\0x\0a\x002", [(b"a", b"2"), (b"b", b"x")]),
        (b"justtext", []),
        (b"", []),
        ("名\0値".encode(), [("名".encode(), "値".encode())]),
    ],
)
def test_unpack_record_matches_library(table: Cabinet, value: bytes, stored: list) -> None:
    assert list(unpack_record(value).items()) == stored
    assert table.put(b"k", value)
    got = table.misc("get", [b"k"])
    assert got is not None
    assert list(zip(got[0::2], got[1::2])) == stored
    assert table.get(b"k") == pack_record(stored)


@given(st.lists(st.sampled_from([b"\0", b"a", b"b"]), max_size=12).map(b"".join))
def test_empty_value_precheck(value: bytes) -> None:
    # the fast pre-check of the guards never misses an empty column value
    if any(not val for val in unpack_record(value).values()):
        assert b"\0\0" in value or value.endswith(b"\0")


def test_pack_record() -> None:
    assert pack_record({b"name": b"alice", b"age": b"30"}) == b"name\0alice\0age\x0030"
    assert pack_record([(b"a", b""), (b"b", b"x")]) == b"a\0\0b\0x"
    assert pack_record({}) == b""
    assert unpack_record(pack_record({b"x": b"1", b"y": b""})) == {b"x": b"1", b"y": b""}


def test_table_empty_key_generates_uid(table: Cabinet) -> None:
    assert table.put(b"", b"a\0x")
    assert table.get(b"1") == b"a\0x"
    assert table.putkeep(b"", b"a\0y")
    assert table.get(b"2") == b"a\0y"
    assert table.misc("genuid") == [b"3"]
    assert table.put(b"100", b"a\0z")  # explicit keys do not move the counter
    assert table.misc("genuid") == [b"4"]
    assert table.vanish()
    assert table.misc("genuid") == [b"1"]


def test_genuids_take_the_next_numbers_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "u.tct")
    with Cabinet(path) as table:
        assert table.genuid() == 1
        assert table.genuids(5) == [2, 3, 4, 5, 6]
        assert table.genuids(1) == [7]
        assert table.genuid() == 8
        assert table.putkeep(b"", b"a\0x")  # (an empty key takes the next one too)
        assert table.get(b"9") == b"a\0x"
        assert table.genuids(0) == []
    with Cabinet(path) as table:  # the seed moved past them is on disk
        assert table.genuids(3) == [10, 11, 12]
        assert table.vanish()
        assert table.genuids(2) == [1, 2]


def test_genuids_of_a_key_value_database(kv: Cabinet) -> None:
    assert kv.genuids(3) == [-1, -1, -1]


def test_table_addint_adddouble(table: Cabinet) -> None:
    assert table.addint(b"c", 3) == 3
    assert cols(table, b"c") == [b"_num", b"3"]
    table.put(b"r", b"name\0x\0_num\0-2.25")
    assert table.addint(b"r", 1) == -1  # atoi of the old text
    assert cols(table, b"r") == [b"name", b"x", b"_num", b"-1.25"]  # the library's quirk
    table.put(b"t", b"_num\0abc")
    assert table.addint(b"t", 2) == 2
    table.put(b"no", b"name\0y")
    assert table.addint(b"no", 4) == 4
    assert cols(table, b"no") == [b"name", b"y", b"_num", b"4"]
    assert table.adddouble(b"d", 1 / 3) == pytest.approx(1 / 3)
    assert cols(table, b"d") == [b"_num", b"0.333333"]
    assert table.adddouble(b"d", 2 - 1 / 3) == pytest.approx(2)
    assert cols(table, b"d") == [b"_num", b"2"]
    table.put(b"big", b"_num\x002147483647")
    assert table.addint(b"big", 1) == INT_MIN
    assert cols(table, b"big") == [b"_num", b"2147483648"]
    assert table.addint(b"", 1) == 1  # empty key: generated primary key
    assert table.rnum() == 7


def test_table_putshl(table: Cabinet) -> None:
    table.put(b"k", b"a\0\0b\0x\0c\0cc")
    assert table.putshl(b"k", b"q\0r", 3)
    assert cols(table, b"k") == [b"q", b"r"]
    assert table.putshl(b"n", b"a\0b\0c", 2)
    assert cols(table, b"n") == [b"a", b"b"]


def test_table_misc_functions(table: Cabinet) -> None:
    assert table.misc("put", [b"u1", b"name", b"alice", b"age", b"30"]) == []
    assert table.misc("get", [b"u1"]) == [b"name", b"alice", b"age", b"30"]
    assert table.misc("putkeep", [b"u1", b"name", b"x"]) is None
    assert table.misc("putcat", [b"u1", b"age", b"99", b"city", b"tokyo"]) == []
    assert table.misc("get", [b"u1"]) == [b"name", b"alice", b"age", b"30", b"city", b"tokyo"]
    assert table.misc("put", [b"u2", b"", b"v"]) is None  # empty column name
    assert table.misc("put", [b"u2"]) == []  # record without columns
    assert table.misc("get", [b"u2"]) == []
    assert table.misc("put", [b"u3", b"n\0ul", b"x", b"odd"]) == []
    assert table.get(b"u3") == b"n\0ul\0x"
    assert table.misc("putlist", [b"u4", b"name\0dan", b"u5", b"name\0eve\0age\x0041"]) == []
    assert table.misc("getlist", [b"u4", b"zz", b"u5"]) == [
        b"u4",
        b"name\0dan",
        b"u5",
        b"name\0eve\0age\x0041",
    ]
    assert table.misc("getpart", [b"u4", b"5", b"2"]) == [b"da"]
    assert table.misc("regex", [b"^u[45]$"]) == [
        b"u4",
        b"name\0dan",
        b"u5",
        b"name\0eve\0age\x0041",
    ]
    assert table.misc("outlist", [b"u4", b"zz"]) == []
    assert table.misc("out", [b"u4"]) is None
    assert table.misc("out", [b"u5"]) == []
    assert table.misc("iterinit", [b"u2"]) == []
    nxt = table.misc("iternext")
    assert nxt is not None and nxt[0] == b"u2"
    assert table.misc("iterinit", [b"nope"]) is None
    assert table.misc("genuid") == [b"1"]
    assert table.misc("range", [b""]) is None
    assert table.misc("putdup", [b"a", b"b"]) is None
    assert table.misc("error") == [b"22: no record found"]


def test_table_search(table: Cabinet) -> None:
    rows = {
        b"u1": {b"name": b"alice", b"age": b"30", b"city": b"tokyo"},
        b"u2": {b"name": b"bob", b"age": b"25", b"city": b"osaka"},
        b"u3": {b"name": b"carol", b"age": b"35", b"city": b"tokyo"},
        b"u9": {b"name": b"hal", b"age": b"-5", b"city": b"tokyo"},
    }
    for pk, rec in rows.items():
        assert table.put(pk, pack_record(rec))
    tokyo = b"addcond\0city\x000\0tokyo"
    assert table.misc("search", [tokyo]) == [b"u1", b"u3", b"u9"]
    assert table.misc("search", [tokyo, b"count"]) == [b"3"]
    got = table.misc("search", [tokyo, b"get\0name\0age"])
    assert got == [b"name\0alice\0age\x0030", b"name\0carol\0age\x0035", b"name\0hal\0age\0-5"]
    got = table.misc("search", [b"hint", tokyo, b"setorder\0age\x002"])
    assert got is not None and got[:3] == [b"u9", b"u1", b"u3"]
    assert got[-1].startswith(b"\0\0[[HINT]]\n")
    assert table.misc("search", [b"addcond\0age\x0010\x0030", b"setlimit\x001\x001"]) == [b"u3"]
    union = [b"addcond\0city\x000\0osaka", b"next", b"addcond\0name\x000\0hal", b"mstype\x000"]
    assert table.misc("metasearch", union) == [b"u2", b"u9"]
    assert table.misc("search", [b"addcond\0city\x000\0tokyo", b"out"]) == []
    assert table.rnum() == 1


def test_table_setindex_and_discovery(tmp_path: Path) -> None:
    name = str(tmp_path / "i.tct")
    with Cabinet(name) as cab:
        cab.put(b"u1", b"name\0alice\0age\x0030\0tags\0a b\0text\0fox")
        assert cab.indexes == {}
        assert cab.misc("setindex", [b"name", b"lex", b"age", b"1"]) == []
        assert cab.misc("setindex", [b"tags", b"TOKEN", b"text", b"3", b"odd"]) == []
        assert cab.indexes == {b"name": "lex", b"age": "dec", b"tags": "tok", b"text": "qgr"}
        hint = cab.misc("search", [b"hint", b"addcond\0name\x000\0alice"])
        assert hint is not None and b'using an index: "name"' in hint[-1]
        assert cab.misc("setindex", [b"name", b"+lex"]) is None  # keep: exists
        assert cab.misc("setindex", [b"tags", b"4"]) is None  # invalid drops the index
        assert b"tags" not in cab.indexes
        assert cab.misc("setindex", [b"text", b"void"]) == []
        assert cab.misc("setindex", [b"text", b"void"]) is None
        assert cab.misc("setindex", [b"age", b"opt"]) == []
        assert cab.misc("setindex", []) == []
        assert cab.indexes == {b"name": "lex", b"age": "dec"}
        assert cab.vanish()
        assert cab.indexes == {b"name": "lex", b"age": "dec"}  # definitions survive
    with Cabinet(name) as again:
        assert again.indexes == {b"name": "lex", b"age": "dec"}
        hint = again.misc("search", [b"hint", b"addcond\0age\x008\x0030"])
        assert hint is not None and b'using an index: "age"' in hint[-1]


def test_index_discovery_odd_column_names(tmp_path: Path) -> None:
    odd = [b"a.b", b"a/b", b"a%b", b"a b", "é".encode(), b"\x01", b"*", b"x.lex", b"", b"a#b"]
    name = str(tmp_path / "o.tct")
    with Cabinet(name) as cab:
        for col in odd:
            assert cab.misc("setindex", [col, b"dec"]) == [], col
        assert cab.misc("setindex", [b"cut\0off", b"lex"]) == []  # a C string
        expected = {col: "dec" for col in odd} | {b"cut": "lex"}
        assert cab.indexes == expected
    with Cabinet(name) as again:
        assert again.indexes == expected


def test_open_idx_param(tmp_path: Path) -> None:
    name = str(tmp_path / "people.tct")
    with Cabinet(name + "#bnum=1000000#idx=age:dec#idx=name#idx=tags:tok#IDX=x:bogus") as cab:
        assert cab.indexes == {b"age": "dec", b"name": "lex", b"tags": "tok"}
    with Cabinet(name + "#idx=age:lex") as cab:  # an existing index is kept as it is
        assert cab.indexes[b"age"] == "dec"


TYPE_TEXTS = [
    b"0", b"1", b"2", b"3", b"4", b"-1", b"lex", b"LEX", b"Lexical", b"str", b"dec", b"num",
    b"decimal", b"tok", b"token", b"qgr", b"fts", b"qgram", b" 0", b"0 ", b"\t1", b"\n1",
    b"\x011", b"\x7f1", b"\xa01", b"+0", b"+1", b"++0", b"+ 0", b"-0", b"00", b"0.0", b".5",
    b"1.", b"1.x", b"1..", b"1e0", b"0x1", b"1x", b"lex ", b" lex", b"+lex", b"+LEX", b"1 2",
    b"16777216", b"16777217", b"16777218", b"33554432", b"33554433", b"50331648",
    b"4294967296", b"4294967297", b"2147483648", b"-4294967295", b"-18446744073709551615",
    b"99999999999999999999", b"18446744073709551617", b"9998", b"9999", b"opt", b"optimize",
    b"void", b"NULL", b"+void", b"+9999", b"", b"bogus", b"-", b".", b"-16777216", b"0\0x",
]  # fmt: skip


@pytest.mark.parametrize("text", TYPE_TEXTS)
def test_parse_index_type_matches_library(tmp_path: Path, text: bytes) -> None:
    parsed = parse_index_type(text)
    base = None if parsed is None else parsed & ~(1 << 24)
    kinds = {0: "lex", 1: "dec", 2: "tok", 3: "qgr"}
    with Cabinet(str(tmp_path / "fresh.tct")) as cab:
        cab.put(b"r", b"c\0x")
        ok = cab.misc("setindex", [b"c", text]) is not None
        assert ok == (base in kinds)
        assert cab.indexes == ({b"c": kinds[base]} if base in kinds else {})
    with Cabinet(str(tmp_path / "tok.tct#idx=c:tok")) as cab:
        cab.put(b"r", b"c\0x")
        ok = cab.misc("setindex", [b"c", text]) is not None
        if parsed is None or parsed & (1 << 24):
            assert not ok and cab.indexes == {b"c": "tok"}
        elif base in kinds:
            assert ok and cab.indexes == {b"c": kinds[base]}
        elif base == 9998:
            assert ok and cab.indexes == {b"c": "tok"}
        elif base == 9999:
            assert ok and cab.indexes == {}
        else:  # an invalid type fails and drops the existing index
            assert not ok and cab.indexes == {}


# --------------------------------------------------------------------------- guards

ABORT_SETUP = {
    "tct": "",
    "tct-lex": "c.misc('setindex', [b'c', b'lex']); c.put(b'r1', b'c\\0x\\0d\\0y')",
    "tct-dec": "c.misc('setindex', [b'c', b'dec']); c.put(b'r1', b'c\\x001\\0d\\0y')",
    "tct-empty": "c.put(b'r1', b'c\\0\\0d\\0y')",
    "tch": "c.put(b'k', b'v')",
}

# (db file, setup, unguarded call, guarded call, expected failure result)
ABORT_CASES = {
    "misc-put-empty-pk": (
        "tct",
        "raw_misc(b'put', [b'', b'c', b'v'])",
        "c.misc('put', [b'', b'c', b'v'])",
        None,
    ),
    "misc-putkeep-empty-pk": (
        "tct",
        "raw_misc(b'putkeep', [b''])",
        "c.misc('putkeep', [b''])",
        None,
    ),
    "misc-putcat-empty-pk": (
        "tct",
        "raw_misc(b'putcat', [b'', b'c', b'v'])",
        "c.misc('putcat', [b'', b'c', b'v'])",
        None,
    ),
    "misc-putlist-empty-pk": (
        "tct",
        "raw_misc(b'putlist', [b'a', b'c\\0v', b'', b'c\\0v'])",
        "c.misc('putlist', [b'a', b'c\\0v', b'', b'c\\0v'])",
        None,
    ),
    "misc-iterinit-empty-table": (
        "tct",
        "raw_misc(b'iterinit', [b''])",
        "c.misc('iterinit', [b''])",
        None,
    ),
    "misc-iterinit-empty-hash": (
        "tch",
        "raw_misc(b'iterinit', [b''])",
        "c.misc('iterinit', [b''])",
        None,
    ),
    "putshl-empty-key-table": (
        "tct",
        "raw_putproc(b'', b'c\\0v')",
        "c.putshl(b'', b'c\\0v', 10)",
        False,
    ),
    "put-empty-lex": ("tct-lex", "raw('put', b'k', b'c\\0')", "c.put(b'k', b'c\\0')", False),
    "put-empty-dec": (
        "tct-dec",
        "raw('put', b'k', b'd\\0e\\0c\\0')",
        "c.put(b'k', b'd\\0e\\0c\\0')",
        False,
    ),
    "put-uid-empty-lex": ("tct-lex", "raw('put', b'', b'c\\0')", "c.put(b'', b'c\\0')", False),
    "put-dup-last-empty": (
        "tct-lex",
        "raw('put', b'k', b'c\\0z\\0c\\0')",
        "c.put(b'k', b'c\\0z\\0c\\0')",
        False,
    ),
    "putkeep-empty-lex": (
        "tct-lex",
        "raw('putkeep', b'k', b'c\\0')",
        "c.putkeep(b'k', b'c\\0')",
        False,
    ),
    "putcat-new-record": (
        "tct-lex",
        "raw('putcat', b'k', b'c\\0')",
        "c.putcat(b'k', b'c\\0')",
        False,
    ),
    "putcat-new-column": (
        "tct-lex",
        "c.put(b'k', b'd\\0y'); raw('putcat', b'k', b'c\\0')",
        "c.put(b'k', b'd\\0y'); r = c.putcat(b'k', b'c\\0')",
        False,
    ),
    "putshl-empty-lex": (
        "tct-lex",
        "c.put(b'k', b'd\\0y'); raw('put', b'k', b'd\\0y\\0c\\0')",
        "c.put(b'k', b'd\\0y'); r = c.putshl(b'k', b'\\0c\\0', 100)",
        False,
    ),
    "misc-put-empty-lex": (
        "tct-lex",
        "raw_misc(b'put', [b'k', b'c', b''])",
        "c.misc('put', [b'k', b'c', b''])",
        None,
    ),
    "misc-putkeep-empty-dec": (
        "tct-dec",
        "raw_misc(b'putkeep', [b'k', b'c', b''])",
        "c.misc('putkeep', [b'k', b'c', b''])",
        None,
    ),
    "misc-putcat-empty-lex": (
        "tct-lex",
        "raw_misc(b'putcat', [b'r1', b'e', b'1']); raw_misc(b'putcat', [b'k', b'c', b''])",
        "c.misc('putcat', [b'r1', b'e', b'1']); r = c.misc('putcat', [b'k', b'c', b''])",
        None,
    ),
    "misc-putlist-empty-lex": (
        "tct-lex",
        "raw_misc(b'putlist', [b'a', b'c\\0z', b'b', b'c\\0'])",
        "c.misc('putlist', [b'a', b'c\\0z', b'b', b'c\\0'])",
        None,
    ),
    "setindex-lex-over-empty": (
        "tct-empty",
        "raw_misc(b'setindex', [b'c', b'lex'])",
        "c.misc('setindex', [b'c', b'lex'])",
        None,
    ),
    "setindex-dec-over-empty": (
        "tct-empty",
        "raw_misc(b'setindex', [b'd', b'tok', b'c', b'+1'])",
        "c.misc('setindex', [b'd', b'tok', b'c', b'+1'])",
        None,
    ),
    "setindex-numeric-over-empty": (
        "tct-empty",
        "raw_misc(b'setindex', [b'c\\0junk', b' 4294967296 '])",
        "c.misc('setindex', [b'c\\0junk', b' 4294967296 '])",
        None,
    ),
}

CHILD_PRELUDE = """
import ctypes, importlib.util, sys
spec = importlib.util.spec_from_file_location("cab", {path!r})
cab = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cab)
c = cab.Cabinet({name!r})
adb = c._adb
def raw_misc(name, args):
    return cab.Cabinet._misc(adb, name, args)
def raw(fn, key, value):
    return getattr(cab, "_tcadb" + fn)(adb, key, len(key), value, len(value))
PROC = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                        ctypes.POINTER(ctypes.c_int), ctypes.c_void_p)
def raw_putproc(key, value):
    # what ttserver runs for PUTSHL (the function this module replaces by get + put)
    f = cab._lib.tcadbputproc
    f.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                  ctypes.c_int, PROC, ctypes.c_void_p]
    f.restype = ctypes.c_bool
    return f(adb, key, len(key), value, len(value), PROC(lambda *a: None), None)
{setup}
{call}
print("survived")
"""


def run_child(tmp_path: Path, db: str, call: str) -> subprocess.CompletedProcess[str]:
    name = str(tmp_path / ("child.tch" if db == "tch" else "child.tct"))
    code = CHILD_PRELUDE.format(path=str(CABINET_PY), name=name, setup=ABORT_SETUP[db], call=call)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("case", sorted(ABORT_CASES))
def test_library_aborts_without_guard(tmp_path: Path, case: str) -> None:
    """Proof, in a child process, that the library call itself kills the process."""
    db, unguarded, _, _ = ABORT_CASES[case]
    proc = run_child(tmp_path, db, unguarded)
    assert proc.returncode == -signal.SIGABRT, proc.stdout + proc.stderr
    assert "assertion failed" in proc.stderr


@pytest.mark.parametrize("case", sorted(ABORT_CASES))
def test_guard_refuses_abort_case(tmp_path: Path, case: str) -> None:
    db, _, guarded, expected = ABORT_CASES[case]
    name = str(tmp_path / ("g.tch" if db == "tch" else "g.tct"))
    with Cabinet(name) as c:
        exec(ABORT_SETUP[db], {"c": c})
        before = sorted((k, c.get(k)) for k in c.fwmkeys(b""))
        scope: dict[str, object] = {"c": c}
        if "r =" in guarded:
            exec(guarded, scope)
            result = scope["r"]
        else:
            result = eval(guarded, scope)
        assert result == expected
        assert c.misc("sync") == []  # still alive and usable
        if ";" not in guarded:
            assert sorted((k, c.get(k)) for k in c.fwmkeys(b"")) == before


def test_guard_child_survives(tmp_path: Path) -> None:
    """The guarded calls run in the same kind of child process and it survives."""
    calls = "; ".join(
        guarded.split("r = ")[-1] for db, _, guarded, _ in ABORT_CASES.values() if db == "tct-lex"
    )
    proc = run_child(tmp_path, "tct-lex", calls)
    assert proc.returncode == 0, proc.stderr
    assert "survived" in proc.stdout


def test_guards_do_not_refuse_legal_writes(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "ok.tct#idx=c:lex#idx=t:tok")) as c:
        assert c.put(b"a", b"c\0x\0t\0\0d\0")  # empty values outside lex/dec
        assert c.put(b"b", b"c")  # dangling name: no column
        assert c.put(b"c", b"c\0\0c\0z")  # duplicate: the last value wins
        assert cols(c, b"c") == [b"c", b"z"]
        assert c.putcat(b"a", b"c\0")  # existing column keeps its value
        assert cols(c, b"a") == [b"c", b"x", b"t", b"", b"d", b""]
        assert c.misc("putcat", [b"a", b"c", b""]) == []
        assert c.misc("put", [b"m", b"c", b"", b"c", b"y"]) == []
        assert not c.put(b"e", b"c\0\0\0v")  # empty name: the library's own failure
        assert c.misc("putlist", [b"p", b"\0v", b"q", b"c\0"]) is None  # stops at p
        assert c.get(b"q") is None
        assert c.misc("putlist", [b"p", b"\0v", b"", b"c\0v"]) is None  # never reaches b""
        assert c.misc("setindex", [b"t", b"tok", b"d", b"qgr"]) == []
        assert c.misc("setindex", [b"d", b"9999", b"c", b"lex"]) == []
        assert c.misc("setindex", [b"t", b"+lex"]) is None  # keep flag, index exists
        assert c.misc("iterinit", [b"a"]) == []
    with Cabinet(str(tmp_path / "k.tch")) as h:
        h.put(b"k", b"v")
        assert h.misc("iterinit", [b"k"]) == []
        assert h.misc("iternext") == [b"k", b"v"]
        assert h.putshl(b"", b"v", 1)


def test_uid_not_consumed_by_refused_put(table: Cabinet) -> None:
    table.misc("setindex", [b"c", b"lex"])
    assert not table.put(b"", b"c\0")
    assert table.misc("genuid") == [b"1"]


def test_open_idx_guard(tmp_path: Path) -> None:
    name = str(tmp_path / "o.tct")
    with Cabinet(name) as c:
        c.put(b"k", b"c\0\0d\0x")
    with pytest.raises(OSError, match="empty values"):
        Cabinet(name + "#idx=c:lex")
    with pytest.raises(OSError, match="empty values"):
        Cabinet(name + "#idx=d:dec#idx=c:+1")
    with Cabinet(name + "#idx=c:tok#idx=c:lex#idx=d:lex") as c:  # c gets tok first
        assert c.indexes == {b"c": "tok", b"d": "lex"}
    with Cabinet(name + "#idx=c:lex#mode=r") as c:  # a reader builds nothing
        assert c.indexes == {b"c": "tok", b"d": "lex"}


def test_open_idx_aborts_without_guard(tmp_path: Path) -> None:
    name = str(tmp_path / "o.tct")
    with Cabinet(name) as c:
        c.put(b"k", b"c\0")
    code = textwrap.dedent(
        f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location("cab", {str(CABINET_PY)!r})
        cab = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(cab)
        cab._tcadbopen(cab._tcadbnew(), {name + "#idx=c:lex"!r}.encode())
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGABRT


# --------------------------------------------------------------------------- resources


def rss_kib() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_no_leak_over_200k_ops(tmp_path: Path) -> None:
    value = b"v" * 256
    keys = [b"key%d" % i for i in range(64)]
    with Cabinet("*") as mem, Cabinet(str(tmp_path / "leak.tct")) as tbl:
        for k in keys:
            mem.put(k, value)
            tbl.put(k, b"name\0" + value)

        def work(n: int) -> None:
            for i in range(n):
                k = keys[i & 63]
                mem.put(k, value)
                assert mem.get(k) is not None
                if i % 8 == 0:
                    mem.fwmkeys(b"key1", 4)
                    mem.misc("get", [k])
                    tbl.get(k)
                    tbl.misc("search", [b"addcond\0name\x002\0v", b"setlimit\x002"])
                    tbl.iterinit()
                    tbl.iternext()

        work(20_000)
        gc.collect()
        before = rss_kib()
        work(200_000)
        gc.collect()
        growth = rss_kib() - before
    assert growth < 16 * 1024, f"RSS grew by {growth} KiB"


def test_threads_share_one_cabinet(tmp_path: Path) -> None:
    with Cabinet(str(tmp_path / "th.tch")) as cab:
        errors: list[BaseException] = []

        def worker(n: int) -> None:
            try:
                for i in range(2000):
                    cab.put(b"t%d-%d" % (n, i), b"x")
                    cab.putshl(b"shared", b"y", 1_000_000)
                    cab.addint(b"counter", 1)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert cab.rnum() == 8 * 2000 + 2
        assert cab.get(b"shared") == b"y" * 16000
        assert cab.addint(b"counter", 0) == 16000


def test_guard_nul_in_column_name_of_indexed_column(tmp_path: Path) -> None:
    # Tokyo Cabinet matches column names to indexes as C strings: "a\0x" hits
    # the index of "a", and an empty value there would abort the process.
    with Cabinet(str(tmp_path / "t.tct")) as table:
        assert table.misc(b"setindex", [b"a", b"0"]) == []
        assert table.misc(b"put", [b"k", b"a\0x", b""]) is None
        assert table.misc(b"putkeep", [b"k", b"a\0x", b""]) is None
        assert table.misc(b"put", [b"k", b"a\0x", b"v"]) == []
        assert table.misc(b"get", [b"k"]) is not None
        assert table.rnum() == 1
