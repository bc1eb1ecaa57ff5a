"""Where pyrant 0.6.5 lost data, hung or killed the server, and what we do instead.

Each test names pyrant's behaviour; the documentation lists the same
differences ("Keep using pyrant" in docs/migration.rst).
"""

from __future__ import annotations

import os

import pytest

import pyrant
from doqu_tyrant.tyrant import Tyrant
from pyrant import exceptions
from tests.pyrant.conftest import _address


def test_dict_on_a_hash_database_is_refused(kt: pyrant.Tyrant) -> None:
    # pyrant sent MISC put: the hash database kept the first column *name*
    # as the value and dropped the rest.
    with pytest.raises(TypeError, match="table record"):
        kt["k"] = {"name": "alice", "age": "30"}
    assert "k" not in kt


@pytest.mark.parametrize("write", [
    lambda t: t.__setitem__("", {"a": "1"}),
    lambda t: t.multi_set({"": {"a": "1"}}),
    lambda t: t.update([("", {"a": "1"})]),
    lambda t: t.multi_set([("ok", "a\x001"), ("", "a\x002")]),
    lambda t: t.multi_set({"": {"a": "1"}}, no_update_log=True),
])
def test_empty_primary_key_is_refused_before_sending(tt: pyrant.Tyrant, native: Tyrant,
                                                      write: object) -> None:
    # An empty primary key in MISC put/putlist aborts a real ttserver (spec §10).
    with pytest.raises(ValueError, match="empty primary key"):
        write(tt)  # type: ignore[operator]
    assert native.rnum() == 0  # nothing written, not even the valid pair
    assert native.stat()["type"] == "table"  # and the server is still there


@pytest.mark.parametrize("record", [
    {"na\x00me": "x"},
    {"name": "x\x00y"},
])
def test_nul_bytes_in_records_are_refused(tt: pyrant.Tyrant, record: dict[str, str]) -> None:
    # pyrant sent them: the record read back with its columns shifted.
    with pytest.raises(ValueError, match="NUL"):
        tt["k"] = record
    with pytest.raises(ValueError, match="NUL"):
        tt.multi_set({"k": record})
    with pytest.raises(ValueError, match="NUL"):
        tt.multi_set({"k": record}, no_update_log=True)
    assert "k" not in tt


def test_nul_bytes_in_conditions_are_refused(items: pyrant.Tyrant) -> None:
    # pyrant split the condition at the NUL: a different query ran (and could
    # delete the wrong records).
    with pytest.raises(ValueError, match="NUL"):
        items.query.filter(name="Foo\x00x").delete()
    with pytest.raises(ValueError, match="NUL"):
        items.query.filter(**{"na\x00me": "Foo"})[:]
    assert len(items) == 4


def test_lists_in_records_need_a_separator(tt: pyrant.Tyrant, tyrant_url: str) -> None:
    # pyrant stored the list's repr ("[u'a', u'b']"), which read back as text.
    with pytest.raises(TypeError, match="separator"):
        tt["k"] = {"tags": ["a", "b"]}
    with pytest.raises(TypeError, match="separator"):
        tt.multi_set({"k": {"tags": ("a", "b")}})
    assert "k" not in tt
    t = pyrant.Tyrant(*_address(tyrant_url), separator=",")
    try:
        t["k"] = {"tags": ["a", "b"], "n": [1, 2]}
        t.multi_set({"m": {"tags": ("c", "d")}})
        assert t["k"] == {"tags": ["a", "b"], "n": ["1", "2"]}
        assert tt["m"] == {"tags": "c,d"}
    finally:
        t.close()


def test_multi_set_with_a_separator_keeps_records(tt: pyrant.Tyrant, tyrant_url: str) -> None:
    # pyrant joined the columns with the custom separator instead of NUL: the
    # server stored records without columns.
    t = pyrant.Tyrant(*_address(tyrant_url), separator=", ")
    try:
        t.multi_set({"a": {"name": "alice", "age": 30}})
        t.update(b={"name": "bob"})
        assert tt["a"] == {"name": "alice", "age": "30"}
        assert tt["b"] == {"name": "bob"}
    finally:
        t.close()


