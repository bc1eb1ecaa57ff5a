"""storage-format.md, row by row: records as the Python 2 doqu + pyrant stored them.

Fixtures are raw records written with the plain client exactly as the old
library wrote them; each ``test_row_NN`` fails on the old behaviour that
row describes.
"""

from __future__ import annotations

import datetime
import warnings
from decimal import Decimal

import pytest

from doqu import Document, IncomingDataError, IncomingDataWarning, ValidationError
from doqu_tyrant import StorageAdapter
from doqu_tyrant.tyrant import Tyrant, TyrantConnectionError
from tests.backend.conftest import Requests
from tests.conftest import ServerFactory


class Old(Document):
    structure = {
        "name": str,
        "age": int,
        "ratio": float,
        "flag": bool,
        "money": Decimal,
        "born": datetime.date,
        "moment": datetime.datetime,
        "tags": list,
    }


class Strict(Old):
    break_on_invalid_incoming_data = True


#: Records as the old library wrote them (every structure field, unset ones as "").
OLD = {
    "alice": {"name": "Alice", "age": "30", "ratio": "0.333333333333", "flag": "1",
              "money": "1.50", "born": "19800115", "moment": "20100315123000",
              "tags": "a, b c", "extra": "kept"},
    "unset": {"name": "", "age": "", "ratio": "", "flag": "", "money": "", "born": "",
              "moment": "", "tags": ""},
    "bob": {"name": "Bob", "age": "9", "ratio": "0.3", "flag": "0", "money": "2.50",
            "born": "20010911", "moment": "20010911084600", "tags": "x"},
    "sparse": {"name": "Cid", "age": "100"},  # written by other code: columns missing
}


@pytest.fixture
def old(raw: Tyrant) -> Tyrant:
    for key, record in OLD.items():
        raw.table_put(key, record)
    return raw


def keys(query: object) -> set[str]:
    return {doc.pk for doc in query}  # type: ignore[attr-defined]


def test_old_records_read_back_unchanged(db: StorageAdapter, old: Tyrant) -> None:
    alice = db.get(Old, "alice")
    assert dict(alice) == {
        "name": "Alice", "age": 30, "ratio": 0.333333333333, "flag": True,
        "money": Decimal("1.50"), "born": datetime.date(1980, 1, 15),
        "moment": datetime.datetime(2010, 3, 15, 12, 30), "tags": ["a", "b c"], "extra": "kept",
    }
    alice.save()
    assert old["alice"] == OLD["alice"]  # an unchanged document is written back as it was
    bob = db.get(Old, "bob")
    assert bob["flag"] is False and bob["tags"] == ["x"]


def test_we_write_what_the_old_library_reads(db: StorageAdapter, raw: Tyrant) -> None:
    key = Old(name="Zoë", age=-7, ratio=0.1, flag=True, money=Decimal("1E+2"),
              born=datetime.date(5, 1, 2), moment=datetime.datetime(2010, 1, 2, 3, 4, 5),
              tags=["a", "b c"]).save(db)
    assert raw[key] == {"name": "Zoë", "age": "-7", "ratio": "0.1", "flag": "1",
                        "money": "100", "born": "00050102", "moment": "20100102030405",
                        "tags": "a, b c"}
    assert raw[Old().save(db)] == dict.fromkeys(Old.structure, "")  # unset fields: ""


def test_row_01_a_missing_column_reads_as_none_for_every_type(db: StorageAdapter,
                                                              old: Tyrant) -> None:
    # old: "None" for str fields, TypeError for int/float (breaking every query)
    cid = db.get(Old, "sparse")
    assert cid["name"] == "Cid" and cid["age"] == 100
    assert all(cid[f] is None for f in ("ratio", "flag", "money", "born", "moment", "tags"))
    old.table_put("bare", {})
    assert all(value is None for value in db.get(Old, "bare").values())
    assert len([doc for doc in db.find(Old)]) == 5


def test_row_02_empty_text_is_none_except_for_text_and_lists(db: StorageAdapter,
                                                             old: Tyrant) -> None:
    # old: False for bool, [] for list, "" for str, None for the rest
    unset = db.get(Old, "unset")
    assert unset["name"] == "" and unset["tags"] == []
    assert all(unset[f] is None for f in ("age", "ratio", "flag", "money", "born", "moment"))


