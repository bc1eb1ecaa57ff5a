"""Document basics: construction, mapping behaviour, saving, loading, equality, repr."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from doqu import Document, ValidationError
from doqu.validators import Length, Required


class Person(Document):
    structure = {
        "name": str,
        "age": int,
        "height": float,
        "active": bool,
        "balance": Decimal,
        "born": datetime.date,
        "seen": datetime.datetime,
        "tags": list,
    }
    validators = {"name": [Required(), Length(max=20)]}
    defaults = {"tags": list, "active": True}
    labels = {"name": "Full name"}


class Note(Document):
    """Structure-less: any fields."""


def test_constructor_keeps_values_and_fills_structure_with_none() -> None:
    p = Person(name="Alice", age=30)
    assert p["name"] == "Alice"
    assert p["age"] == 30
    assert p["height"] is None
    assert p["tags"] == [] and p["active"] is True
    assert set(p) == set(Person.structure)
    assert p.pk is None and p.storage is None


def test_constructor_accepts_a_mapping_and_keywords_win() -> None:
    p = Person({"name": "A", "age": 1}, age=2)
    assert (p["name"], p["age"]) == ("A", 2)


def test_callable_and_mutable_defaults_are_fresh_per_document() -> None:
    class WithDefaults(Document):
        structure = {"items": list, "when": datetime.date}
        defaults = {"items": ["x"], "when": lambda: datetime.date(2020, 1, 2)}

    a, b = WithDefaults(), WithDefaults()
    a["items"].append("y")
    assert b["items"] == ["x"]
    assert a["when"] == datetime.date(2020, 1, 2)
    assert WithDefaults(items=["z"])["items"] == ["z"]


def test_mapping_protocol() -> None:
    p = Person(name="Bob")
    p["age"] = 4
    assert p.get("age") == 4
    assert "age" in p and "nope" not in p
    assert dict(p)["name"] == "Bob"
    with pytest.raises(KeyError):
        p["nope"]
    del p["age"]
    assert "age" not in p
    assert p["age"] is None  # structure fields always read
    p.update(age=5)
    assert p["age"] == 5
    p.clear()
    assert len(p) == 0 and p["name"] is None
    with pytest.raises(TypeError):
        p[1] = "x"  # type: ignore[index]


def test_dot_notation() -> None:
    class Dotted(Document):
        structure = {"name": str}
        use_dot_notation = True

    d = Dotted(name="x")
    assert d.name == "x"
    d.name = "y"
    assert d["name"] == "y"
    with pytest.raises(AttributeError):
        d.missing  # noqa: B018
    d.other = 1  # unknown field: set, then refused by validation
    assert d["other"] == 1
    assert not d.is_valid()

    plain = Person(name="x")
    with pytest.raises(AttributeError):
        plain.name  # noqa: B018


def test_save_returns_text_key_and_get_reads_back(db) -> None:
    p = Person(
        name="Alice",
        age=30,
        height=1.75,
        active=False,
        balance=Decimal("1.50"),
        born=datetime.date(1990, 5, 17),
        seen=datetime.datetime(2020, 1, 2, 3, 4, 5),
        tags=["a", "b"],
    )
    pk = p.save(db)
    assert isinstance(pk, str) and pk == p.pk
    assert p.storage is db
    loaded = db.get(Person, pk)
    assert isinstance(loaded, Person)
    assert dict(loaded) == dict(p)
    assert loaded == p
    # the backend's own encodings were used
    assert db.records[pk]["born"] == "1990-05-17"
    assert db.records[pk]["active"] == "false"
    assert db.records[pk]["tags"] == '["a", "b"]'


def test_save_updates_in_place_and_writes_whole_record(db) -> None:
    p = Person(name="A")
    pk = p.save(db)
    p["age"] = 7
    assert p.save() == pk
    assert len(db) == 1
    assert db.get(Person, pk)["age"] == 7
    assert set(db.records[pk]) == set(Person.structure)


def test_save_without_storage_raises() -> None:
    with pytest.raises(RuntimeError, match="doc.save"):
        Person(name="A").save()


def test_save_to_another_storage_creates_a_record_unless_keep_key(db) -> None:
    from tests.doqu.memory_backend import StorageAdapter, drop_database

    other = StorageAdapter(name="test-other-storage")
    try:
        p = Person(name="A")
        p.save(db)
        db.save({"x": "filler"})
        db.save({"x": "filler"})
        new_pk = p.save(other)
        assert new_pk == "1" and p.storage is other
        p2 = Person(name="B")
        pk2 = p2.save(db)
        other.clear()
        assert p2.save(other, keep_key=True) == pk2
        assert pk2 in other
    finally:
        other.disconnect()
        drop_database("test-other-storage")


def test_invalid_save_writes_nothing_and_names_every_field(db) -> None:
    p = Person(name="", age="old", balance=1.5)
    with pytest.raises(ValidationError) as info:
        p.save(db)
    assert set(info.value.errors) == {"name", "age", "balance"}
    assert set(info.value.fields) == {"name", "age", "balance"}
    for field in ("name", "age", "balance"):
        assert field in str(info.value)
    assert isinstance(info.value, ValueError)
    assert len(db) == 0 and p.pk is None


def test_unknown_fields_are_rejected_on_structured_documents(db) -> None:
    p = Person(name="A", nickname="Al")
    assert p["nickname"] == "Al"
    with pytest.raises(ValidationError, match="nickname"):
        p.save(db)


def test_type_checks() -> None:
    ok = [
        {"age": 3},
        {"height": 3},
        {"height": 3.5},
        {"balance": 2},
        {"balance": Decimal("2.5")},
        {"tags": ("a",)},
        {"born": datetime.date(2000, 1, 1)},
        {"seen": datetime.datetime(2000, 1, 1)},
        {"active": False},
    ]
    bad = [
        {"age": True},
        {"age": 3.0},
        {"height": "3"},
        {"balance": 2.5},
        {"born": datetime.datetime(2000, 1, 1)},
        {"seen": datetime.date(2000, 1, 1)},
        {"active": 1},
        {"tags": "a, b"},
        {"name": 5},
    ]
    for values in ok:
        assert Person({"name": "x", **values}).is_valid(), values
    for values in bad:
        doc = Person({"name": "x", **values})
        assert not doc.is_valid(), values
        with pytest.raises(ValidationError) as info:
            doc.validate()
        assert list(info.value.errors) == list(values)


def test_structureless_documents_take_any_field_and_read_back_as_stored(db) -> None:
    n = Note(title="x", count=3, when=datetime.date(2021, 2, 3))
    pk = n.save(db)
    loaded = db.get(Note, pk)
    assert dict(loaded) == {"title": "x", "count": "3", "when": "2021-02-03"}


def test_delete(db) -> None:
    p = Person(name="A")
    pk = p.save(db)
    p.delete()
    assert p.pk is None and pk not in db
    with pytest.raises(RuntimeError):
        p.delete()
    with pytest.raises(KeyError):
        db.get(Person, pk)
    new_pk = p.save()  # saved again, as a new record
    assert new_pk != pk and new_pk in db


def test_equality() -> None:
    assert Person(name="A") == Person(name="A")
    assert Person(name="A") != Person(name="B")
    assert Person(name="A") != {"name": "A"}

    class Other(Person):
        pass

    assert Person(name="A") != Other(name="A")
    with pytest.raises(TypeError):
        hash(Person())


def test_equality_includes_the_primary_key(db) -> None:
    a, b = Person(name="A"), Person(name="A")
    a.save(db)
    assert a != b
    b.save(db)
    assert a != b  # different keys
    assert db.get(Person, a.pk) == a


def test_repr() -> None:
    p = Person(name="Alice")
    text = repr(p)
    assert text.startswith("<Person unsaved {") and "'name': 'Alice'" in text


def test_repr_shows_key(db) -> None:
    p = Person(name="Alice")
    p.save(db)
    assert repr(p).startswith(f"<Person {p.pk!r} ")


def test_processors(db) -> None:
    class Tagged(Document):
        structure = {"name": str, "code": int}
        incoming_processors = {"name": str.title}
        outgoing_processors = {"name": str.lower, "code": lambda n: n * 10}

    pk = Tagged(name="Hello World", code=None).save(db)
    assert db.records[pk]["name"] == "hello world"
    assert db.records[pk]["code"] == ""  # processors skip None
    pk2 = Tagged(name="x", code=2).save(db)
    assert db.records[pk2]["code"] == "20"
    assert db.get(Tagged, pk)["name"] == "Hello World"


def test_skip_type_conversion(db) -> None:
    class Raw(Document):
        structure = {"code": str, "n": int}
        skip_type_conversion = ["n"]

    pk = db.save({"code": "x", "n": "not a number"})
    doc = db.get(Raw, pk)
    assert doc["n"] == "not a number"

    class AllRaw(Document):
        structure = {"n": int}
        skip_type_conversion = True

    assert db.get(AllRaw, pk)["n"] == "not a number"


def test_objects_is_find(db) -> None:
    Person(name="A").save(db)
    Person(name="B").save(db)
    assert [p["name"] for p in Person.objects(db)] == ["A", "B"]
    assert Person.objects(db).count() == db.find(Person).count() == 2


def test_from_storage_normalises_keys(db) -> None:
    doc = Person.from_storage(db, 5, {"name": "x"})
    assert doc.pk == "5"
    doc = Person.from_storage(db, b"k\xc3\xa9", {"name": "x"})
    assert doc.pk == "ké"


def test_copies_have_their_own_fields(db) -> None:
    import copy

    p = Person(name="A", tags=["x"])
    p.save(db)
    shallow, deep = copy.copy(p), copy.deepcopy(p)
    shallow["name"] = "B"
    deep["tags"].append("y")
    assert p["name"] == "A" and p["tags"] == ["x"]
    assert shallow.pk == deep.pk == p.pk
    assert deep.storage is db and shallow.storage is db
