"""The query contract through the in-memory backend: building, evaluating, combining."""

from __future__ import annotations

import datetime

import pytest

from doqu import Document
from doqu.backend_base import REPR_OUTPUT_SIZE, UnknownLookup
from doqu.validators import Required


class Person(Document):
    structure = {"name": str, "age": int, "city": str, "born": datetime.date}
    validators = {"name": [Required()]}


@pytest.fixture
def people(db):
    rows = [
        ("Ann", 30, "Oslo", datetime.date(1990, 1, 1)),
        ("Bob", 9, "Rome", datetime.date(2010, 6, 1)),
        ("Cid", 100, None, None),
        ("Dee", 18, "Oslo", datetime.date(2002, 3, 3)),
    ]
    for name, age, city, born in rows:
        Person(name=name, age=age, city=city, born=born).save(db)
    return db


def names(query) -> list[str]:
    return [doc["name"] for doc in query]


def test_where_uses_the_declared_type(people) -> None:
    assert names(people.find(Person).where(age__gte=18)) == ["Ann", "Cid", "Dee"]
    assert names(people.find(Person, age__lt=18)) == ["Bob"]
    assert names(people.find(Person).where(born__gt=datetime.date(2000, 1, 1))) == ["Bob", "Dee"]
    assert names(people.find(Person).where(city="Oslo", age__gte=20)) == ["Ann"]
    assert names(people.find(Person).where(city="Oslo").where(age__gte=20)) == ["Ann"]


def test_where_not_keeps_records_without_the_field(people) -> None:
    assert names(people.find(Person).where_not(city="Oslo")) == ["Bob", "Cid"]


def test_unknown_lookup(people) -> None:
    with pytest.raises(UnknownLookup, match="sounds_like"):
        people.find(Person).where(name__sounds_like="x")


def test_order_by(people) -> None:
    query = people.find(Person)
    assert names(query.order_by("age")) == ["Bob", "Dee", "Ann", "Cid"]  # numeric, not text
    assert names(query.order_by("-age")) == ["Cid", "Ann", "Dee", "Bob"]
    assert names(query.order_by("age", reverse=True)) == ["Cid", "Ann", "Dee", "Bob"]
    assert names(query.order_by("-age", reverse=True)) == ["Bob", "Dee", "Ann", "Cid"]
    # None was written as "" (the column exists): text keeps "", which sorts first
    assert names(query.order_by("city")) == ["Cid", "Ann", "Dee", "Bob"]
    assert names(query.order_by("-city")) == ["Bob", "Ann", "Dee", "Cid"]
    people.save({"name": "Raw"})  # no columns but name: missing ones sort last
    assert names(query.order_by("city"))[-1] == "Raw"
    assert names(query.order_by("-age"))[-2:] == ["Bob", "Raw"]


def test_order_by_refuses_a_second_field_and_odd_arguments(people) -> None:
    query = people.find(Person)
    with pytest.raises(TypeError, match="sorts by one field"):
        query.order_by("name", "age")
    with pytest.raises(TypeError, match="reverse"):
        query.order_by("name", 1)
    with pytest.raises(TypeError, match="field name"):
        query.order_by(5)


def test_queries_are_immutable(people) -> None:
    base = people.find(Person)
    adults = base.where(age__gte=18)
    ordered = adults.order_by("-age")
    assert base.count() == 4 and adults.count() == 3
    assert names(adults) == ["Ann", "Cid", "Dee"]
    assert names(ordered) == ["Cid", "Ann", "Dee"]


def test_evaluation_is_never_cached(people) -> None:
    query = people.find(Person, city="Oslo")
    assert query.count() == 2
    Person(name="Eve", city="Oslo").save(people)
    assert query.count() == 2 + 1 and len(query) == 3


def test_count_len_bool_values(people) -> None:
    query = people.find(Person)
    assert query.count() == len(query) == 4
    assert bool(query) and not query.where(age__gt=1000)
    assert query.values("city") == ["Oslo", "Rome", ""]
    assert None in query.values("born")  # "" converted like document values
    assert query.order_by("-age").values("age") == [100, 30, 18, 9]


def test_indexing_and_slicing(people) -> None:
    query = people.find(Person).order_by("age")
    assert query[0]["name"] == "Bob"
    assert query[-1]["name"] == "Cid"
    assert [d["name"] for d in query[1:3]] == ["Dee", "Ann"]
    assert query[0:0] == []
    assert [d["name"] for d in query[::2]] == ["Bob", "Ann"]
    with pytest.raises(IndexError):
        query[10]


def test_delete(people) -> None:
    assert people.find(Person, city="Oslo").delete() == 2
    assert names(people.find(Person)) == ["Bob", "Cid"]


def test_set_operations(people) -> None:
    query = people.find(Person)
    oslo, young = query.where(city="Oslo"), query.where(age__lt=20)
    assert names(oslo | young) == ["Ann", "Bob", "Dee"]
    assert names(oslo & young) == ["Dee"]
    assert names(oslo - young) == ["Ann"]
    assert (oslo | young).count() == 3
    assert names((oslo | young).order_by("-age")) == ["Ann", "Dee", "Bob"]
    assert names((oslo | young).where(age__gt=10)) == ["Ann", "Dee"]
    with pytest.raises(TypeError):
        oslo | 5  # noqa: B018
    other_class = people.find(Document)
    with pytest.raises(ValueError, match="same storage and document class"):
        oslo | other_class  # noqa: B018


def test_repr_shows_the_first_records_like_django(people) -> None:
    text = repr(people.find(Person).order_by("age"))
    assert text.startswith("<QueryAdapter of Person [<Person ")
    assert "'Bob'" in text and "truncated" not in text
    for i in range(REPR_OUTPUT_SIZE):
        Person(name=f"P{i}").save(people)
    text = repr(people.find(Person))
    assert text.count("<Person ") == REPR_OUTPUT_SIZE
    assert text.endswith("'...(remaining elements truncated)...']>") or "truncated" in text


def test_get_many(people) -> None:
    docs = people.get_many(Person, ["3", 1])
    assert [d["name"] for d in docs] == ["Cid", "Ann"]
    with pytest.raises(KeyError) as info:
        people.get_many(Person, ["1", "98", "99"])
    assert info.value.args[0] == ["98", "99"]


def test_get_missing_is_key_error(people) -> None:
    with pytest.raises(KeyError):
        people.get(Person, "404")
    with pytest.raises(KeyError):
        people.delete("404")


def test_get_or_create(people) -> None:
    doc, created = people.get_or_create(Person, name="Ann")
    assert not created and doc["age"] == 30
    doc, created = people.get_or_create(Person, name="Zed", city="Nice")
    assert created and doc.pk in people and doc["city"] == "Nice"
    again, created = people.get_or_create(Person, name__equals="Zed")
    assert not created and again == doc
    with pytest.raises(ValueError, match="equality"):
        people.get_or_create(Person, age__gte=3)


def test_storage_mapping_protocol(people) -> None:
    assert len(people) == 4
    assert list(people) == ["1", "2", "3", "4"]
    assert "1" in people and 1 in people and "9" not in people and None not in people
    people.clear()
    assert len(people) == 0
    assert Person(name="New").save(people) == "1"  # clear resets generated keys


def test_generated_keys_never_overwrite(db) -> None:
    db.save({"name": "by hand"}, primary_key="1")
    pk = Person(name="generated").save(db)
    assert pk != "1" and db.records["1"]["name"] == "by hand"
