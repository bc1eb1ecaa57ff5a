"""ConverterManager: registration, MRO lookup, the framework's empty-value rules."""

from __future__ import annotations

import datetime
import enum

import pytest

from doqu.backend_base import ConverterManager, ConverterNotFound


@pytest.fixture
def converters() -> ConverterManager:
    manager = ConverterManager()
    manager.register_to_db(int)(lambda value, storage: f"int:{value}")
    manager.register_from_db(int)(lambda raw, storage: int(raw))
    return manager


def test_lookup_follows_the_mro(converters: ConverterManager) -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    assert converters.to_db(Level.HIGH, None) == "int:3"
    assert converters.to_db(True, None) == "int:True"  # bool falls back to int...

    @converters.to_db(bool)
    def bool_to_db(value: bool, storage: object) -> str:
        return "yes" if value else "no"

    assert converters.to_db(True, None) == "yes"  # ...until it has its own converter
    assert converters.to_db(5, None) == "int:5"
    assert converters.get_to_db(bool) is bool_to_db


def test_own_converter_wins_regardless_of_registration_order() -> None:
    manager = ConverterManager()
    manager.register_to_db(datetime.datetime)(lambda v, s: "datetime")
    manager.register_to_db(datetime.date)(lambda v, s: "date")
    assert manager.to_db(datetime.datetime(2020, 1, 1), None) == "datetime"
    assert manager.to_db(datetime.date(2020, 1, 1), None) == "date"


def test_object_is_a_catch_all() -> None:
    manager = ConverterManager()
    manager.register_to_db(object)(lambda v, s: repr(v))
    assert manager.to_db(1.5, None) == "1.5"


def test_missing_converter_is_a_type_error_naming_the_type(converters: ConverterManager) -> None:
    with pytest.raises(ConverterNotFound, match="'float'") as info:
        converters.to_db(1.5, None)
    assert isinstance(info.value, TypeError)
    assert "registered: int" in str(info.value)
    with pytest.raises(ConverterNotFound, match="from_db"):
        converters.from_db(float, "1.5", None)


def test_decorator_forms(converters: ConverterManager) -> None:
    @converters.from_db(datetime.date)
    def read_date(raw: str, storage: object) -> datetime.date:
        return datetime.date.fromisoformat(raw)

    @converters.register_to_db(list, tuple)
    def write_list(value: list[str], storage: object) -> str:
        return ",".join(value)

    assert converters.from_db(datetime.date, "2020-02-03", None) == datetime.date(2020, 2, 3)
    assert converters.to_db(("a", "b"), None) == "a,b"
    with pytest.raises(TypeError):
        converters.register_to_db()
    with pytest.raises(TypeError):
        converters.register_to_db("int")  # type: ignore[arg-type]


def test_storage_is_passed_through(converters: ConverterManager) -> None:
    seen = []
    converters.register_to_db(str)(lambda value, storage: seen.append(storage) or value)
    marker = object()
    converters.to_db("x", marker)  # type: ignore[arg-type]
    assert seen == [marker]


def test_missing_and_empty_values(converters: ConverterManager) -> None:
    for datatype in (int, str, list, float, datetime.date):
        assert converters.from_db(datatype, None, None) is None  # no converter needed
    assert converters.from_db(int, "", None) is None
    assert converters.from_db(float, b"", None) is None
    assert converters.from_db(str, "", None) == ""
    assert converters.from_db(list, "", None) == []


def test_copy_is_independent(converters: ConverterManager) -> None:
    clone = converters.copy()
    clone.register_to_db(float)(lambda v, s: "f")
    assert clone.to_db(1.0, None) == "f"
    assert clone.to_db(1, None) == "int:1"
    with pytest.raises(ConverterNotFound):
        converters.to_db(1.0, None)
