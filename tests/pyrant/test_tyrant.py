"""pyrant.Tyrant: the dict-like API on table and hash databases, as pyrant 0.6.5."""

from __future__ import annotations

import socket
import types

import pytest

import pyrant
from pyrant import exceptions
from tests.pyrant.conftest import _address
from tests.servers import ServerProcess

# -- construction and database information -------------------------------------------------


def test_table_database_is_detected(tt: pyrant.Tyrant) -> None:
    assert tt.db_type == "table"
    assert tt.table_enabled is True
    assert tt.separator == "\x00"  # set for tables when none is given
    assert tt.literal is False
    assert isinstance(tt.db_path, str) and tt.db_path
    assert repr(tt) == f"<Tyrant {tt.proto.host}:{tt.proto.port}>"
    assert isinstance(tt.proto, pyrant.protocol.TyrantProtocol)


def test_hash_database_is_detected(kt: pyrant.Tyrant) -> None:
    assert kt.db_type == "hash"
    assert kt.table_enabled is False
    assert kt.separator is None


def test_defaults_and_module_names() -> None:
    assert pyrant.DEFAULT_HOST == "127.0.0.1"
    assert pyrant.DEFAULT_PORT == 1978
    assert pyrant.__all__ == ["Tyrant"]
    assert isinstance(pyrant.protocol, types.ModuleType)
    assert isinstance(pyrant.query, types.ModuleType)
    assert isinstance(pyrant.exceptions, types.ModuleType)
    assert isinstance(pyrant.utils, types.ModuleType)


def test_constructor_fails_at_once_without_a_server(tmp_path: object) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(socket.error):
            pyrant.Tyrant("127.0.0.1", port)
        with pytest.raises(OSError):
            pyrant.protocol.TyrantProtocol("127.0.0.1", port)


def test_get_stats_is_a_dict_of_text(tt: pyrant.Tyrant) -> None:
    stats = tt.get_stats()
    assert stats["type"] == "table"
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in stats.items())
    assert stats["rnum"] == "0"


# -- table records -------------------------------------------------------------------------


def test_records_are_dicts_of_text(tt: pyrant.Tyrant) -> None:
    tt["key"] = {"name": "foo", "n": 7, "ratio": 0.5, "uni": "żółw"}
    assert tt["key"] == {"name": "foo", "n": "7", "ratio": "0.5", "uni": "żółw"}
    assert tt["key"]["name"] == "foo"
    assert len(tt) == 1
    assert "key" in tt and "nope" not in tt
    assert tt.has_key("key") and not tt.has_key("nope")


def test_values_go_through_from_python(tt: pyrant.Tyrant, native: object) -> None:
    tt["k"] = {"yes": True, "no": False, "none": None, "zero": 0}
    assert tt["k"] == {"yes": "1", "no": "", "none": "", "zero": "0"}


def test_missing_keys(tt: pyrant.Tyrant) -> None:
    with pytest.raises(KeyError) as err:
        tt["missing"]
    assert err.value.args == ("missing",)
    assert tt.get("missing") is None
    assert tt.get("missing", "dflt") == "dflt"
    with pytest.raises(KeyError):
        del tt["missing"]
    with pytest.raises(KeyError):
        tt.get_size("missing")


def test_primary_key_must_be_text(tt: pyrant.Tyrant) -> None:
    with pytest.raises(TypeError, match="Primary key must be a string, got int"):
        tt[5]
    with pytest.raises(TypeError):
        tt.get(5)


def test_delete(tt: pyrant.Tyrant) -> None:
    tt["k"] = {"a": "1"}
    del tt["k"]
    assert "k" not in tt
    assert len(tt) == 0


def test_empty_column_names_are_refused(tt: pyrant.Tyrant) -> None:
    with pytest.raises(KeyError, match="Empty keys are not allowed"):
        tt["k"] = {"": "x", "a": "b"}
    assert "k" not in tt


def test_record_without_columns_and_text_values(tt: pyrant.Tyrant) -> None:
    tt["empty"] = {}
    assert tt["empty"] == {}
    tt["serialized"] = "name\x00Foo\x00age\x0030"  # PUT of a serialised record
    assert tt["serialized"] == {"name": "Foo", "age": "30"}
    tt["pairs"] = ["name", "Bar"]  # joined by the table separator
    assert tt["pairs"] == {"name": "Bar"}
    tt["plain"] = "no columns here"
    assert tt["plain"] == {}


def test_custom_separator_splits_column_values(tyrant_url: str, native: object) -> None:
    t = pyrant.Tyrant(*_address(tyrant_url), separator=", ")
    try:
        assert t.separator == ", "
        t["k"] = {"tags": "a, b, c", "name": "x"}
        assert t["k"] == {"tags": ["a", "b", "c"], "name": "x"}
        # lists are joined by the separator (pyrant stored their repr)
        t["l"] = {"tags": ["x", "y"]}
        assert t["l"] == {"tags": ["x", "y"]}
        assert t.multi_get(["k"]) == [("k", {"tags": ["a", "b", "c"], "name": "x"})]
    finally:
        t.close()