def test_multi_set_stores_non_ascii_text(tt: pyrant.Tyrant, kt: pyrant.Tyrant,
                                         hash_url: str) -> None:
    # pyrant called str() on the values: UnicodeEncodeError on Python 2.
    tt.multi_set({"k": {"name": "żółw", "city": "東京"}})
    assert tt["k"] == {"name": "żółw", "city": "東京"}
    kt.multi_set({"k": "żółw"})
    assert kt["k"] == "żółw"
    t = pyrant.Tyrant(*_address(hash_url), separator="|")
    try:
        t.multi_set({"l": ["ä", "ö"]})
        assert t["l"] == ["ä", "ö"]
    finally:
        t.close()


def test_floats_keep_every_digit(tt: pyrant.Tyrant) -> None:
    # pyrant stored Python 2's str(): 12 significant digits (0.333333333333).
    tt["k"] = {"third": 1 / 3, "big": 1234567890.123456}
    tt.multi_set({"m": {"third": 2 / 3}})
    assert float(tt["k"]["third"]) == 1 / 3
    assert float(tt["k"]["big"]) == 1234567890.123456
    assert float(tt["m"]["third"]) == 2 / 3


def test_large_numbers_in_conditions_are_plain_decimals(items: pyrant.Tyrant) -> None:
    # pyrant sent "1e+20", which the server reads as 1: every record with a
    # price above 1 matched, and delete() removed them.
    q = items.query.filter(price__gt=1e20)
    assert q.count() == 0
    q.delete()
    assert len(items) == 4
    assert [k for k, _ in items.query.filter(price__lt=1e20)] == ["a", "b", "c", "d"]
    assert [k for k, _ in items.query.filter(price__in=[1e20, 3])] == ["c"]


@pytest.mark.parametrize("combine, kept", [
    (lambda foo, cheap: foo - cheap, ["a", "b", "d"]),
    (lambda foo, cheap: foo & cheap, ["b", "c", "d"]),
    (lambda foo, cheap: foo | cheap, ["d"]),
])
def test_deleting_a_combination_deletes_what_it_matches(items: pyrant.Tyrant, combine: object,
                                                        kept: list[str]) -> None:
    # pyrant sent one search with "out": the server deleted what the *last*
    # part matched, so "all Foo except the cheap ones" deleted the cheap ones.
    foo, cheap = items.query.filter(name="Foo"), items.query.filter(price__lt=3)
    assert combine(foo, cheap).delete() is None  # type: ignore[operator]
    assert sorted(items.keys()) == kept


def test_values_skips_records_without_the_column(items: pyrant.Tyrant) -> None:
    # pyrant raised KeyError as soon as one match lacked the column.
    assert items.query.values("note") == ["the Quick fox"]


def test_multi_del_refuses_a_single_key(tt: pyrant.Tyrant) -> None:
    # pyrant iterated over the string and deleted the one-letter keys.
    tt.multi_set({"a": {"x": "1"}, "b": {"x": "2"}, "ab": {"x": "3"}})
    with pytest.raises(TypeError, match="single key"):
        tt.multi_del("ab")
    assert len(tt) == 3


def test_negative_counters(kt: pyrant.Tyrant) -> None:
    # pyrant packed the number unsigned: struct.error for a negative one, and
    # a negative sum came back as a large positive number.
    assert kt.proto.addint("n", -3) == -3
    assert kt.proto.adddouble("d", -0.5) == -0.5


def test_prefix_keys_without_limit(kt: pyrant.Tyrant) -> None:
    # pyrant's fwmkeys default (-1) could not be packed; only Tyrant.prefix_keys
    # (which passes the record count) worked.
    kt.multi_set({"p1": "1", "p2": "2", "q": "3"})
    assert sorted(kt.proto.fwmkeys("p")) == ["p1", "p2"]


@pytest.mark.skipif(bool(os.environ.get("TYRANT_URL")),
                    reason="the request would abort a real ttserver unless the client refuses it")
def test_empty_value_in_an_indexed_column_does_not_kill_the_server(
        tt: pyrant.Tyrant, native: Tyrant) -> None:
    # pyrant stores None and False as "": into a column with a lexical index
    # that aborts a real ttserver (spec §10). The write fails instead.
    column = "pyrant_test_flag"
    assert tt.proto.add_index(column)
    try:
        with pytest.raises((exceptions.InvalidOperation, ValueError)):
            tt["k"] = {column: False}
        assert "k" not in tt
        assert native.stat()["type"] == "table"
    finally:
        tt.proto.drop_index(column)
