"""Every lookup, positive and under where_not, on every field type, against the server.

Each case pairs a condition with a Python oracle over the loaded documents
(and their raw records): the server must select exactly the records the
oracle accepts, ``where_not`` exactly the others, and ``count()`` must agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from doqu.lookups import UnknownLookup
from doqu_tyrant import StorageAdapter
from doqu_tyrant.conditions import Cond
from doqu_tyrant.tyrant import NEGATE, Op, ShardedTyrant, Tyrant
from tests.backend.models import DT, FIELDS, Item, Loose, load
from tests.backend.models import D as Date

Oracle = Callable[[Item, dict[str, str]], bool]
Data = dict[str, tuple[Item, dict[str, str]]]


@pytest.fixture(scope="module", params=["single", "sharded"])
def loaded(request: pytest.FixtureRequest) -> Iterator[tuple[StorageAdapter, Data]]:
    """The documents loaded on one server, then on three shards (the same answers)."""
    raw: Tyrant
    if request.param == "sharded":
        urls = request.getfixturevalue("shard_urls")
        raw = ShardedTyrant(urls, timeout=10)  # type: ignore[assignment]
        db = StorageAdapter(shards=urls, timeout=10)
    else:
        url = request.getfixturevalue("tyrant_url")
        raw = Tyrant.from_url(url, timeout=10)
        db = StorageAdapter(url=url, timeout=10)
    raw.vanish()
    data = load(db, raw)
    yield db, data
    raw.vanish()
    raw.close()
    db.disconnect()


def value(field: str, test: Callable[[Any], bool]) -> Oracle:
    """Oracle on a field's document value; ``None`` (unset) never matches."""

    def oracle(doc: Item, record: dict[str, str]) -> bool:
        v = doc[field]
        if v is None or v == [] and field == "items" and field not in record:
            return False
        try:
            return bool(test(v))
        except TypeError:
            return False

    return oracle


def column(field: str, test: Callable[[str], bool]) -> Oracle:
    """Oracle on a field's stored text (a missing column never matches)."""
    return lambda doc, record: field in record and bool(test(record[field]))


def tokens(text: str) -> set[str]:
    return {t for t in re.split(r"[,\x00-\x20]+", text) if t}


ref_pk = lambda doc, record: doc._data["ref"] is not None  # noqa: E731


