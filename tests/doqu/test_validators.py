"""Validators: each one's rule, messages, chaining, and query contributions."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

import doqu
from doqu import Document
from doqu.validators import (
    URL,
    AnyOf,
    Email,
    Equals,
    EqualTo,
    Exists,
    IPAddress,
    Length,
    NoneOf,
    NumberRange,
    Optional,
    Regexp,
    Required,
    StopValidation,
    ValidationError,
)


def passes(validator, value, document=None) -> bool:
    try:
        validator(document if document is not None else {}, value)
    except (ValidationError, StopValidation) as exc:
        if isinstance(exc, StopValidation) and not exc.message:
            return True
        return False
    return True


def message(validator, value, document=None) -> str:
    with pytest.raises((ValidationError, StopValidation)) as info:
        validator(document if document is not None else {}, value)
    return info.value.message


def test_validation_error_is_a_value_error_and_reexported() -> None:
    assert issubclass(ValidationError, ValueError)
    assert doqu.ValidationError is ValidationError


def test_required() -> None:
    assert not passes(Required(), None)
    assert not passes(Required(), "")
    for value in ("x", 0, False, [], 0.0):
        assert passes(Required(), value)
    with pytest.raises(StopValidation):  # stops the chain
        Required()({}, None)
    assert message(Required(), None) == "This field is required."
    assert message(Required(message="Say it"), None) == "Say it"


def test_exists() -> None:
    assert not passes(Exists(), None)
    assert passes(Exists(), "")
    assert passes(Exists(), 0)


def test_optional_stops_quietly_on_empty_values() -> None:
    with pytest.raises(StopValidation) as info:
        Optional()({}, "")
    assert info.value.message == ""
    Optional()({}, "x")  # no exception


def test_length() -> None:
    v = Length(min=2, max=3)
    assert [passes(v, x) for x in ("a", "ab", "abc", "abcd", ["a", "b"], None)] == [
        False,
        True,
        True,
        False,
        True,
        False,
    ]
    assert passes(Length(max=3), None)
    assert message(v, "a") == "Length must be between 2 and 3."
    assert message(Length(min=2), "a") == "Length must be at least 2."
    assert "text or a list" in message(v, 5)
    with pytest.raises(TypeError):
        Length()
    with pytest.raises(ValueError):
        Length(min=3, max=1)


def test_number_range() -> None:
    v = NumberRange(min=0, max=10)
    assert passes(v, 0) and passes(v, 10) and passes(v, 5.5) and passes(v, Decimal("3"))
    assert not passes(v, -1) and not passes(v, 11)
    assert not passes(v, None) and not passes(v, "5") and not passes(v, True)
    assert message(NumberRange(max=10), 11) == "Number must be at most 10."
    assert passes(NumberRange(min=1), 10**20)


def test_regexp_searches() -> None:
    v = Regexp(r"^\d+$")
    assert passes(v, "123") and not passes(v, "12a") and not passes(v, None)
    assert passes(Regexp("b"), "abc")  # search, like a query's "matches"
    assert passes(Regexp("ABC", re.IGNORECASE), "xabcx")
    assert passes(Regexp(re.compile("x")), "x")
    assert message(Regexp("x", message="no x"), "y") == "no x"


def test_email() -> None:
    for good in ("a@b.co", "first.last+tag@mail.example.org"):
        assert passes(Email(), good), good
    for bad in ("", "a@b", "@b.co", "a b@c.de", "a@b..c", None, 5):
        assert not passes(Email(), bad), bad
    assert message(Email(), "x") == "Invalid email address."


def test_url() -> None:
    for good in (
        "http://example.com",
        "https://sub.example.co.uk/path?q=1#f",
        "ftp://user:pw@files.example.org:21/x",
        "http://127.0.0.1:8000/",
    ):
        assert passes(URL(), good), good
    for bad in ("example.com", "http://", "http://localhost/", "mailto:a@b.c", "http://a b.com"):
        assert not passes(URL(), bad), bad
    assert passes(URL(require_tld=False), "http://localhost:8080/x")


def test_ip_address() -> None:
    assert passes(IPAddress(), "192.168.0.1")
    assert not passes(IPAddress(), "::1")
    assert not passes(IPAddress(), "300.1.1.1")
    assert passes(IPAddress(ipv6=True), "::1")
    assert not passes(IPAddress(ipv4=False, ipv6=True), "10.0.0.1")
    assert message(IPAddress(ipv6=True), "x") == "Invalid IPv4 or IPv6 address."
    with pytest.raises(ValueError):
        IPAddress(ipv4=False)


def test_any_of_none_of_equals() -> None:
    assert passes(AnyOf(["a", "b"]), "a") and not passes(AnyOf(["a", "b"]), "c")
    assert message(AnyOf(["a", "b"]), "c") == "Must be one of: 'a', 'b'."
    assert passes(NoneOf(["a"]), "b") and not passes(NoneOf(["a"]), "a")
    assert passes(NoneOf(["a"]), None)
    assert passes(Equals(3), 3) and not passes(Equals(3), 4)


def test_equal_to_reads_the_other_field() -> None:
    class Signup(Document):
        structure = {"password": str, "confirm": str}
        validators = {"confirm": [EqualTo("password")]}
        labels = {"password": "Password"}

    assert Signup(password="x", confirm="x").is_valid()
    with pytest.raises(ValidationError) as info:
        Signup(password="x", confirm="y").validate()
    assert info.value.errors == {"confirm": ["Must be equal to Password."]}


def test_chain_collects_errors_and_stops_on_stop_validation() -> None:
    class Form(Document):
        structure = {"code": str, "note": str}
        validators = {
            "code": [Required(), Length(max=2), Regexp(r"^\d+$")],
            "note": [Optional(), Length(min=3)],
        }

    with pytest.raises(ValidationError) as info:
        Form(code="abc", note="").validate()
    assert info.value.errors == {"code": ["Length must be at most 2.", "Invalid input."]}
    with pytest.raises(ValidationError) as info:
        Form(code=None, note="ab").validate()
    assert info.value.errors == {
        "code": ["This field is required."],
        "note": ["Length must be at least 3."],
    }


def test_plain_functions_are_validators() -> None:
    def even(document, value):
        if value % 2:
            raise ValidationError("must be even")

    class Counter(Document):
        structure = {"n": int}
        validators = {"n": [Required(), even]}

    assert Counter(n=2).is_valid()
    with pytest.raises(ValidationError, match="must be even"):
        Counter(n=3).validate()


def test_query_contributions(db) -> None:
    class Item(Document):
        structure = {"name": str, "kind": str, "size": int, "code": str, "state": str, "note": str}
        validators = {
            "name": [Required()],
            "kind": [AnyOf(["a", "b"])],
            "size": [NumberRange(min=1, max=5)],
            "code": [Regexp("^x")],
            "state": [NoneOf(["gone"])],
            "note": [Optional(), Equals("fixed")],
        }

    def raw(**columns):
        base = {"name": "n", "kind": "a", "size": "3", "code": "x1", "state": "ok"}
        base.update(columns)
        return db.save({k: v for k, v in base.items() if v is not None})

    good = raw()
    raw(name=None)  # Required -> exists
    raw(kind="c")  # AnyOf -> in
    raw(size="9")  # NumberRange -> lte
    raw(size="0")  # NumberRange -> gte
    raw(code="yx")  # Regexp -> matches
    raw(state="gone")  # NoneOf -> where_not in
    no_state = raw(state=None)  # where_not keeps records lacking the column
    odd_note = raw(note="anything")  # after Optional: no narrowing
    assert sorted(d.pk for d in Item.objects(db)) == sorted([good, no_state, odd_note])
    assert Item.objects(db).where(size=3).count() == 3


def test_flagged_regexps_email_and_url_do_not_narrow(db) -> None:
    class Contact(Document):
        structure = {"email": str, "site": str, "name": str}
        validators = {
            "email": [Email()],
            "site": [URL()],
            "name": [Regexp("^a", re.IGNORECASE)],
        }

    db.save({"email": "not an email"})
    assert Contact.objects(db).count() == 1


def test_reprs() -> None:
    assert repr(Length(max=3)) == "Length(max=3)"
    assert repr(Regexp("a")) == "Regexp('a')"
    assert repr(URL()) == "URL(require_tld=True)"
