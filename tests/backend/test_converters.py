"""The storage encodings (storage-format.md), both directions, without a server."""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doqu.backend_base import ConverterNotFound
from doqu_tyrant.converters import converter_manager as cm

UTC = datetime.timezone.utc


def to_db(value: object, **options: object) -> object:
    return cm.to_db(value, SimpleNamespace(**options) if options else None)


def from_db(datatype: type, raw: object) -> object:
    return cm.from_db(datatype, raw, None)


@pytest.mark.parametrize(
    ("value", "stored"),
    [
        ("text", "text"),
        ("", ""),
        ("ünïcode ✓", "ünïcode ✓"),
        (-7, "-7"),
        (10**30, "1" + "0" * 30),
        (0.1, "0.1"),
        (1 / 3, "0.3333333333333333"),
        (-0.0, "-0.0"),
        (1e20, "100000000000000000000"),  # positional: the server reads no exponent
        (1.5e-7, "0.00000015"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (True, "1"),
        (False, "0"),
        (Decimal("1.50"), "1.50"),  # not normalised
        (Decimal("1E+2"), "100"),  # positional: the server reads no exponent
        (Decimal("1E-7"), "0.0000001"),
        (Decimal("-0E-3"), "-0.000"),
        (datetime.date(2010, 3, 5), "20100305"),
        (datetime.date(5, 1, 2), "00050102"),  # zero-padded year
        (datetime.datetime(2010, 3, 5, 7, 8, 9), "20100305070809"),
        (["a", "b c"], "a, b c"),
        (("x",), "x"),
        ([], ""),
        (["a", ""], "a, "),
        (None, ""),
        (b"\xff", b"\xff"),  # raw bytes (an undecodable column) are written back as they are
    ],
)
def test_encodings(value: object, stored: object) -> None:
    assert to_db(value) == stored


def test_nan_is_stored_as_the_server_reads_it() -> None:
    assert to_db(math.nan) == "nan"


def test_microseconds_are_refused_unless_truncation_is_chosen() -> None:
    moment = datetime.datetime(2010, 1, 2, 3, 4, 5, 678)
    with pytest.raises(ValueError, match="truncate_microseconds"):
        to_db(moment)
    assert to_db(moment, truncate_microseconds=True) == "20100102030405"


def test_aware_datetimes_are_refused_unless_utc_is_chosen() -> None:
    tz = datetime.timezone(datetime.timedelta(hours=2))
    moment = datetime.datetime(2010, 1, 2, 3, 4, 5, tzinfo=tz)
    with pytest.raises(ValueError, match="utc_datetimes"):
        to_db(moment)
    assert to_db(moment, utc_datetimes=True) == "20100102010405"


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (["a, b"], ValueError, "separator"),
        ([""], ValueError, "empty string"),
        ([1, 2], TypeError, "must be a str"),
        ({"a": 1}, ConverterNotFound, "dict"),
        (object(), ConverterNotFound, "object"),
        ({1, 2}, ConverterNotFound, "set"),
    ],
)
def test_values_that_cannot_be_stored_faithfully_are_refused(
    value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        to_db(value)


@pytest.mark.parametrize(
    ("datatype", "raw", "value"),
    [
        (str, "x", "x"),
        (int, "-7", -7),
        (float, "0.333333333333", 0.333333333333),  # Python 2 str(): 12 digits
        (float, "1e+20", 1e20),
        (float, "100000000000000000000", 1e20),
        (bool, "1", True),
        (bool, "0", False),
        (bool, "yes", True),  # the old reading: anything but "0"/"" is True
        (Decimal, "1.50", Decimal("1.50")),
        (Decimal, "1E+2", Decimal("1E+2")),  # as the Python 2 library wrote it
        (Decimal, "1E-7", Decimal("1E-7")),
        (Decimal, "Infinity", Decimal("Infinity")),
        (datetime.date, "00050102", datetime.date(5, 1, 2)),
        (datetime.datetime, "20100305070809", datetime.datetime(2010, 3, 5, 7, 8, 9)),
        (datetime.datetime, "20100305", datetime.datetime(2010, 3, 5)),
        (list, "a, b c", ["a", "b c"]),
        (list, "a,b", ["a,b"]),
        (list, "a, ", ["a", ""]),
        # the core's rules, applied before any converter runs (rows 1 and 2)
        (int, None, None),
        (str, "", ""),
        (list, "", []),
        (bool, "", None),
        (datetime.date, "", None),
    ],
)
def test_reading(datatype: type, raw: object, value: object) -> None:
    assert from_db(datatype, raw) == value


@pytest.mark.parametrize(
    ("datatype", "raw"),
    [
        (int, "abc"),
        (int, "1.5"),
        (float, "x"),
        (Decimal, "x"),
        (datetime.date, "2010-03-05"),
        (datetime.date, "201003"),
        (datetime.date, "20101305"),
        (datetime.datetime, "2010030507080"),
        (str, b"\xff\xfe"),  # a column that is not valid UTF-8
        (int, b"\xff"),
    ],
)
def test_unreadable_values_raise_value_errors(datatype: type, raw: object) -> None:
    with pytest.raises((ValueError, ArithmeticError)):
        from_db(datatype, raw)


texts = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)))


@given(st.integers())
def test_ints_round_trip(value: int) -> None:
    assert from_db(int, to_db(value)) == value


@given(st.floats(allow_nan=False))
def test_floats_round_trip_exactly(value: float) -> None:
    stored = to_db(value)
    assert isinstance(stored, str) and "e" not in stored.lower().replace("inf", "")
    assert from_db(float, stored) == value
    assert math.copysign(1, from_db(float, stored)) == math.copysign(1, value)  # type: ignore[arg-type]


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_decimals_round_trip_exactly(value: Decimal) -> None:
    # (the exact rules, and what a positive exponent reads back as: test_decimals.py)
    read = from_db(Decimal, to_db(value))
    assert read == value and read.is_signed() == value.is_signed()


@given(st.dates())
def test_dates_round_trip(value: datetime.date) -> None:
    assert from_db(datetime.date, to_db(value)) == value


@given(st.datetimes().map(lambda d: d.replace(microsecond=0)))
def test_datetimes_round_trip(value: datetime.datetime) -> None:
    assert from_db(datetime.datetime, to_db(value)) == value


@given(st.lists(texts.filter(lambda t: ", " not in t)).filter(lambda items: items != [""]))
def test_lists_round_trip(items: list[str]) -> None:
    assert from_db(list, to_db(items)) == items


@given(texts)
def test_text_round_trips(value: str) -> None:
    assert from_db(str, to_db(value)) == value