CASES: list[tuple[dict[str, Any], Oracle]] = [
    # equals, per type (numbers numerically, dates through their numeric strings)
    ({"text": "alpha"}, value("text", lambda v: v == "alpha")),
    ({"text": ""}, column("text", lambda t: t == "")),
    ({"text__equals": "Beta gamma"}, value("text", lambda v: v == "Beta gamma")),
    ({"number": 30}, value("number", lambda v: v == 30)),
    ({"number": 0}, value("number", lambda v: v == 0)),  # "" is not 0
    ({"number": 30.0}, value("number", lambda v: v == 30)),
    ({"ratio": 0.5}, value("ratio", lambda v: v == 0.5)),
    ({"ratio": 0}, value("ratio", lambda v: v == 0)),
    ({"money": Decimal("1.5")}, value("money", lambda v: v == Decimal("1.5"))),
    ({"flag": True}, value("flag", lambda v: v is True)),
    ({"flag": False}, value("flag", lambda v: v is False)),
    ({"day": Date(2010, 3, 5)}, value("day", lambda v: v == Date(2010, 3, 5))),
    ({"moment": DT(1999, 12, 31, 23, 59, 59)},
     value("moment", lambda v: v == DT(1999, 12, 31, 23, 59, 59))),
    ({"moment": Date(2010, 1, 1)}, value("moment", lambda v: v == DT(2010, 1, 1))),
    ({"items": ["red", "dark blue"]}, value("items", lambda v: v == ["red", "dark blue"])),
    ({"items": []}, column("items", lambda t: t == "")),
    ({"ref": "1"}, column("ref", lambda t: t == "1")),
    *[({f: None}, lambda doc, record, f=f: record.get(f, "") == "") for f in FIELDS],
    # comparisons
    ({"number__gt": 0}, value("number", lambda v: v > 0)),
    ({"number__gt": 29.5}, value("number", lambda v: v > 29.5)),
    ({"number__gte": Decimal("0.5")}, value("number", lambda v: v >= Decimal("0.5"))),
    ({"number__lt": 7}, value("number", lambda v: v < 7)),  # unset never < 7
    ({"number__lte": 0}, value("number", lambda v: v <= 0)),
    ({"number__gt": -10}, value("number", lambda v: v > -10)),
    ({"number__lt": "30"}, value("number", lambda v: v < 30)),
    ({"ratio__gt": 0.25}, value("ratio", lambda v: v > 0.25)),
    ({"ratio__lt": 0.5}, value("ratio", lambda v: v < 0.5)),
    ({"ratio__lte": 0.5}, value("ratio", lambda v: v <= 0.5)),
    ({"money__gt": Decimal("1.25")}, value("money", lambda v: v > Decimal("1.25"))),
    ({"money__lte": 1.5}, value("money", lambda v: v <= Decimal("1.5"))),
    ({"flag__gt": False}, value("flag", lambda v: v > False)),
    ({"day__gt": Date(2010, 1, 1)}, value("day", lambda v: v > Date(2010, 1, 1))),
    ({"day__lt": Date(2010, 3, 5)}, value("day", lambda v: v < Date(2010, 3, 5))),
    ({"day__gte": Date(2010, 1, 1)}, value("day", lambda v: v >= Date(2010, 1, 1))),
    ({"moment__lte": DT(2010, 1, 1)}, value("moment", lambda v: v <= DT(2010, 1, 1))),
    ({"moment__gt": Date(2010, 1, 1)}, value("moment", lambda v: v > DT(2010, 1, 1))),
    ({"text__gt": 5}, lambda doc, record: False),  # text compared as numbers: none is > 5
    # between (inclusive)
    ({"number__between": (-5, 30)}, value("number", lambda v: -5 <= v <= 30)),
    ({"number__between": [0, 7]}, value("number", lambda v: 0 <= v <= 7)),
    ({"number__between": (31, 0)}, lambda doc, record: False),
    ({"ratio__between": (0.25, 2.25)}, value("ratio", lambda v: 0.25 <= v <= 2.25)),
    ({"money__between": (Decimal("-3"), 1.5)}, value("money", lambda v: -3 <= v <= 1.5)),
    ({"day__between": (Date(1999, 1, 1), Date(2010, 3, 5))},
     value("day", lambda v: Date(1999, 1, 1) <= v <= Date(2010, 3, 5))),
    ({"moment__between": (DT(2010, 1, 1), DT(2010, 3, 5, 10))},
     value("moment", lambda v: DT(2010, 1, 1) <= v <= DT(2010, 3, 5, 10))),
    # in
    ({"text__in": ["alpha", "new york", "delta, epsilon"]},
     value("text", lambda v: v in ("alpha", "new york", "delta, epsilon"))),
    ({"text__in": ["alpha", "Beta"]}, value("text", lambda v: v == "alpha")),
    ({"text__in": ["", "alpha"]}, column("text", lambda t: t in ("", "alpha"))),
    ({"text__in": [None, "alpha"]}, lambda doc, record: record.get("text", "") in ("", "alpha")),
    ({"text__in": []}, lambda doc, record: False),
    ({"number__in": [0, 30, 8]}, value("number", lambda v: v in (0, 30, 8))),
    ({"number__in": (7,)}, value("number", lambda v: v == 7)),
    ({"ratio__in": [0.5, 2.25]}, value("ratio", lambda v: v in (0.5, 2.25))),
    ({"money__in": [Decimal("1.5"), Decimal("-3.0")]},
     value("money", lambda v: v in (Decimal("1.5"), -3))),
    ({"flag__in": [True]}, value("flag", lambda v: v is True)),
    ({"flag__in": [True, False]}, value("flag", lambda v: v in (True, False))),
    ({"day__in": [Date(2010, 3, 5), Date(2010, 1, 1)]},
     value("day", lambda v: v in (Date(2010, 3, 5), Date(2010, 1, 1)))),
    ({"moment__in": [DT(2010, 1, 1)]}, value("moment", lambda v: v == DT(2010, 1, 1))),
    ({"items__in": [["blue"], []]}, column("items", lambda t: t in ("blue", ""))),
    ({"ref__in": ["1", "2"]}, column("ref", lambda t: t in ("1", "2"))),
    # contains / contains_any: text is searched, list fields match whole items
    ({"text__contains": "a"}, value("text", lambda v: "a" in v)),
    ({"text__contains": ", "}, value("text", lambda v: ", " in v)),
    ({"text__contains": ["gamma"]}, value("text", lambda v: "gamma" in tokens(v))),
    ({"text__contains": ["york", "new"]}, value("text", lambda v: {"york", "new"} <= tokens(v))),
    ({"text__contains": ["new york"]}, value("text", lambda v: v == "new york")),
    ({"items__contains": "blue"}, value("items", lambda v: "blue" in v)),
    ({"items__contains": "dark blue"}, value("items", lambda v: "dark blue" in v)),
    ({"items__contains": ["new york", "oslo"]},
     value("items", lambda v: {"new york", "oslo"} <= set(v))),
    ({"text__contains_any": ["alpha", "gamma"]},
     value("text", lambda v: bool({"alpha", "gamma"} & tokens(v)))),
    ({"text__contains_any": ["new york", "epsilon"]},
     value("text", lambda v: v == "new york" or "epsilon" in tokens(v))),
    ({"items__contains_any": ["red", "oslo"]},
     value("items", lambda v: bool({"red", "oslo"} & set(v)))),
    ({"items__contains_any": ["dark"]}, lambda doc, record: False),
    # startswith / endswith
    ({"text__startswith": "al"}, value("text", lambda v: v.startswith("al"))),
    ({"text__startswith": "new "}, value("text", lambda v: v.startswith("new "))),
    ({"text__endswith": "ork"}, value("text", lambda v: v.endswith("ork"))),
    ({"items__startswith": "red"}, column("items", lambda t: t.startswith("red"))),
    ({"day__startswith": "2010"}, column("day", lambda t: t.startswith("2010"))),
    # full text
    ({"text__like": "BETA"}, value("text", lambda v: "beta" in v.lower())),
    ({"text__like": ["NEW", "york"]}, value("text", lambda v: "new" in v and "york" in v)),
    ({"text__like_any": ["ALPHA", "delta"]},
     value("text", lambda v: "alpha" in v.lower() or "delta" in v.lower())),
    ({"text__search": "beta gamma"},
     value("text", lambda v: "beta" in v.lower() and "gamma" in v.lower())),
    ({"text__search": "alpha || york"}, value("text", lambda v: "alpha" in v or "york" in v)),
    # regexes (Python syntax translated to POSIX)
    ({"text__matches": r"^\w+a$"}, value("text", lambda v: re.search(r"^\w+a$", v))),
    ({"text__matches": "(?i)^BETA"}, value("text", lambda v: re.search("(?i)^BETA", v))),
    ({"number__matches": r"^\d+$"}, column("number", lambda t: re.search(r"^\d+$", t))),
    ({"text__matches": re.compile("YORK", re.IGNORECASE)}, value("text", lambda v: "york" in v)),
    # exists: the column is there (even empty) / it is not
    *[({f"{f}__exists": True}, lambda doc, record, f=f: f in record) for f in FIELDS],
    *[({f"{f}__exists": False}, lambda doc, record, f=f: f not in record) for f in FIELDS],
    # dates
    ({"day__year": 2010}, value("day", lambda v: v.year == 2010)),
    ({"moment__year": 1999}, value("moment", lambda v: v.year == 1999)),
    ({"day__month": 3}, value("day", lambda v: v.month == 3)),
    ({"moment__month": 12}, value("moment", lambda v: v.month == 12)),
    ({"day__day": 1}, value("day", lambda v: v.day == 1)),
    ({"moment__day": 31}, value("moment", lambda v: v.day == 31)),
    # several conditions at once (where: all hold; where_not: not all hold)
    ({"number__gte": 0, "flag": False}, lambda doc, record: doc["number"] is not None
     and doc["number"] >= 0 and doc["flag"] is False),
    ({"text__startswith": "new", "items__contains": "oslo"},
     lambda doc, record: (doc["text"] or "").startswith("new") and "oslo" in (doc["items"] or [])),
]


