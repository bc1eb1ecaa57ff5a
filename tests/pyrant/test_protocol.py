"""pyrant.protocol.TyrantProtocol, pyrant.exceptions and pyrant.utils."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import pyrant
from pyrant import exceptions, utils
from pyrant.protocol import DB_HASH, DB_TABLE, TyrantProtocol
from tests.pyrant.conftest import _address

P = TyrantProtocol


@pytest.fixture
def p(native: object, tyrant_url: str) -> Iterator[TyrantProtocol]:
    proto = TyrantProtocol(*_address(tyrant_url))
    yield proto
    proto.close()


@pytest.fixture
def hp(hash_url: str) -> Iterator[TyrantProtocol]:
    proto = TyrantProtocol(*_address(hash_url), timeout=10)
    proto.vanish()
    yield proto
    proto.vanish()
    proto.close()


def test_constants() -> None:
    assert (P.PUT, P.GET, P.MISC, P.STAT) == (0x10, 0x30, 0x90, 0x88)
    assert (P.RDBQCSTREQ, P.RDBQCNUMEQ, P.RDBQCFTSEX) == (0, 8, 18)
    assert (P.RDBQCNEGATE, P.RDBQCNOIDX) == (1 << 24, 1 << 25)
    assert (P.RDBQOSTRASC, P.RDBQONUMDESC) == (0, 3)
    assert (P.TDBMSUNION, P.TDBMSISECT, P.TDBMSDIFF) == (0, 1, 2)
    assert (P.RDBMONOULOG, P.RDBXOLCKREC, P.RDBXOLCKGLB) == (1, 1, 2)
    assert (P.TDBITLEXICAL, P.TDBITQGRAM, P.TDBITOPT, P.TDBITVOID, P.TDBITKEEP) == (
        0, 3, 9998, 9999, 1 << 24)
    assert pyrant.protocol.MAGIC_NUMBER == 0xC8
    assert (pyrant.protocol.ENCODING, pyrant.protocol.ENCODING_ERROR_HANDLING) == (
        "UTF-8", "strict")
    assert (pyrant.protocol.DB_BTREE, DB_TABLE, pyrant.protocol.DB_MEMORY, DB_HASH) == (
        "B+ tree", "table", "on-memory hash", "hash")
    assert pyrant.protocol.TABLE_COLUMN_SEP == "\x00"


def test_key_value_commands(hp: TyrantProtocol) -> None:
    assert (hp.host, hp.port) == (hp.client.host, hp.client.port)
    assert hp.put("foo", "bar\x00baz") is None
    assert hp.put(b"fox", "box\x00quux") is None
    assert hp.rnum() == 2
    assert hp.get("foo") == "bar\x00baz"
    assert hp.get("fox", literal=True) == b"box\x00quux"
    assert hp.mget(["foo", "fox", "nope"]) == [("foo", "bar\x00baz"), ("fox", "box\x00quux")]
    assert hp.mget(["foo"], literal=True) == [(b"foo", b"bar\x00baz")]
    assert hp.vsiz("foo") == 7
    with pytest.raises(exceptions.InvalidOperation):
        hp.putkeep("foo", "x")
    assert hp.putkeep("new", "x") is None
    hp.putcat("new", "y")
    hp.putshl("new", "zz", 3)
    assert hp.get("new") == "yzz"
    hp.putnr("nr", "v")
    assert hp.get("nr") == "v"
    assert hp.out("nr") is None
    with pytest.raises(exceptions.InvalidOperation):
        hp.out("nr")
    with pytest.raises(exceptions.InvalidOperation):
        hp.get("nr")
    with pytest.raises(exceptions.InvalidOperation):
        hp.vsiz("nr")
    assert sorted(hp.fwmkeys("f")) == ["foo", "fox"]
    assert len(hp.fwmkeys("f", 1)) == 1
    assert isinstance(hp.size(), int) and hp.size() > 0
    assert hp.sync() is None


def test_iteration(hp: TyrantProtocol) -> None:
    hp.put("a", "1")
    hp.put("b", "2")
    assert hp.iterinit() is None
    got = [hp.iternext(), hp.iternext()]
    assert sorted(got) == ["a", "b"]
    with pytest.raises(exceptions.InvalidOperation):
        hp.iternext()


def test_counters(hp: TyrantProtocol) -> None:
    assert hp.addint("n", 5) == 5
    assert hp.addint("n", -7) == -2  # signed (pyrant could not send a negative number)
    assert hp.getint("n") == -2
    assert hp.adddouble("d", 1.5) == 1.5
    assert hp.adddouble("d", -2.75) == -1.25
    assert hp.getdouble("d") == -1.25
    hp.put("text", "abc")
    with pytest.raises(exceptions.InvalidOperation):
        hp.addint("text", 1)


def test_ext_without_extension(hp: TyrantProtocol) -> None:
    with pytest.raises(exceptions.InvalidOperation):
        hp.ext("echo", P.RDBXOLCKREC | P.RDBXOLCKGLB, "k", "v")


def test_stat_is_text(hp: TyrantProtocol) -> None:
    text = hp.stat()
    assert isinstance(text, str)
    stats = utils.csv_to_dict(text)
    assert stats["type"] == "hash"
    assert text.endswith("\n")


def test_misc(hp: TyrantProtocol, p: TyrantProtocol) -> None:
    assert hp.misc("putlist", ["a", "1", "b", 2]) == []
    assert hp.misc("getlist", ["a", "b", "zz"]) == ["a", "1", "b", "2"]
    assert hp.misc("outlist", ["a"], P.RDBMONOULOG) == []
    with pytest.raises(exceptions.InvalidOperation):
        hp.misc("nosuchfunction", [])
    assert p.genuid() == "1"
    with pytest.raises(exceptions.InvalidOperation):
        hp.genuid()


def test_vanish(hp: TyrantProtocol) -> None:
    hp.put("a", "1")
    assert hp.vanish() is None
    assert hp.rnum() == 0


def test_restore_and_setmst_send_whole_frames(hp: TyrantProtocol) -> None:
    # pyrant left out RESTORE's and SETMST's timestamp and options: the server
    # waited for the missing bytes and the call hung.
    with pytest.raises(exceptions.InvalidOperation):
        hp.restore("/nonexistent-dir", 0)
    if not os.environ.get("TYRANT_HASH_URL"):  # it would end a real slave's replication
        assert hp.setmst("", 0) is None  # no master: replication stays off
    assert hp.rnum() == 0  # the connection is still in step


def test_indexes(p: TyrantProtocol) -> None:
    # column names no real database is likely to index (TYRANT_URL is left as found)
    name, age, tags, bio = (f"pyrant_test_{c}" for c in ("name", "age", "tags", "bio"))
    try:
        assert p.add_index(name) is True
        assert p.add_index(name, keep=True) is False  # exists already
        assert p.add_index(age, "decimal") is True
        assert p.add_index(tags, "token") is True
        assert p.add_index(bio, "q-gram") is True
        assert p.optimize_index(name) is True
        with pytest.raises(AssertionError, match="unknown index type"):
            p.add_index("x", "bogus")
        assert p.drop_index(name) is True
        assert p.drop_index(name) is False
        assert p.optimize_index(name) is False
    finally:
        for column in (name, age, tags, bio):
            p.drop_index(column)


def test_search(p: TyrantProtocol) -> None:
    for i, (name, age) in enumerate([("alice", 30), ("bob", 25), ("carol", 35), ("dave", 40)]):
        p.misc("put", [f"u{i}", "name", name, "age", age])
    assert p.search([]) == ["u0", "u1", "u2", "u3"]
    assert p.search([("age", P.RDBQCNUMGT, 26)]) == ["u0", "u2", "u3"]
    assert p.search([("name", P.RDBQCSTREQ | P.RDBQCNEGATE, "bob")]) == ["u0", "u2", "u3"]
    assert p.search([], order_column="age", order_type=P.RDBQONUMDESC) == [
        "u3", "u2", "u0", "u1"]
    assert p.search([], limit=2, offset=1, order_column="name") == ["u1", "u2"]
    assert len(p.search([("age", P.RDBQCNUMGE, 0)] * 1)) == 4
    assert p.search([], columns=["name"], limit=2) == ["name\x00alice", "name\x00bob"]
    assert p.search([("age", P.RDBQCNUMGT, 26)], count=True) == ["3"]
    with_hint = p.search([("name", P.RDBQCSTREQ, "bob")], hint=True)
    assert with_hint[0] == "u1" and with_hint[-1].startswith("\x00\x00[[HINT]]\n")
    both = p.search([("name", P.RDBQCSTREQ, "bob")], ms_type=P.TDBMSUNION,
                    ms_conditions=[[("age", P.RDBQCNUMGT, 36)]])
    assert both == ["u1", "u3"]
    assert p.search([("age", P.RDBQCNUMGT, 26)], ms_type=P.TDBMSDIFF,
                    ms_conditions=[[("name", P.RDBQCSTREQ, "alice")]]) == ["u2", "u3"]
    assert p.search([("age", P.RDBQCNUMGT, 26)], ms_type=P.TDBMSISECT,
                    ms_conditions=[[("age", P.RDBQCNUMLT, 36)]]) == ["u0", "u2"]
    assert p.search([("name", P.RDBQCSTREQ, "bob")], out=True) == []
    assert p.rnum() == 3
    with pytest.raises(ValueError, match="Offset cannot be specified without limit"):
        p.search([], limit=None, offset=2)
    with pytest.raises(AssertionError):
        p.search([], limit=-1)
    with pytest.raises(AssertionError):
        p.search([], order_type=7)
    with pytest.raises(AssertionError):
        p.search([], ms_type=5)


def test_from_client_shares_the_connections(native: object) -> None:
    from doqu_tyrant.tyrant import Tyrant

    assert isinstance(native, Tyrant)
    proto = TyrantProtocol.from_client(native)
    assert proto.client is native
    native.put("k", "name\x00x")
    assert proto.get("k") == "name\x00x"


def test_undecodable_replies(hp: TyrantProtocol) -> None:
    hp.put("bin", b"\xff\xfe")
    with pytest.raises(UnicodeDecodeError):
        hp.get("bin")
    assert hp.get("bin", literal=True) == b"\xff\xfe"
    old = pyrant.protocol.ENCODING_ERROR_HANDLING
    pyrant.protocol.ENCODING_ERROR_HANDLING = "replace"
    try:
        assert hp.get("bin") == "\ufffd\ufffd"
    finally:
        pyrant.protocol.ENCODING_ERROR_HANDLING = old


# -- exceptions ----------------------------------------------------------------------------


def test_exception_hierarchy() -> None:
    names = ["Success", "InvalidOperation", "HostNotFound", "ConnectionRefused", "SendError",
             "ReceiveError", "RecordExists", "RecordNotFound", "MiscellaneousError"]
    assert exceptions.__all__ == [*names, "get_for_code"]
    for name in names:
        cls = getattr(exceptions, name)
        assert cls.__bases__ == (exceptions.TyrantError,)
    assert exceptions.TyrantError.__bases__ == (Exception,)
    assert exceptions.RecordExists.message == "Record already exists"
    assert exceptions.ERROR_CODE_TO_CLASS[9999] is exceptions.MiscellaneousError


def test_get_for_code() -> None:
    assert type(exceptions.get_for_code(1)) is exceptions.InvalidOperation
    assert type(exceptions.get_for_code(7)) is exceptions.RecordNotFound
    err = exceptions.get_for_code(6, "already")
    assert type(err) is exceptions.RecordExists and err.args == ("already",)
    assert exceptions.get_for_code(0).args == ()
    with pytest.raises(ValueError, match="Unknown error code"):
        exceptions.get_for_code(42)
    with pytest.raises(TypeError):
        exceptions.get_for_code("x")  # type: ignore[arg-type]


# -- utils ---------------------------------------------------------------------------------


def test_pairwise() -> None:
    assert list(utils.pairwise(["a", "b", "c", "d"])) == [("a", "b"), ("c", "d")]
    assert list(utils.pairwise(["a", "b", "c"])) == [("a", "b"), ("c", None)]
    with pytest.raises(AssertionError):
        list(utils.pairwise("abcd"))


def test_from_python() -> None:
    assert utils.from_python("text") == "text"
    assert utils.from_python(0) == 0
    assert utils.from_python(123) == 123
    assert utils.from_python(True) == 1
    assert utils.from_python(False) == ""
    assert utils.from_python(None) == ""
    for value in (None, True, False):
        assert bool(value) == bool(str(utils.from_python(value)))


def test_to_python() -> None:
    assert utils.to_python("foo", DB_HASH) == "foo"
    assert utils.to_python("foo\x00bar", DB_HASH) == "foo\x00bar"
    assert utils.to_python("foo\x00bar, baz, quux", DB_HASH, sep=", ") == [
        "foo\x00bar", "baz", "quux"]
    assert utils.to_python("foo", DB_TABLE) == {"foo": None}
    assert utils.to_python("foo\x00bar", DB_TABLE) == {"foo": "bar"}
    assert utils.to_python("foo\x00bar, baz, quux", DB_TABLE, sep=", ") == {
        "foo": ["bar", "baz", "quux"]}
    assert utils.to_python("foo\x00bar\x00baz\x00quux, 123", DB_TABLE, sep=", ") == {
        "foo": "bar", "baz": ["quux", "123"]}
    assert utils.to_python("", DB_TABLE) == {}
    assert utils.to_python("a\x00", DB_TABLE) == {"a": ""}
    assert utils.to_python(b"a\x00b,c", DB_TABLE, sep=",") == {b"a": [b"b", b"c"]}
    assert utils.to_python("", DB_HASH, sep=",") == ""


def test_csv_to_dict() -> None:
    assert utils.csv_to_dict("a\t1\nb\tx\ty\n\n") == {"a": "1", "b": "x\ty"}
