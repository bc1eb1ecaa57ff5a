"""References between documents: saving cascades, loading is lazy and by key."""

from __future__ import annotations

import pytest

from doqu import BrokenReference, Document, ValidationError
from doqu.validators import Required


class Author(Document):
    structure = {"name": str}
    validators = {"name": [Required()]}


class Book(Document):
    structure = {"title": str, "author": Author, "editor": "tests.doqu.test_references.Author"}


class Employee(Document):
    structure = {"name": str, "manager": "self"}


class Chapter(Document):
    structure = {"book": "Book"}  # a name in this module


def test_saving_saves_an_unsaved_referenced_document_first(db) -> None:
    author = Author(name="Ann")
    book = Book(title="T", author=author)
    pk = book.save(db)
    assert author.pk is not None and author.pk in db
    assert db.records[pk]["author"] == author.pk
    assert db.records[pk]["editor"] == ""


def test_cascade_is_transitive_and_validates_everything_before_writing(db) -> None:
    boss = Employee(name="Boss")
    mid = Employee(name="Mid", manager=boss)
    low = Employee(name="Low", manager=mid)
    low.save(db)
    assert len(db) == 3
    assert db.get(Employee, low.pk)["manager"]["manager"]["name"] == "Boss"

    bad_author = Author(name="")
    book = Book(title="T", author=bad_author)
    before = len(db)
    with pytest.raises(ValidationError, match="name"):
        book.save(db)
    assert len(db) == before and bad_author.pk is None and book.pk is None


def test_circular_unsaved_references_are_refused(db) -> None:
    a = Employee(name="a")
    b = Employee(name="b", manager=a)
    a["manager"] = b
    with pytest.raises(ValueError, match="circular"):
        a.save(db)
    assert len(db) == 0
    b["manager"] = None
    a.save(db)
    assert len(db) == 2


def test_already_saved_references_are_not_saved_again(db) -> None:
    author = Author(name="Ann")
    author.save(db)
    author["name"] = "Changed"
    Book(title="T", author=author).save(db)
    assert db.get(Author, author.pk)["name"] == "Ann"


def test_loading_fetches_the_reference_lazily_by_key(db) -> None:
    author = Author(name="Ann")
    pk = Book(title="T", author=author, editor=author).save(db)
    book = db.get(Book, pk)
    assert book._data["author"].pk == author.pk  # not fetched yet
    db.records[author.pk]["name"] = "Ann (renamed)"
    fetched = book["author"]
    assert isinstance(fetched, Author) and fetched.pk == author.pk
    assert fetched["name"] == "Ann (renamed)"
    assert fetched.storage is db
    assert book["author"] is fetched  # fetched once, then kept
    assert book["editor"] == fetched


def test_unfetched_reference_is_written_back_as_its_key(db) -> None:
    author = Author(name="Ann")
    pk = Book(title="T", author=author).save(db)
    book = db.get(Book, pk)
    book["title"] = "T2"
    book.save()
    assert db.records[pk]["author"] == author.pk
    assert book._data["author"].pk == author.pk  # still not fetched


def test_broken_reference(db) -> None:
    author = Author(name="Ann")
    pk = Book(title="T", author=author).save(db)
    author.delete()
    book = db.get(Book, pk)
    with pytest.raises(BrokenReference, match="not in the database"):
        book["author"]


def test_self_and_module_name_references_resolve() -> None:
    assert Employee.field_type("manager") is Employee
    assert Chapter.field_type("book") is Book
    assert Book.field_type("editor") is Author
    assert Book.field_type("author") is Author
    assert Book.field_type("nope") is None


def test_self_refers_to_the_declaring_class_in_subclasses() -> None:
    class Contractor(Employee):
        pass

    assert Contractor.field_type("manager") is Employee


def test_unresolvable_references_fail_on_use() -> None:
    class Dangling(Document):
        structure = {"x": "NoSuchClass", "y": "datetime.date"}

    with pytest.raises(ImportError, match="NoSuchClass"):
        Dangling.field_type("x")
    with pytest.raises(TypeError, match="not a Document"):
        Dangling.field_type("y")


def test_reference_type_is_checked() -> None:
    assert not Book(title="T", author=Employee(name="x")).is_valid()
    assert Book(title="T", author=Author(name="x")).is_valid()


def test_equality_compares_references_by_key(db) -> None:
    author = Author(name="Ann")
    pk = Book(title="T", author=author).save(db)
    lazy, eager = db.get(Book, pk), db.get(Book, pk)
    eager["author"]  # noqa: B018
    assert lazy == eager
    assert "reference" in repr(lazy)
