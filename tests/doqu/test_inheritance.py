"""Class attributes are inherited and merged by subclasses."""

from __future__ import annotations

import pytest

from doqu import Document, ValidationError
from doqu.validators import AnyOf, Length, Required


class Base(Document):
    structure = {"name": str, "kind": str}
    validators = {"name": [Required()]}
    defaults = {"kind": "base"}
    labels = {"name": "Name"}
    incoming_processors = {"name": str.strip}
    skip_type_conversion = ["raw"]


class Child(Base):
    structure = {"age": int, "kind": str}
    validators = {"name": [Length(max=3)], "age": [Required()]}
    defaults = {"age": 1}
    labels = {"age": "Age"}
    outgoing_processors = {"name": str.upper}
    skip_type_conversion = ["other"]


class Mixin(Document):
    structure = {"colour": str}
    validators = {"colour": [AnyOf(["red", "blue"])]}


class Grandchild(Child, Mixin):
    use_dot_notation = True
    skip_type_conversion = True


def test_dicts_are_merged_subclass_last() -> None:
    assert Child.structure == {"name": str, "kind": str, "age": int}
    assert Child.defaults == {"kind": "base", "age": 1}
    assert Child.labels == {"name": "Name", "age": "Age"}
    assert Child.incoming_processors == {"name": str.strip}
    assert Child.outgoing_processors == {"name": str.upper}


def test_base_class_is_untouched() -> None:
    assert Base.structure == {"name": str, "kind": str}
    assert list(Base.validators) == ["name"] and len(Base.validators["name"]) == 1
    assert Base.outgoing_processors == {}
    assert Document.structure == {}


def test_validator_chains_are_concatenated_base_first() -> None:
    chain = Child.validators["name"]
    assert [type(v) for v in chain] == [Required, Length]
    assert not Child(name="long name", age=1).is_valid()
    assert not Child(name="", age=1).is_valid()
    assert Child(name="abc", age=1).is_valid()


def test_skip_type_conversion_field_sets_unite_and_a_bool_replaces() -> None:
    assert set(Child.skip_type_conversion) == {"raw", "other"}  # type: ignore[arg-type]
    assert Grandchild.skip_type_conversion is True


def test_multiple_inheritance_follows_the_mro() -> None:
    assert set(Grandchild.structure) == {"name", "kind", "age", "colour"}
    assert set(Grandchild.validators) == {"name", "age", "colour"}
    g = Grandchild(name="ab", age=2, colour="green")
    assert g.name == "ab"
    with pytest.raises(ValidationError) as info:
        g.validate()
    assert list(info.value.errors) == ["colour"]
    assert not Child.use_dot_notation


def test_defaults_apply_through_inheritance() -> None:
    c = Child(name="x")
    assert c["kind"] == "base" and c["age"] == 1


def test_bad_declarations_are_refused_at_class_creation() -> None:
    with pytest.raises(TypeError, match="structure"):

        class BadType(Document):
            structure = {"x": 5}

    with pytest.raises(TypeError, match="not callable"):

        class BadValidator(Document):
            validators = {"x": ["nope"]}

    with pytest.raises(TypeError, match="must be a dict"):

        class BadDict(Document):
            structure = ["x"]  # type: ignore[assignment]

    with pytest.raises(TypeError, match="skip_type_conversion"):

        class BadSkip(Document):
            skip_type_conversion = "x"


def test_a_single_validator_may_be_given_without_a_list() -> None:
    class Single(Document):
        structure = {"x": str}
        validators = {"x": Required()}  # type: ignore[dict-item]

    assert len(Single.validators["x"]) == 1
    assert not Single().is_valid()