def _ids() -> list[str]:
    return [",".join(f"{k}={v!r}" for k, v in case.items())[:60] for case, _ in CASES]


@pytest.mark.parametrize(("conditions", "oracle"), CASES, ids=_ids())
def test_lookup(loaded: tuple[StorageAdapter, Data], conditions: dict[str, Any],
                oracle: Oracle) -> None:
    db, data = loaded
    expected = {pk for pk, (doc, record) in data.items() if oracle(doc, record)}
    query = db.find(Item).where(**conditions)
    assert {doc.pk for doc in query} == expected
    assert query.count() == len(expected)
    excluded = db.find(Item).where_not(**conditions)
    assert {doc.pk for doc in excluded} == set(data) - expected
    assert excluded.count() == len(data) - len(expected)


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        ({"number__gt": 10}, {"1", "5"}),
        ({"number": 30}, {"1"}),
        ({"text": "alpha"}, {"1"}),
        ({"day": Date(2010, 3, 5)}, {"1"}),
        ({"day__lt": Date(2010, 1, 2)}, {"2", "3"}),
        ({"flag": True}, {"1", "5"}),
        ({"items": ["blue"]}, {"2"}),
        ({"ratio__between": (0.25, 2.25)}, {"1", "2"}),
        ({"ref": Item}, None),
    ],
)
def test_structure_less_classes_take_the_kind_from_the_value(
    loaded: tuple[StorageAdapter, Data], conditions: dict[str, Any], expected: set[str] | None
) -> None:
    db, data = loaded
    if expected is None:
        with pytest.raises(TypeError):
            db.find(Loose).where(**conditions).count()
        return
    assert {doc.pk for doc in db.find(Loose).where(**conditions)} == expected
    assert {doc.pk for doc in db.find(Loose).where_not(**conditions)} == set(data) - expected