def test_row_03_the_declared_type_decides_numeric_conditions(db: StorageAdapter,
                                                             old: Tyrant) -> None:
    # old: gt with a float or fractional Decimal raised, between failed on floats,
    # float equality compared text
    q = db.find(Old)
    assert keys(q.where(age__gt=29.5)) == {"alice", "sparse"}
    assert keys(q.where(age__gt=Decimal("9.5"))) == {"alice", "sparse"}
    assert keys(q.where(ratio__between=(0.2, 0.31))) == {"bob"}
    assert keys(q.where(ratio=0.3)) == {"bob"}
    assert keys(q.where(ratio=0.333333333333)) == {"alice"}
    assert keys(q.where(money=Decimal("2.5"))) == {"bob"}  # stored "2.50"
    assert keys(q.where(money=2.5)) == {"bob"}
    assert keys(q.where(age=100.0)) == {"sparse"}
    assert keys(q.where(born__gt=datetime.date(1990, 1, 1))) == {"bob"}
    assert keys(q.where(moment__lt=datetime.datetime(2005, 1, 1))) == {"bob"}


def test_row_04_exists_false_selects_records_without_the_column(db: StorageAdapter,
                                                                old: Tyrant) -> None:
    # old: exists=False behaved as exists=True
    assert keys(db.find(Old).where(tags__exists=False)) == {"sparse"}
    assert keys(db.find(Old).where(tags__exists=True)) == {"alice", "unset", "bob"}
    assert keys(db.find(Old).where_not(tags__exists=False)) == {"alice", "unset", "bob"}


def test_row_05_in_matches_items_with_spaces_and_commas_exactly(db: StorageAdapter,
                                                                raw: Tyrant) -> None:
    # old: STROREQ split "New York" into "New" and "York" (and "a,b" into two tokens)
    for key, city in [("1", "New York"), ("2", "York"), ("3", "New"), ("4", "a,b"), ("5", "a")]:
        raw.table_put(key, {"name": city})
    assert keys(db.find(Old).where(name__in=["New York", "a,b"])) == {"1", "4"}
    assert keys(db.find(Old).where_not(name__in=["New York", "a,b"])) == {"2", "3", "5"}


def test_row_06_descending_order_stays_numeric(db: StorageAdapter, raw: Tyrant) -> None:
    # old: order_by("-age") sorted text: 9, 100, 10
    for key, age in [("a", "10"), ("b", "9"), ("c", "100")]:
        raw.table_put(key, {"age": age})
    assert [d["age"] for d in db.find(Old).order_by("-age")] == [100, 10, 9]
    assert [d["age"] for d in db.find(Old).order_by("age")] == [9, 10, 100]


def test_row_07_combined_queries_count_order_and_filter(db: StorageAdapter,
                                                        old: Tyrant) -> None:
    # old: count() of a|b, a&b, a-b was 0; order_by was ignored; a where after a
    # union filtered only the first operand
    q = db.find(Old)
    union = q.where(name="Alice") | q.where(age__gt=50)
    assert union.count() == 2
    assert (q.where(age__gt=5) & q.where(flag=True)).count() == 1
    assert (q - q.where(name="Alice")).count() == 3
    assert [d.pk for d in union.order_by("-age")] == ["sparse", "alice"]
    assert [d.pk for d in union.order_by("age")] == ["alice", "sparse"]
    assert keys((q.where(name="Bob") | q.where(name="Cid")).where(age__lt=50)) == {"bob"}


def test_row_08_negative_indexes_and_empty_slices(db: StorageAdapter, old: Tyrant) -> None:
    # old: negative indexes raised; q[0:0] returned everything
    q = db.find(Old).order_by("age")
    assert q[0:0] == [] and q[2:2] == []
    assert q[-1].pk == "unset"  # unset age sorts last
    assert [d.pk for d in q[-3:-1]] == ["alice", "sparse"]
    assert [d.pk for d in q[:-2]] == ["bob", "alice"]


def test_row_09_queries_do_not_cache_results(db: StorageAdapter, old: Tyrant) -> None:
    # old: iterating again after a save returned the first results
    q = db.find(Old).where(age__gte=9)
    assert len([d for d in q]) == 3
    Old(name="Dee", age=40).save(db)
    assert len([d for d in q]) == 4 and q.count() == 4


def test_row_10_invalid_values_are_kept_and_save_raises(db: StorageAdapter,
                                                        requests: Requests) -> None:
    # old: logged, turned into None, and saved as ""
    doc = Old(age="twelve", born="2020-01-01")
    assert doc["age"] == "twelve"
    with requests() as seen:
        with pytest.raises(ValidationError) as info:
            doc.save(db)
    assert set(info.value.errors) == {"age", "born"}
    assert seen.total == 0 and len(db) == 0 and doc.pk is None


