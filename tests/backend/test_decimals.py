"""Decimals are stored as positional digits the server's number parser reads right.

Tokyo Cabinet reads a number as sign, digits and an optional fraction,
stopping at anything else: ``1E+2`` is 1 and ``1E-7`` is 1 to the server.
"""

from __future__ import annotations

import re
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doqu import Document
from doqu_tyrant import StorageAdapter
from doqu_tyrant.converters import MAX_DECIMAL_TEXT
from doqu_tyrant.converters import converter_manager as cm
from doqu_tyrant.tyrant import Tyrant
from tests.backend.conftest import Requests

# What the server's number parser reads completely: no exponent, no hex, no "inf".
POSITIONAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


class Payment(Document):
    structure = {"amount": Decimal, "note": str}


def to_db(value: object) -> object:
    return cm.to_db(value, SimpleNamespace())


def from_db(raw: str) -> Decimal:
    return cm.from_db(Decimal, raw, None)  # type: ignore[no-any-return]


finite = st.decimals(allow_nan=False, allow_infinity=False, places=None).filter(
    lambda d: abs(d.as_tuple().exponent) < 200  # type: ignore[arg-type]
)


@given(finite)
def test_every_finite_decimal_is_written_without_an_exponent(value: Decimal) -> None:
    text = to_db(value)
    assert isinstance(text, str) and POSITIONAL.fullmatch(text), text


@given(st.one_of(finite, st.decimals(allow_nan=False, allow_infinity=False)))
def test_the_text_is_format_f_of_the_value(value: Decimal) -> None:
    # (the converter takes str() where it is positional: the same text, faster)
    if -MAX_DECIMAL_TEXT < value.adjusted() < MAX_DECIMAL_TEXT:
        assert to_db(value) == format(value, "f")
    else:
        with pytest.raises(ValueError):
            to_db(value)


@given(finite)
def test_the_round_trip_keeps_value_sign_and_the_places_given(value: Decimal) -> None:
    read = from_db(to_db(value))  # type: ignore[arg-type]
    assert read == value and read.is_signed() == value.is_signed()
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if exponent <= 0:  # decimal places (also trailing zeros) survive exactly
        assert read.as_tuple() == value.as_tuple()
    else:  # no positional form keeps a positive exponent: it reads back as exponent 0
        assert read.as_tuple().exponent == 0
        assert read == value.quantize(Decimal(1))


@pytest.mark.parametrize(
    ("value", "text", "read"),
    [
        (Decimal("1E-7"), "0.0000001", Decimal("1E-7")),
        (Decimal("1.50"), "1.50", Decimal("1.50")),
        (Decimal("-0E-3"), "-0.000", Decimal("-0E-3")),
        (Decimal("1E+2"), "100", Decimal("100")),  # equal, but str() is "100"
        (Decimal("-1.2E+3"), "-1200", Decimal("-1200")),
        (Decimal("-0"), "-0", Decimal("-0")),
    ],
)
def test_documented_examples(value: Decimal, text: str, read: Decimal) -> None:
    assert to_db(value) == text
    assert str(from_db(text)) == str(read)


@pytest.mark.parametrize("text", ["NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "NaN12"])
def test_non_finite_decimals_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="only finite Decimals"):
        to_db(Decimal(text))


def test_a_decimal_too_long_to_write_positionally_is_refused() -> None:
    assert len(to_db(Decimal(f"1E-{MAX_DECIMAL_TEXT - 1}"))) == MAX_DECIMAL_TEXT + 1  # type: ignore[arg-type]
    assert len(to_db(Decimal(f"9E+{MAX_DECIMAL_TEXT - 1}"))) == MAX_DECIMAL_TEXT  # type: ignore[arg-type]
    for text in ("1E+999999", f"1E-{MAX_DECIMAL_TEXT}", f"-1.5E+{MAX_DECIMAL_TEXT}"):
        with pytest.raises(ValueError, match="digits of zeros"):
            to_db(Decimal(text))


@pytest.mark.parametrize("text", ["1E+2", "1E-7", "Infinity", "NaN", "-0E-3"])
def test_records_the_python_2_library_wrote_with_str_still_read(
    db: StorageAdapter, raw: Tyrant, text: str
) -> None:
    raw.table_put("old", {"amount": text})
    read = db.get(Payment, "old")["amount"]
    assert str(read) == str(Decimal(text))


def test_a_refused_decimal_sends_nothing(db: StorageAdapter, requests: Requests) -> None:
    with requests() as seen, pytest.raises(ValueError, match="finite"):
        Payment(amount=Decimal("NaN")).save(db)
    assert seen.total == 0
    assert Payment(amount=Decimal(1)).save(db) == "1"  # no generated key was spent


AMOUNTS = ["1E-7", "1E+2", "-0E-3", "2.5", "-1E+1", "0.00000001", "99"]


def test_lookups_and_order_see_the_value_of_exponent_decimals(db: StorageAdapter) -> None:
    keys = {text: Payment(amount=Decimal(text)).save(db) for text in AMOUNTS}
    q = db.find(Payment)

    def found(**conditions: object) -> set[str]:
        return {doc.pk for doc in q.where(**conditions)}

    for text in AMOUNTS:  # every document is found by its own value
        assert found(amount=Decimal(text)) == {keys[text]}, text
    assert found(amount__gt=Decimal("1E+1")) == {keys["1E+2"], keys["99"]}
    assert found(amount__lt=Decimal("1E-6"), amount__gt=0) == {keys["1E-7"], keys["0.00000001"]}
    assert found(amount__between=(Decimal("-1E+1"), Decimal("-1E-9"))) == {keys["-1E+1"]}
    assert found(amount__in=[Decimal("1E+2"), Decimal("1E-7")]) == {keys["1E+2"], keys["1E-7"]}
    ordered = [doc["amount"] for doc in q.order_by("amount")]
    assert ordered == sorted(Decimal(t) for t in AMOUNTS)
    assert [str(doc["amount"]) for doc in q.where(amount=Decimal("1E-7"))] == ["1E-7"]


def test_a_text_field_compared_with_a_decimal_uses_the_stored_form(db: StorageAdapter) -> None:
    key = db.save({"note": Decimal("1E+2")})  # written through the same converter: "100"
    assert {doc.pk for doc in db.find(Payment).where(note=Decimal("1E+2"))} == {key}


def test_numbers_given_as_text_are_sent_positionally(db: StorageAdapter) -> None:
    key = Payment(amount=Decimal("100")).save(db)
    assert {d.pk for d in db.find(Payment).where(amount="1E+2")} == {key}
    assert {d.pk for d in db.find(Payment).where(amount__gt="1E+1")} == {key}
    with pytest.raises(ValueError, match="NaN"):
        db.find(Payment).where(amount__gt="nan").count()
    with pytest.raises(ValueError, match="digits of zeros"):
        db.find(Payment).where(amount__gt="1E+999999").count()