def test_reference_conditions_take_documents(loaded: tuple[StorageAdapter, Data]) -> None:
    db, data = loaded
    first = db.get(Item, "1")
    assert [doc.pk for doc in db.find(Item).where(ref=first)] == ["6"]
    assert [doc.pk for doc in db.find(Item).where(ref__in=[first])] == ["6"]
    with pytest.raises(ValueError, match="not saved"):
        db.find(Item).where(ref=Item())


def test_unknown_lookup_is_named(loaded: tuple[StorageAdapter, Data]) -> None:
    db, _ = loaded
    with pytest.raises(UnknownLookup, match="'bogus'") as info:
        db.find(Item).where(number__bogus=1)
    assert "gte" in str(info.value) and info.value.operation == "bogus"
    with pytest.raises(UnknownLookup, match="'nope'"):
        db.find(Item).where_not(text__nope="x")


@pytest.mark.parametrize(
    ("conditions", "error"),
    [
        ({"text": "a\0b"}, ValueError),
        ({"number__gt": "many"}, TypeError),
        ({"number__gt": None}, TypeError),
        ({"items__gt": 1}, TypeError),
        ({"number__between": 5}, TypeError),
        ({"number__between": (1, 2, 3)}, TypeError),
        ({"number__in": "abc"}, TypeError),
        ({"day": DT(2010, 1, 1, 5)}, TypeError),
        ({"moment": DT(2010, 1, 1, 5, 0, 0, 1)}, ValueError),
        ({"text__year": 2010}, TypeError),
        ({"day__month": 13}, ValueError),
        ({"text__matches": "(?=x)"}, ValueError),
        ({"text__like": ['a "b"']}, ValueError),
        ({"text__like_any": ['"q"']}, ValueError),
        ({"ratio__gt": float("nan")}, ValueError),
    ],
)
def test_bad_condition_values_raise_before_sending(
    loaded: tuple[StorageAdapter, Data], conditions: dict[str, Any], error: type[Exception]
) -> None:
    db, _ = loaded
    with pytest.raises(error):
        db.find(Item).where(**conditions)


def _resolve(key: str, val: Any, doc_class: type = Item) -> Any:
    from doqu_tyrant.lookups import lookup_manager

    return lookup_manager.resolve(key, val, doc_class=doc_class)


def test_compiled_conditions() -> None:
    """A few compilations spelled out (the docs' table)."""
    assert _resolve("number__gte", 5) == ((Cond("number", Op.NUMGE, "5"),),)
    assert _resolve("number__lt", 5) == (
        (Cond("number", Op.NUMLT, "5"), Cond("number", Op.STRRX, ".")),
    )
    assert _resolve("text__in", ["a", "b"]) == ((Cond("text", Op.STROREQ, "a,b"),),)
    assert _resolve("text__in", ["a b", "c,d", "e.f"]) == (
        (Cond("text", Op.STRRX, r"^(a b|c,d|e\.f)$"),),
    )
    assert _resolve("text__exists", False) == ((Cond("text", Op.STRRX | NEGATE, ""),),)
    assert _resolve("day__year", 2010) == ((Cond("day", Op.STRBW, "2010"),),)
    assert _resolve("day__month", 3) == ((Cond("day", Op.STRRX, "^[0-9]{4}03"),),)
    assert _resolve("ratio", 1e20) == ((Cond("ratio", Op.NUMEQ, "100000000000000000000"),),)
    assert _resolve("items__contains", "a.b") == ((Cond("items", Op.STRRX, r"(^|, )a\.b(, |$)"),),)
    assert _resolve("text", None) == ((Cond("text", Op.STRRX | NEGATE, "."),),)