def test_row_11_unreadable_values_are_kept_and_written_back(db: StorageAdapter,
                                                            raw: Tyrant) -> None:
    # old: the value became None and the next save wrote ""
    raw.table_put("x", {"name": "n", "age": "abc", "born": "soon"})
    with pytest.warns(IncomingDataWarning) as caught:
        doc = db.get(Old, "x")
    messages = " ".join(str(w.message) for w in caught)
    assert "'age'" in messages and "'abc'" in messages and "'born'" in messages
    assert doc["age"] == "abc" and doc["born"] == "soon"
    doc["name"] = "m"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc.save()
    assert raw["x"]["age"] == "abc" and raw["x"]["born"] == "soon" and raw["x"]["name"] == "m"
    with pytest.raises(IncomingDataError, match="'age'"):
        db.get(Strict, "x")


def test_row_12_a_generated_key_never_overwrites_a_record(db: StorageAdapter,
                                                          raw: Tyrant) -> None:
    # old: generate_key() + put replaced the record saved by hand under "1"
    raw.table_put("1", {"name": "by hand"})
    raw.table_put("2", {"name": "by hand too"})
    key = Old(name="generated").save(db)
    assert key == "3"
    assert raw["1"] == {"name": "by hand"} and raw["2"] == {"name": "by hand too"}


def test_row_13_keys_are_text_everywhere(db: StorageAdapter) -> None:
    # old: an int key was stored as text but returned as int, which get refused
    key = db.save({"name": "five"}, primary_key=5)
    assert key == "5"
    doc = db.get(Old, 5)
    assert doc.pk == "5" and db.get(Old, key).pk == "5"
    assert list(db) == ["5"] and 5 in db
    assert [d.pk for d in db.get_many(Old, [5])] == ["5"]
    assert all(isinstance(d.pk, str) for d in db.find(Old))


def test_row_14_the_next_call_reconnects_by_itself(server_factory: ServerFactory) -> None:
    # old: every call failed after a dropped connection until reconnect()
    server = server_factory("table")
    db = StorageAdapter(url=server.url, timeout=5)
    key = Old(name="kept").save(db)
    server.kill()
    with pytest.raises(TyrantConnectionError):
        db.get(Old, key)
    server.start()
    assert db.get(Old, key)["name"] == "kept"
    assert db.find(Old).count() == 1
    db.disconnect()


def test_row_15_one_request_per_call(db: StorageAdapter, old: Tyrant, requests: Requests) -> None:
    # old: get = type check + get; get_many = one GET per key; a query = 4 STATs
    with requests() as seen:
        db.get(Old, "alice")
    assert seen.total == 1
    with requests() as seen:
        db.get_many(Old, list(OLD))
    assert seen.total == 1
    with requests() as seen:
        query = db.find(Old).where(age__gt=1).order_by("-age")
    assert seen.total == 0
    with requests() as seen:
        query.count()
    assert seen.total == 1


def test_row_16_list_items_containing_the_separator_are_refused(db: StorageAdapter) -> None:
    # old: ["a, b"] was stored as "a, b" and read back as ["a", "b"]
    with pytest.raises(ValueError, match="separator"):
        Old(tags=["a, b"]).save(db)
    assert len(db) == 0


def test_row_17_datetime_microseconds_are_refused_unless_truncation_is_chosen(
    db: StorageAdapter, tyrant_url: str, raw: Tyrant
) -> None:
    # old: microseconds silently dropped
    moment = datetime.datetime(2010, 1, 1, 12, 0, 0, 500)
    with pytest.raises(ValueError, match="whole seconds"):
        Old(moment=moment).save(db)
    assert len(db) == 0
    lossy = StorageAdapter(url=tyrant_url, truncate_microseconds=True)
    key = Old(moment=moment).save(lossy)
    assert raw[key]["moment"] == "20100101120000"
    lossy.disconnect()


def test_row_18_invalid_utf8_in_a_column_does_not_hide_the_record(db: StorageAdapter,
                                                                  raw: Tyrant) -> None:
    # old: db.get failed for the whole record
    raw.misc("put", [b"bad", b"name", b"caf\xe9", b"age", b"3", b"note", b"\xff\xfe"])
    with pytest.warns(IncomingDataWarning, match="'name'.*UTF-8"):
        doc = db.get(Old, "bad")
    assert doc["name"] == b"caf\xe9" and doc["age"] == 3 and doc["note"] == b"\xff\xfe"
    with pytest.warns(IncomingDataWarning):
        assert [d.pk for d in db.find(Old)] == ["bad"]
    with pytest.warns(IncomingDataWarning):
        assert [d["age"] for d in db.get_many(Old, ["bad"])] == [3]
    assert db.find(Old).values("name") == [b"caf\xe9"]
    doc["age"] = 4
    doc.save()  # the undecodable columns are written back byte for byte
    assert raw.table_get("bad", raw=True) == {b"name": b"caf\xe9", b"age": b"4",
                                              b"note": b"\xff\xfe", b"ratio": b"", b"flag": b"",
                                              b"money": b"", b"born": b"", b"moment": b"",
                                              b"tags": b""}
