"""The StorageAdapter seed API against the server."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from doqu import Document, ValidationError
from doqu.backend_base import ConverterNotFound
from doqu.validators import Required
from doqu_tyrant import QueryAdapter, StorageAdapter
from doqu_tyrant.tyrant import Tyrant
from tests.backend.conftest import Requests
from tests.backend.models import Item
from tests.conftest import ServerFactory


class Person(Document):
    structure = {"name": str, "age": int}
    validators = {"name": [Required()]}


def test_save_generates_keys_from_the_counter_and_clear_resets_it(
    db: StorageAdapter, raw: Tyrant
) -> None:
    assert db.save({"name": "a"}) == "1"
    assert db.save({"name": "b"}) == "2"
    assert raw["2"] == {"name": "b"}
    db.clear()
    assert len(db) == 0
    assert db.save({"name": "c"}) == "1"


def test_save_with_a_key_replaces_the_whole_record(db: StorageAdapter, raw: Tyrant) -> None:
    assert db.save({"a": "1", "b": "2"}, primary_key="k") == "k"
    assert db.save({"a": "3"}, "k") == "k"
    assert raw["k"] == {"a": "3"}
    assert db.save({"x": "y"}, primary_key=5) == "5"
    assert raw["5"] == {"x": "y"}


def test_save_converts_values_that_are_not_text_yet(db: StorageAdapter, raw: Tyrant) -> None:
    key = db.save({"n": 5, "d": datetime.date(2010, 1, 2), "l": ["a", "b"], "z": None,
                   "m": Decimal("1.50"), "f": 0.5, "b": True})
    assert raw[key] == {"n": "5", "d": "20100102", "l": "a, b", "z": "", "m": "1.50",
                        "f": "0.5", "b": "1"}


def test_save_accepts_the_old_argument_order(db: StorageAdapter, raw: Tyrant) -> None:
    assert db.save("old", {"a": "1"}) == "old"  # type: ignore[arg-type]
    assert db.save(None, {"a": "2"}) == "1"  # type: ignore[arg-type]
    assert raw["old"] == {"a": "1"} and raw["1"] == {"a": "2"}


def test_get_and_get_many(db: StorageAdapter) -> None:
    keys = [Person(name=n, age=i).save(db) for i, n in enumerate("abc")]
    assert db.get(Person, keys[1])["name"] == "b"
    assert db.get(Person, int(keys[1])).pk == keys[1]
    assert db.get(keys[2], Person)["name"] == "c"  # type: ignore[arg-type]  # 0.28 order
    with pytest.raises(KeyError):
        db.get(Person, "nope")
    docs = db.get_many(Person, [keys[2], keys[0], keys[2]])
    assert [d["name"] for d in docs] == ["c", "a", "c"]
    assert [d.pk for d in db.get_many(Person, iter([3, "1"]))] == ["3", "1"]
    assert [d["name"] for d in db.get_many(keys[:2], Person)] == ["a", "b"]  # type: ignore[arg-type]
    assert db.get_many(Person, []) == []
    assert db.get_many(Person, ()) == []
    with pytest.raises(KeyError) as info:
        db.get_many(Person, [keys[0], "x", "y"])
    assert info.value.args[0] == ["x", "y"]
    with pytest.raises(KeyError) as one:
        db.get_many(Person, ["x", keys[0]])
    assert one.value.args[0] == "x"


def test_get_and_get_many_cost_one_request(db: StorageAdapter, requests: Requests) -> None:
    keys = [db.save({"name": str(i)}) for i in range(50)]
    with requests() as seen:
        db.get(Person, keys[0])
    assert seen.delta() == {"misc": 1}
    with requests() as seen:
        db.get_many(Person, keys)
    assert seen.delta() == {"misc": 1}
    with requests() as seen:
        query = db.find(Person).where(name__in=["1", "2"]).where_not(age=3).order_by("-age")
        query = query | db.find(Person).where(name="3")
    assert seen.total == 0
    with requests() as seen:
        assert len([doc for doc in query]) == 3  # list(query) would call len() first
    assert seen.delta() == {"misc": 1}
    with requests() as seen:
        assert len(query[:]) == 3
    assert seen.delta() == {"misc": 1}


def test_get_or_create(db: StorageAdapter) -> None:
    doc, created = db.get_or_create(Person, name="Ann", age=3)
    assert created and doc.pk == "1"
    again, created = db.get_or_create(Person, name="Ann", age=3)
    assert not created and again.pk == "1"
    other, created = db.get_or_create(Person, name="Ann", age=4)
    assert created and other.pk == "2"
    with pytest.raises(ValueError, match="equality"):
        db.get_or_create(Person, age__gt=3)
    with pytest.raises(ValidationError):
        db.get_or_create(Person, age=9)
    assert len(db) == 2


def test_delete(db: StorageAdapter) -> None:
    key = db.save({"a": "1"})
    db.delete(key)
    assert key not in db
    with pytest.raises(KeyError):
        db.delete(key)
    with pytest.raises(KeyError):
        db.delete(999)


def test_mapping_protocol(db: StorageAdapter) -> None:
    assert len(db) == 0 and list(db) == [] and bool(db)  # connected: true even when empty
    db.save({"a": "1"}, "ü-key")
    db.save({"a": "1"}, 7)
    assert "ü-key" in db and 7 in db and "7" in db
    assert "missing" not in db and None not in db and "" not in db and "a\0b" not in db
    assert sorted(db) == ["7", "ü-key"]
    assert len(db) == 2
    db.sync()


def test_lifecycle(db: StorageAdapter) -> None:
    with pytest.raises(RuntimeError, match="already connected"):
        db.connect()
    db.disconnect()
    assert not db and not db.connected
    for call in (lambda: db.get(Person, "1"), lambda: db.save({}), lambda: len(db),
                 lambda: db.find(Person), lambda: db.clear()):
        with pytest.raises(RuntimeError, match="not connected"):
            call()
    db.disconnect()  # no-op
    db.connect()
    assert db.save({"a": "b"}) == "1"
    db.reconnect()
    assert db.get(Person, "1")["a"] == "b"


def test_find_and_objects(db: StorageAdapter) -> None:
    Person(name="a", age=1).save(db)
    Person(name="b", age=2).save(db)
    db.save({"age": "3"})  # no name: not a valid Person, outside its view (Required)
    assert isinstance(db.find(Person), QueryAdapter)
    assert [p["name"] for p in db.find(Person, age__gte=2)] == ["b"]
    assert Person.objects(db).count() == 2
    assert db.find(Item).count() == 3  # a class without validators sees every record


def test_settings_and_repr(tyrant_url: str) -> None:
    with StorageAdapter(url=tyrant_url) as db:
        host, port = db.host, db.port
        assert repr(db).endswith(f"(host={host!r}, port={port}) connected>")
        again = StorageAdapter(host, port, pool_size=2, timeout=5)
        assert again.client.host == host
        again.disconnect()
    with pytest.raises(TypeError):
        StorageAdapter(url=tyrant_url, colour="blue")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("data", "error", "match"),
    [
        ({"a": "x\0y"}, ValueError, "NUL"),
        ({"a\0b": "x"}, ValueError, "NUL"),
        ({"": "x"}, ValueError, "empty"),
        ({5: "x"}, TypeError, "column names"),
        ({"tags": ["a, b"]}, ValueError, "separator"),
        ({"when": datetime.datetime(2010, 1, 1, 0, 0, 0, 5)}, ValueError, "whole seconds"),
        ({"when": datetime.datetime(2010, 1, 1, tzinfo=datetime.timezone.utc)}, ValueError,
         "aware"),
        ({"what": object()}, ConverterNotFound, "object"),
        ({"what": {"nested": 1}}, ConverterNotFound, "dict"),
    ],
)
def test_bad_input_raises_before_anything_is_sent(
    db: StorageAdapter, requests: Requests, data: dict, error: type[Exception], match: str
) -> None:
    with requests() as seen:
        with pytest.raises(error, match=match):
            db.save(data)
        with pytest.raises(error, match=match):
            db.save(data, primary_key="k")
    assert seen.total == 0
    assert db.save({"ok": "1"}) == "1"  # no key was taken from the counter


@pytest.mark.parametrize("key", ["", "a\0b"])
def test_bad_keys_are_refused(db: StorageAdapter, key: str) -> None:
    with pytest.raises(ValueError):
        db.save({"a": "1"}, primary_key=key)
    assert len(db) == 0


def test_opt_in_datetime_options(tyrant_url: str, raw: Tyrant) -> None:
    db = StorageAdapter(url=tyrant_url, truncate_microseconds=True, utc_datetimes=True)
    tz = datetime.timezone(datetime.timedelta(hours=-1))
    key = db.save({"when": datetime.datetime(2010, 1, 1, 23, 0, 0, 999, tzinfo=tz)})
    assert raw[key] == {"when": "20100102000000"}
    assert "truncate_microseconds=True" in repr(db)
    db.disconnect()


def test_connecting_to_nothing_raises_connection_error(tyrant_url: str) -> None:
    from doqu_tyrant.tyrant import TyrantConnectionError

    with pytest.raises(TyrantConnectionError):
        StorageAdapter(host="127.0.0.1", port=1, timeout=2)


def test_a_non_table_database_is_refused(server_factory: ServerFactory) -> None:
    from doqu import ImproperlyConfigured

    server = server_factory("hash")
    with pytest.raises(ImproperlyConfigured, match="hash"):
        StorageAdapter(url=server.url)
