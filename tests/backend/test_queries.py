"""QueryAdapter: ordering, slicing, set operations, values, delete, repr, round trips."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from doqu import Document
from doqu_tyrant import QueryAdapter, StorageAdapter
from doqu_tyrant.tyrant import Tyrant
from tests.backend.conftest import Requests

SHARDED = True  # every test also runs on three shards (see conftest.py)


class Person(Document):
    structure = {
        "name": str,
        "age": int,
        "height": float,
        "money": Decimal,
        "born": datetime.date,
        "seen": datetime.datetime,
        "city": str,
    }


PEOPLE = [
    dict(name="Ann", age=30, height=1.7, money=Decimal("10.5"), born=datetime.date(1990, 5, 1),
         seen=datetime.datetime(2020, 1, 1, 12, 0), city="Oslo"),
    dict(name="bob", age=9, height=1.25, money=Decimal("9"), born=datetime.date(2011, 1, 1),
         seen=datetime.datetime(2020, 1, 1, 9, 30), city="Rome"),
    dict(name="Cyd", age=100, height=1.5, money=Decimal("100"), born=datetime.date(1920, 2, 2),
         seen=datetime.datetime(2019, 12, 31, 23, 0), city="Oslo"),
    dict(name="dan", age=18, height=1.95, money=Decimal("-1"), born=datetime.date(2002, 7, 7),
         seen=datetime.datetime(2021, 6, 1, 0, 0), city="Paris, TX"),
    dict(name="eve"),  # no age, height, ... (stored as "")
]


@pytest.fixture
def people(db: StorageAdapter, raw: Tyrant) -> Iterator[QueryAdapter[Person]]:
    for row in PEOPLE:
        Person(**row).save(db)
    raw.table_put("sparse", {"name": "fay"})  # lacks every other column
    yield db.find(Person)


def names(query: Any) -> list[str]:
    return [doc["name"] for doc in query]


def assert_runs(got: list[Any], runs: list[list[Any]], layout: str) -> None:
    """``got`` is the concatenation of ``runs``: records in a fixed order, or
    (runs of several) records the server returns in its storage order — ties,
    unset values. On one server that order is the insertion order here; over
    shards it is only deterministic (docs/sharding.rst), so such a run is
    compared as a multiset there."""
    at = 0
    for run in runs:
        part = got[at:at + len(run)]
        if layout == "sharded" and len(run) > 1:
            assert sorted(part, key=repr) == sorted(run, key=repr), (got, runs)
        else:
            assert part == run, (got, runs)
        at += len(run)
    assert at == len(got), (got, runs)


@pytest.mark.parametrize("field", ["age", "height", "money", "born", "seen"])
def test_numeric_fields_order_numerically_both_ways(people: QueryAdapter[Person],
                                                    field: str, layout: str) -> None:
    present = [row for row in PEOPLE if field in row]
    ascending = [[row["name"]] for row in sorted(present, key=lambda r: r[field])]
    # records without a value ("" or no column) come last either way, natural order
    assert_runs(names(people.order_by(field)), ascending + [["eve", "fay"]], layout)
    assert_runs(names(people.order_by("-" + field)), ascending[::-1] + [["eve", "fay"]], layout)
    assert_runs(names(people.order_by(field, reverse=True)), ascending[::-1] + [["eve", "fay"]],
                layout)


def test_text_fields_order_bytewise(people: QueryAdapter[Person], layout: str) -> None:
    assert names(people.order_by("name")) == ["Ann", "Cyd", "bob", "dan", "eve", "fay"]
    assert names(people.order_by("-name")) == ["fay", "eve", "dan", "bob", "Cyd", "Ann"]
    # eve's city is "" (sorts first as text); fay has no city column (last)
    assert_runs(names(people.order_by("city")),
                [["eve"], ["Ann", "Cyd"], ["dan"], ["bob"], ["fay"]], layout)


def test_order_by_replaces_and_numeric_can_be_forced(db: StorageAdapter, raw: Tyrant) -> None:
    for n in ("10", "9", "100"):
        raw.table_put(n, {"n": n})

    class Loose(Document):
        pass

    query = db.find(Loose)
    assert [d["n"] for d in query.order_by("n")] == ["10", "100", "9"]
    assert [d["n"] for d in query.order_by("n", numeric=True)] == ["9", "10", "100"]
    assert [d["n"] for d in query.order_by("n").order_by("-n", numeric=True)] == [
        "100", "10", "9"]
    with pytest.raises(ValueError):
        query.order_by("-")


def test_slicing_follows_python(people: QueryAdapter[Person]) -> None:
    ordered = people.order_by("age")
    everything = names(ordered)
    assert len(everything) == 6
    for index in [slice(0, 0), slice(None), slice(2), slice(1, 3), slice(4, 100), slice(7, 9),
                  slice(3, 1), slice(-2, None), slice(None, -1), slice(-4, -2), slice(1, None, 2),
                  slice(None, None, -1), slice(-1, 0, -2), slice(0, 5, 3)]:
        assert names(ordered[index]) == everything[index], index
    assert ordered[0]["name"] == everything[0]
    assert ordered[5]["name"] == everything[5]
    assert ordered[-1]["name"] == everything[-1]
    assert ordered[-6]["name"] == everything[0]
    for bad in (6, -7, 100):
        with pytest.raises(IndexError):
            ordered[bad]
    with pytest.raises(TypeError):
        ordered["a"]
    with pytest.raises(ValueError):
        ordered[::0]


def test_count_len_bool_match_iteration(people: QueryAdapter[Person]) -> None:
    for query in (people, people.where(age__gt=10), people.where(city="Nowhere"),
                  people.where(city="Oslo") | people.where(age__lt=10),
                  people - people.where(city="Oslo"),
                  people.where(age__gt=10) & people.where(age__lt=50)):
        found = [doc for doc in query]
        assert query.count() == len(found) == len(query)
        assert bool(query) is bool(found)


def test_union(people: QueryAdapter[Person]) -> None:
    union = people.where(city="Oslo") | people.where(age__lt=10)
    assert sorted(names(union)) == ["Ann", "Cyd", "bob"]
    assert union.count() == 3
    assert names(union.order_by("age")) == ["bob", "Ann", "Cyd"]
    assert names(union.order_by("-age")) == ["Cyd", "Ann", "bob"]
    assert names(union.order_by("age")[1:]) == ["Ann", "Cyd"]
    assert names(union.order_by("age")[-1:]) == ["Cyd"]
    # a where after the union filters the combined result, not only its first part
    assert sorted(names(union.where(age__lt=50))) == ["Ann", "bob"]
    assert names(union.where_not(name="Ann").order_by("age")) == ["bob", "Cyd"]
    assert (union | people.where(name="eve")).count() == 4


def test_intersection_and_difference(people: QueryAdapter[Person], layout: str) -> None:
    both = people.where(age__gt=10) & people.where(city="Oslo")
    assert sorted(names(both)) == ["Ann", "Cyd"] and both.count() == 2
    assert names(both.order_by("-age")) == ["Cyd", "Ann"]
    assert names(both.where(age__lt=50)) == ["Ann"]
    minus = people - people.where(city="Oslo")
    assert sorted(names(minus)) == ["bob", "dan", "eve", "fay"]
    assert minus.count() == 4
    assert_runs(names(minus.order_by("age")), [["bob"], ["dan"], ["eve", "fay"]], layout)
    assert names(minus.order_by("age")[1:2]) == ["dan"]
    assert names(minus.order_by("age")[1:3])[1] in ("eve", "fay")
    assert names(minus.where(age__gt=10)) == ["dan"]
    assert sorted(names(minus - people.where(name="eve"))) == ["bob", "dan", "fay"]
    # mixed combinations still run as one request
    mixed = (people.where(city="Oslo") | people.where(age=9)) - people.where(name="Ann")
    assert sorted(names(mixed)) == ["Cyd", "bob"] and mixed.count() == 2
    nested = people - (people.where(city="Oslo") - people.where(age=100))
    assert sorted(names(nested)) == ["Cyd", "bob", "dan", "eve", "fay"]


def test_where_not_of_several_conditions_drops_records_matching_all(
    people: QueryAdapter[Person],
) -> None:
    query = people.where_not(city="Oslo", age__gt=50)
    assert sorted(names(query)) == ["Ann", "bob", "dan", "eve", "fay"]
    assert query.count() == 5
    assert names(query.order_by("age")[:2]) == ["bob", "dan"]
    assert names(people.where_not(city="Oslo").where_not(city="Rome").order_by("name")) == [
        "dan", "eve", "fay"]


def test_queries_are_immutable_and_lazy(people: QueryAdapter[Person], requests: Requests) -> None:
    base = people.where(city="Oslo")
    with requests() as seen:
        narrowed = base.where(age__gt=50).order_by("-age")
        other = base | people.where(name="bob")
        base.where_not(name="x")
        people - narrowed
    assert seen.total == 0
    assert sorted(names(base)) == ["Ann", "Cyd"]
    assert names(narrowed) == ["Cyd"]
    assert other.count() == 3
    for evaluate in (lambda: base.count(), lambda: other.count(), lambda: base[0],
                     lambda: base[1:], lambda: base.values("age"), lambda: other.values("age"),
                     lambda: [d for d in other], lambda: other[-1]):
        with requests() as seen:
            evaluate()
        assert seen.delta() == {"misc": 1}


def test_results_are_not_cached(db: StorageAdapter, people: QueryAdapter[Person]) -> None:
    query = people.where(city="Oslo")
    assert query.count() == 2
    Person(name="gus", city="Oslo").save(db)
    assert query.count() == 3
    assert len([d for d in query]) == 3


def test_values(people: QueryAdapter[Person], layout: str) -> None:
    assert_runs(people.values("city"), [["Oslo", "Rome", "Paris, TX", ""]], layout)
    assert people.order_by("-age").values("age") == [100, 30, 18, 9, None]
    assert_runs(people.where(city="Oslo").values("born"),
                [[datetime.date(1990, 5, 1), datetime.date(1920, 2, 2)]], layout)
    assert people.order_by("-money").values("money")[0] == Decimal("100")
    assert Decimal("10.5") in people.values("money")
    assert people.values("nothing") == []
    union = people.where(city="Rome") | people.where(city="Oslo")
    assert sorted(union.values("name")) == ["Ann", "Cyd", "bob"]


def test_values_keep_unreadable_text(db: StorageAdapter, raw: Tyrant, layout: str) -> None:
    raw.table_put("x", {"age": "abc"})
    raw.table_put("y", {"age": "7"})
    assert_runs(db.find(Person).values("age"), [["abc", 7]], layout)


def test_delete(people: QueryAdapter[Person], db: StorageAdapter, requests: Requests) -> None:
    with requests() as seen:
        people.where(city="Oslo").delete()
    assert seen.delta() == {"misc": 1}
    assert sorted(names(people)) == ["bob", "dan", "eve", "fay"]
    (people.where(name="bob") | people.where(name="dan")).delete()  # every part, not the last
    assert sorted(names(people)) == ["eve", "fay"]
    (people - people.where(name="eve")).delete()
    assert names(people) == ["eve"]
    people.where(name="nobody").delete()
    assert len(db) == 1


def test_repr_shows_the_first_records(db: StorageAdapter) -> None:
    for i in range(12):
        Person(name=f"p{i:02d}", age=i).save(db)
    text = repr(db.find(Person).order_by("age"))
    assert text.startswith("<QueryAdapter of Person [<Person '1'")
    assert "p09" in text and "p10" not in text and "truncated" in text
    assert repr(db.find(Person).where(age=3)).count("<Person") == 1
    db.disconnect()
    assert "disconnected" in repr(QueryAdapter(db, Person))


def test_query_adapter_can_be_built_directly(db: StorageAdapter) -> None:
    Person(name="x").save(db)
    assert QueryAdapter(db, Person).count() == 1
    assert QueryAdapter(storage=db, model=Person).model is Person
    with pytest.raises(TypeError):
        db.find(Person) | 5  # type: ignore[operator]


def test_unset_numeric_values_sort_last_in_combinations_too(people: QueryAdapter[Person],
                                                           layout: str) -> None:
    combined = people.where(city="Oslo") | people.where(name="eve") | people.where(name="bob")
    assert names(combined.order_by("age")) == ["bob", "Ann", "Cyd", "eve"]
    assert names(combined.order_by("-age")) == ["Cyd", "Ann", "bob", "eve"]
    assert names(combined.order_by("age")[1:3]) == ["Ann", "Cyd"]
    assert combined.order_by("age")[-1]["name"] == "eve"
    assert combined.order_by("age").values("name") == ["bob", "Ann", "Cyd", "eve"]
    assert combined.order_by("-age").values("age") == [100, 30, 9, None]
    minus = (people - people.where(city="Oslo")).order_by("height")
    assert_runs(names(minus), [["bob"], ["dan"], ["eve", "fay"]], layout)
    assert names(minus[:2]) == ["bob", "dan"]
    assert people.order_by("age")[:2] == people.where(age__exists=True).order_by("age")[:2]