def test_literal_gives_bytes(tyrant_url: str, tt: pyrant.Tyrant) -> None:
    tt["k"] = {"name": "żółw", "tags": "a,b"}
    t = pyrant.Tyrant(*_address(tyrant_url), literal=True)
    try:
        assert t.literal is True
        assert t["k"] == {b"name": "żółw".encode(), b"tags": b"a,b"}
        assert [(k, r) for k, r in t.query] == [(b"k", {b"name": "żółw".encode(),
                                                      b"tags": b"a,b"})]
    finally:
        t.close()
    t = pyrant.Tyrant(*_address(tyrant_url), separator=",", literal=True)
    try:
        assert t["k"][b"tags"] == [b"a", b"b"]
    finally:
        t.close()


def test_iteration_keys_values_items(tt: pyrant.Tyrant) -> None:
    records = {f"k{i}": {"i": str(i)} for i in range(5)}
    for key, record in records.items():
        tt[key] = record
    assert sorted(tt) == sorted(records)
    keys = tt.keys()
    assert isinstance(keys, list) and sorted(keys) == sorted(records)
    assert isinstance(tt.iterkeys(), types.GeneratorType)
    assert isinstance(tt.iteritems(), types.GeneratorType)
    assert isinstance(tt.itervalues(), types.GeneratorType)
    items = tt.items()
    assert isinstance(items, list) and dict(items) == records
    assert sorted(tt.values(), key=lambda r: r["i"]) == list(records.values())
    assert dict(tt.iteritems()) == records
    assert sorted(r["i"] for r in tt.itervalues()) == [str(i) for i in range(5)]


def test_iteration_over_many_keys_in_batches(tt: pyrant.Tyrant) -> None:
    records = {f"k{i:04d}": {"i": str(i)} for i in range(1100)}
    tt.multi_set(records)
    assert sorted(tt.keys()) == sorted(records)  # more than one batch of ITERNEXT
    items = tt.items()  # two getlist chunks of pyrant's 1000 keys
    assert len(items) == 1100 and dict(items) == records


def test_setdefault_and_update(tt: pyrant.Tyrant) -> None:
    assert tt.setdefault("foo", {"one": "one"}) == {"one": "one"}
    assert tt.setdefault("foo", {"two": "two"}) == {"one": "one"}
    tt.update([("john", {"name": "John"})], mary={"name": "Mary"})
    assert tt["john"] == {"name": "John"} and tt["mary"] == {"name": "Mary"}
    tt.update({"x": {"a": "1"}})
    assert tt["x"] == {"a": "1"}
    tt.update()
    assert len(tt) == 4


def test_multi_set_get_del(tt: pyrant.Tyrant) -> None:
    assert tt.multi_set([("foo", {"one": "one"}), ("bar", {"two": "two"})]) is None
    tt.multi_set({"baz": {"n": 5, "flag": True, "none": None}})
    got = tt.multi_get(["foo", "bar", "galakteko opasnoste", "baz"])
    assert isinstance(got, list)
    assert got == [("foo", {"one": "one"}), ("bar", {"two": "two"}),
                   ("baz", {"n": "5", "flag": "True", "none": "None"})]  # str(), as pyrant
    assert tt.multi_get(iter(["foo"])) == [("foo", {"one": "one"})]
    assert tt.multi_get([]) == []
    with pytest.raises(AssertionError):
        tt.multi_get("foo")
    tt.multi_del(["foo", "nope"])
    assert "foo" not in tt and "bar" in tt
    tt.multi_del(k for k in ["bar"])
    tt.multi_del(("baz",), no_update_log=True)
    assert len(tt) == 0


def test_multi_set_with_no_update_log_and_serialised_values(tt: pyrant.Tyrant) -> None:
    tt.multi_set({"a": {"x": "1"}, "b": "y\x002"}, no_update_log=True)
    assert tt["a"] == {"x": "1"} and tt["b"] == {"y": "2"}
    tt.multi_set([("c", ["z", "3"])])  # joined by the table separator
    assert tt["c"] == {"z": "3"}


def test_multi_add_generates_keys(tt: pyrant.Tyrant) -> None:
    keys = tt.multi_add([{"n": str(i)} for i in range(5)], chunk_size=2)
    assert keys == ["1", "2", "3", "4", "5"]
    assert [tt[k]["n"] for k in keys] == ["0", "1", "2", "3", "4"]
    more = tt.multi_add(({"g": "x"} for _ in range(3)), chunk_size=0)
    assert more == ["6", "7", "8"]
    assert tt.multi_add([]) == []
    with pytest.raises(AssertionError):
        tt.multi_add("abc")


def test_generate_key_is_text_from_the_counter(tt: pyrant.Tyrant) -> None:
    assert tt.generate_key() == "1"
    assert tt.generate_key() == "2"
    tt.clear()
    assert tt.generate_key() == "1"


