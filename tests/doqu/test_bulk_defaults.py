"""The backend contract's default save_many / delete_many (one by one, validated first)."""

from __future__ import annotations

import pytest

from doqu import Document, ValidationError
from doqu.validators import Required
from tests.doqu.memory_backend import StorageAdapter


class Note(Document):
    structure = {"text": str, "about": "self"}
    validators = {"text": [Required()]}


def test_save_many_validates_everything_before_saving_anything(db: StorageAdapter) -> None:
    notes = [Note(text=f"n{i}") for i in range(5)]
    notes[3]["text"] = None
    with pytest.raises(ValidationError, match="document 3 of the 5 given") as info:
        db.save_many(notes)
    assert info.value.document_index == 3 and info.value.fields == ["text"]
    assert len(db) == 0 and all(note.pk is None for note in notes)
    notes[3]["text"] = "fixed"
    parent = Note(text="parent")
    notes[0]["about"] = parent
    keys = db.save_many(notes)
    assert keys == [note.pk for note in notes] and parent.pk is not None
    assert len(db) == 6


def test_delete_many_reports_the_missing_keys(db: StorageAdapter) -> None:
    keys = db.save_many([Note(text="a"), Note(text="b"), Note(text="c")])
    with pytest.raises(KeyError) as info:
        db.delete_many([keys[0], "nope", keys[1]])
    assert info.value.args[0] == "nope" and len(db) == 1
    db.delete_many([keys[2]])
    assert len(db) == 0


def test_bulk_calls_need_a_connection(db: StorageAdapter) -> None:
    db.disconnect()
    with pytest.raises(RuntimeError, match="not connected"):
        db.save_many([])
    with pytest.raises(RuntimeError, match="not connected"):
        db.delete_many([])
