"""LookupManager: parsing ``field__op`` names and resolving them through processors."""

from __future__ import annotations

import pytest

from doqu import Document
from doqu.backend_base import Lookup, LookupManager, UnknownLookup


@pytest.fixture
def lookups() -> LookupManager:
    manager = LookupManager()
    for name in ("equals", "startswith", "gte", "in", "exists"):
        manager.register(name)(lambda lookup: lookup)
    return manager


def test_parse(lookups: LookupManager) -> None:
    assert lookups.parse("first_name__startswith") == ("first_name", "startswith")
    assert lookups.parse("first_name") == ("first_name", "equals")
    assert lookups.parse("age__gte") == ("age", "gte")
    assert lookups.parse("a__b__in") == ("a__b", "in")  # only the last part is the operation
    assert lookups.parse("_private") == ("_private", "equals")


def test_unknown_operation_names_it_and_lists_the_known_ones(lookups: LookupManager) -> None:
    with pytest.raises(UnknownLookup) as info:
        lookups.parse("first_name__sounds_like")
    error = info.value
    assert isinstance(error, ValueError)
    assert error.operation == "sounds_like"
    assert error.known == ["equals", "exists", "gte", "in", "startswith"]
    assert "'sounds_like'" in str(error) and "equals, exists, gte, in, startswith" in str(error)
    with pytest.raises(UnknownLookup, match="''"):
        lookups.parse("name__")


def test_empty_field_is_refused(lookups: LookupManager) -> None:
    with pytest.raises(ValueError, match="names no field"):
        lookups.parse("__gte")


def test_resolve_passes_a_lookup_with_the_declared_type(lookups: LookupManager) -> None:
    class Person(Document):
        structure = {"age": int, "friend": "self"}

    storage = object()
    lookup = lookups.resolve("age__gte", 3, doc_class=Person, storage=storage)  # type: ignore[arg-type]
    assert lookup == Lookup("age", "gte", 3, int, Person, storage)  # type: ignore[arg-type]
    assert lookups.resolve("friend", "1", doc_class=Person).field_type is Person
    assert lookups.resolve("other", 1, doc_class=Person).field_type is None
    assert lookups.resolve("x", 1).field_type is None


def test_default_operation_must_be_registered() -> None:
    manager = LookupManager()
    manager.register("gt")(lambda lookup: ("gt", lookup.field))
    assert manager.resolve("a__gt", 1) == ("gt", "a")
    with pytest.raises(UnknownLookup, match="'equals'"):
        manager.resolve("a", 1)


def test_registration(lookups: LookupManager) -> None:
    @lookups.register("lt", "less")
    def lt(lookup: Lookup) -> str:
        return f"{lookup.field}<{lookup.value}"

    assert lookups.resolve("a__less", 2) == "a<2"
    assert "lt" in lookups and "nope" not in lookups
    copy = lookups.copy()
    copy.register("extra")(lt)
    assert "extra" in copy and "extra" not in lookups
    with pytest.raises(ValueError):
        lookups.register("bad__name")
    with pytest.raises(TypeError):
        lookups.register()