def test_prefix_keys(tt: pyrant.Tyrant) -> None:
    tt.multi_set({"user:1": {"a": "1"}, "user:2": {"a": "2"}, "item:1": {"a": "3"}})
    assert sorted(tt.prefix_keys("user:")) == ["user:1", "user:2"]
    assert len(tt.prefix_keys("user:", 1)) == 1
    assert tt.prefix_keys("nope") == []
    assert sorted(tt.prefix_keys("")) == ["item:1", "user:1", "user:2"]


def test_get_size_sync_clear(tt: pyrant.Tyrant) -> None:
    tt["k"] = {"name": "alice", "age": "30"}
    assert tt.get_size("k") == 18  # the engine's internal size (spec §5.4)
    assert tt.sync() is None
    assert tt.clear() is None
    assert len(tt) == 0


def test_concat_adds_columns_or_shifts(tt: pyrant.Tyrant, kt: pyrant.Tyrant) -> None:
    tt["k"] = {"a": "1"}
    tt.concat("k", "a\x009\x00b\x002")  # PUTCAT on a table: new columns only
    assert tt["k"] == {"a": "1", "b": "2"}
    kt["s"] = "one+more"
    kt.concat("s", "XYZ", width=6)
    assert kt["s"] == "oreXYZ"
    kt.concat("s", "!")
    assert kt["s"] == "oreXYZ!"


def test_call_func_without_extension_is_invalid_operation(tt: pyrant.Tyrant) -> None:
    with pytest.raises(exceptions.InvalidOperation):
        tt.call_func("echo", "k", "v")
    with pytest.raises(exceptions.TyrantError):
        tt.call_func("echo", "k", "v", record_locking=True, global_locking=True)


# -- hash databases ------------------------------------------------------------------------


def test_hash_values_are_text(kt: pyrant.Tyrant) -> None:
    kt["key"] = "foo"
    assert kt["key"] == "foo"
    kt["bin"] = b"\x00abc"
    assert kt["bin"] == "\x00abc"
    kt["empty"] = ""
    assert kt["empty"] == ""
    del kt["key"]
    with pytest.raises(KeyError):
        kt["key"]
    assert kt.get("key", 1) == 1
    assert sorted(kt.keys()) == ["bin", "empty"]
    assert dict(kt.items()) == {"bin": "\x00abc", "empty": ""}


def test_hash_lists_need_a_separator(kt: pyrant.Tyrant, hash_url: str) -> None:
    with pytest.raises(AssertionError, match="Separator is not set"):
        kt["l"] = ["a", "b"]
    with pytest.raises(TypeError):
        kt["n"] = 5  # pyrant sent only text
    t = pyrant.Tyrant(*_address(hash_url), separator="|")
    try:
        t["l"] = ["a", "b"]
        assert t["l"] == ["a", "b"]
        assert kt["l"] == "a|b"
        t["one"] = "solo"
        assert t["one"] == "solo"
        t.multi_set({"m": ["x", 1], "d": {"k": "v"}, "s": "plain", "n": 5})
        assert kt.multi_get(["m", "d", "s", "n"]) == [
            ("m", "x|1"), ("d", "k|v"), ("s", "plain"), ("n", "5")]
        assert t.multi_get(["m"]) == [("m", ["x", "1"])]
    finally:
        t.close()
    with pytest.raises(AssertionError):
        kt.multi_set({"m": ["x"]})


def test_hash_multi_methods(kt: pyrant.Tyrant) -> None:
    kt.multi_set({"a": "1", "b": "2", "": "empty key"})
    assert sorted(kt.multi_get(["a", "b", "c", ""])) == [("", "empty key"), ("a", "1"),
                                                          ("b", "2")]
    kt.update(c="3")
    assert kt.setdefault("c", "x") == "3"
    assert kt.setdefault("d", "4") == "4"
    kt.multi_del(["a", "", "zz"])
    assert sorted(kt) == ["b", "c", "d"]
    assert kt.get_size("b") == 1


def test_hash_database_has_no_query_or_genuid(kt: pyrant.Tyrant) -> None:
    with pytest.raises(TypeError, match="Query only works with table databases but .* is a "
                       "hash database"):
        kt.query  # noqa: B018
    with pytest.raises(exceptions.InvalidOperation):
        kt.generate_key()
    with pytest.raises(exceptions.InvalidOperation):
        kt.multi_add([{"a": "1"}])


def test_other_database_types(server_factory: object) -> None:
    for kind, name in (("btree", "B+ tree"), ("memhash", "on-memory hash")):
        server: ServerProcess = server_factory(kind)  # type: ignore[operator]
        t = pyrant.Tyrant(server.host, server.port)
        try:
            assert t.db_type == name and not t.table_enabled
            t["k"] = "v"
            assert t["k"] == "v" and t.keys() == ["k"]
        finally:
            t.close()
