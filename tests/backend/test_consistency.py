"""The doqu query agrees with the client and with its documentation: filters and
orders on the primary key, delete() counts, list() is one request, values()
of a reference gives keys, order_by refuses a second field, and the messages
say what is wrong in words."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from decimal import Decimal

import pytest

from doqu import Document, ImproperlyConfigured
from doqu.document import IncomingDataWarning
from doqu_tyrant import QueryAdapter, StorageAdapter
from doqu_tyrant.tyrant import Tyrant
from tests.backend.conftest import Requests


class Person(Document):
    structure = {"name": str, "age": int, "price": Decimal}


class Book(Document):
    structure = {"title": str, "author": Person}


class Coded(Document):
    structure = {"pk": str, "name": str}  # declares a field named pk: that column


@pytest.fixture
def people(db: StorageAdapter) -> Iterator[QueryAdapter[Person]]:
    for i, name in enumerate(["ann", "bob", "cyd", "dan"]):
        Person(name=name, age=10 * (i + 1)).save(db)  # keys "1" ... "4"
    yield db.find(Person)


def pks(query: object) -> list[str]:
    return [doc.pk for doc in query]  # type: ignore[attr-defined]


def test_where_on_the_primary_key(people: QueryAdapter[Person], db: StorageAdapter) -> None:
    assert pks(people.where(pk="2")) == ["2"]
    assert pks(people.where(pk=3)) == ["3"]  # keys are text; ints are normalised
    assert sorted(pks(people.where(pk__in=[1, "4", 99]))) == ["1", "4"]
    assert sorted(pks(people.where_not(pk="1"))) == ["2", "3", "4"]
    assert sorted(pks(people.where(pk__gt=2))) == ["3", "4"]
    assert pks(people.where(pk__startswith="4", name="dan")) == ["4"]
    ann = db.get(Person, "1")
    assert pks(people.where(pk=ann)) == ["1"]
    assert people.where(pk="nope").count() == 0
    assert pks(people.order_by("-pk")) == ["4", "3", "2", "1"]
    assert people.order_by("pk").values("pk") == ["1", "2", "3", "4"]
    assert pks(people.where(pk__in=["1", "3"]) | people.where(pk="2")) == ["1", "3", "2"]


def test_a_declared_pk_field_is_a_column(db: StorageAdapter, raw: Tyrant) -> None:
    key = Coded(pk="X-1", name="x").save(db)
    assert key != "X-1" and raw[key] == {"pk": "X-1", "name": "x"}
    assert pks(db.find(Coded).where(pk="X-1")) == [key]
    assert db.find(Coded).where(pk=key).count() == 0


def test_delete_returns_the_count(people: QueryAdapter[Person], requests: Requests) -> None:
    with requests() as seen:
        assert people.where(age__gte=30).delete() == 2
    assert seen.delta() == {"misc": 1}
    assert people.where(name="nobody").delete() == 0
    assert (people.where(name="ann") | people.where(name="bob")).delete() == 2
    assert people.count() == 0


def test_list_of_a_query_is_one_request(people: QueryAdapter[Person], db: StorageAdapter,
                                        requests: Requests) -> None:
    query = people.where(age__gt=15).order_by("-age")
    for materialise in (list, tuple, lambda q: sorted(q, key=lambda d: d.pk)):
        with requests() as seen:
            found = materialise(query)
        assert seen.delta() == {"misc": 1}, materialise
        assert len(found) == 3
    assert [d["name"] for d in list(query)] == ["dan", "cyd", "bob"]
    Person(name="eve", age=99).save(db)
    assert [d["name"] for d in list(query)] == ["eve", "dan", "cyd", "bob"]  # asked again
    with requests() as seen:
        assert len(query) == 4  # len() on its own is a server count
        assert bool(query)
    assert seen.delta() == {"misc": 2}
    unordered = people.where(age__gt=15)
    with requests() as seen:
        assert len(list(unordered | people.where(name="ann"))) == 5
    assert seen.delta() == {"misc": 1}


def test_values_of_a_reference_are_keys(db: StorageAdapter, people: QueryAdapter[Person]
                                        ) -> None:
    ann, bob = db.get(Person, "1"), db.get(Person, "2")
    Book(title="a", author=ann).save(db)
    Book(title="b", author=bob).save(db)
    Book(title="c", author=ann).save(db)
    books = db.find(Book).where(title__in=["a", "b", "c"])
    assert books.values("author") == ["1", "2"]
    assert [p["name"] for p in db.get_many(Person, books.values("author"))] == ["ann", "bob"]
    bob.delete()
    assert books.values("author") == ["1", "2"]  # a dangling reference is still its key


@pytest.mark.parametrize("call, words", [
    (lambda q: q.order_by("name", "age"), "sorts by one field"),
    (lambda q: q.order_by("name", 1), "reverse"),
    (lambda q: q.order_by(5), r"field name \(str\), not int"),
    (lambda q: q.order_by("age", numeric="yes"), "numeric"),
])
def test_order_by_refuses_what_it_cannot_do(db: StorageAdapter, call: object, words: str
                                            ) -> None:
    with pytest.raises(TypeError, match=words):
        call(db.find(Person))  # type: ignore[operator]


def test_order_by_reverse_still_works(people: QueryAdapter[Person]) -> None:
    assert [d["name"] for d in people.order_by("age", True)] == ["dan", "cyd", "bob", "ann"]
    assert [d["name"] for d in people.order_by("-age", reverse=True)][:1] == ["ann"]


def test_unreadable_decimal_is_explained_in_words(db: StorageAdapter, raw: Tyrant) -> None:
    raw.table_put("x", {"name": "n", "price": "abc"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert db.get(Person, "x")["price"] == "abc"
    messages = [str(w.message) for w in caught if issubclass(w.category, IncomingDataWarning)]
    assert len(messages) == 1
    assert "'price' holds 'abc'" in messages[0] and "not a decimal number" in messages[0]
    assert "ConversionSyntax" not in messages[0]


def test_a_lone_surrogate_key_is_named(db: StorageAdapter) -> None:
    with pytest.raises(ValueError, match=r"primary key '\\ud800x' cannot be encoded"):
        db.get(Person, "\ud800x")
    with pytest.raises(ValueError, match=r"'a\\udfff'"):
        db.save({"name": "n"}, primary_key="a\udfff")


def test_a_key_value_database_is_refused_in_good_english(server_factory: object) -> None:
    server = server_factory("memhash")  # type: ignore[operator]
    with pytest.raises(ImproperlyConfigured, match="holds an on-memory hash database;"):
        StorageAdapter(url=server.url)
