"""storage-format.md "where the old library was wrong", rows that hold at the document level."""

from __future__ import annotations

import datetime
import warnings
from decimal import Decimal

import pytest

from doqu import Document, IncomingDataError, IncomingDataWarning, ValidationError

TYPES = {
    "text": str,
    "number": int,
    "ratio": float,
    "flag": bool,
    "money": Decimal,
    "day": datetime.date,
    "moment": datetime.datetime,
    "items": list,
}


class Typed(Document):
    structure = TYPES


def test_row_1_missing_column_reads_as_none_for_every_type(db) -> None:
    pk = db.save({"unrelated": "x"})
    doc = db.get(Typed, pk)
    assert {name: doc[name] for name in TYPES} == dict.fromkeys(TYPES)
    assert doc.pk == pk


def test_row_2_empty_string_is_none_except_text_and_list(db) -> None:
    pk = db.save(dict.fromkeys(TYPES, ""))
    doc = db.get(Typed, pk)
    expected = dict.fromkeys(TYPES)
    expected.update(text="", items=[])
    assert {name: doc[name] for name in TYPES} == expected


def test_row_10_invalid_constructor_values_are_kept_and_save_refuses(db) -> None:
    doc = Typed(number="twelve", day="2020-01-01", flag="yes")
    assert (doc["number"], doc["day"], doc["flag"]) == ("twelve", "2020-01-01", "yes")
    with pytest.raises(ValidationError) as info:
        doc.save(db)
    assert set(info.value.errors) == {"number", "day", "flag"}
    assert len(db) == 0 and doc.pk is None
    assert doc["number"] == "twelve"


def test_row_11_unconvertible_value_is_kept_with_a_warning_and_written_back(db) -> None:
    pk = db.save({"text": "t", "number": "abc", "day": "not a date", "extra": "kept"})
    with pytest.warns(IncomingDataWarning) as caught:
        doc = db.get(Typed, pk)
    messages = " ".join(str(w.message) for w in caught)
    assert "'number'" in messages and "'abc'" in messages and "'day'" in messages
    assert doc["number"] == "abc" and doc["day"] == "not a date"
    assert doc.is_valid()
    doc["text"] = "changed"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        doc.save()
    record = db.records[pk]
    assert record["number"] == "abc" and record["day"] == "not a date"
    assert record["text"] == "changed" and record["extra"] == "kept"


def test_row_11_replacing_the_raw_value_validates_normally(db) -> None:
    pk = db.save({"number": "abc"})
    with pytest.warns(IncomingDataWarning):
        doc = db.get(Typed, pk)
    doc["number"] = "still text"
    with pytest.raises(ValidationError, match="number"):
        doc.save()
    doc["number"] = 5
    doc.save()
    assert db.records[pk]["number"] == "5"


def test_row_11_break_on_invalid_incoming_data(db) -> None:
    class Strict(Typed):
        break_on_invalid_incoming_data = True

    pk = db.save({"number": "abc"})
    with pytest.raises(IncomingDataError) as info:
        db.get(Strict, pk)
    assert info.value.field == "number" and info.value.raw == "abc" and info.value.key == pk
    assert isinstance(info.value, ValueError)


def test_row_13_keys_are_text_everywhere(db) -> None:
    doc = Typed(text="x")
    pk = doc.save(db)
    assert isinstance(pk, str) and isinstance(doc.pk, str)
    assert db.get(Typed, int(pk)).pk == pk
    assert isinstance(db.get(Typed, int(pk)).pk, str)
    assert int(pk) in db and pk in db
    assert all(isinstance(key, str) for key in db)
    assert all(isinstance(d.pk, str) for d in db.find(Typed))
    explicit = db.save({"text": "y"}, primary_key=42)
    assert explicit == "42"
    assert db.get(Typed, "42")["text"] == "y"


def test_columns_outside_the_structure_survive_load_and_save(db) -> None:
    pk = db.save({"text": "a", "legacy": "old value", "other": ""})
    doc = db.get(Typed, pk)
    assert doc["legacy"] == "old value"
    doc["number"] = 3
    doc.save()
    assert db.records[pk]["legacy"] == "old value" and db.records[pk]["other"] == ""
    doc["legacy"] = "new"  # a stored column may be changed...
    doc.save()
    assert db.records[pk]["legacy"] == "new"
    del doc["legacy"]  # ...or dropped
    doc.save()
    assert "legacy" not in db.records[pk]


def test_every_structure_field_is_written_unset_ones_as_the_backends_none(db) -> None:
    pk = Typed(text="x").save(db)
    assert set(db.records[pk]) == set(TYPES)
    assert db.records[pk]["number"] == ""


def test_unknown_type_is_refused_before_anything_is_written(db) -> None:
    class Odd(Document):
        structure = {"value": complex}

    with pytest.raises(TypeError, match="complex"):
        Odd(value=1j).save(db)
    assert len(db) == 0
