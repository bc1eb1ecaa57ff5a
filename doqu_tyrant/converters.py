"""Python values ↔ Tyrant column text, in the format the Python 2 doqu wrote.

Every column of a Tyrant table record is a UTF-8 string. Values are written
as (see ``shared/compat/storage-format.md``):

=====================  ========================================================
Python value           stored text
=====================  ========================================================
``str``                the text (no NUL byte)
``int``                ``str(n)``: ``-7``
``float``              shortest exact digits, positional: ``0.1``, ``1e+20`` →
                       ``100000000000000000000`` (the server reads no exponents)
``bool``               ``1`` / ``0``
``Decimal``            positional digits keeping the places given: ``1.50``,
                       ``1E-7`` → ``0.0000001``, ``1E+2`` → ``100`` (reads
                       back as ``Decimal("100")``); NaN and infinities refused
``date``               ``YYYYMMDD`` (zero-padded year)
``datetime``           ``YYYYMMDDHHMMSS``; microseconds and time zones refused
                       unless the storage opts in (``truncate_microseconds``,
                       ``utc_datetimes``)
``list`` / ``tuple``   items (text) joined by ``", "``; ``[]`` → ``""``
``None``               ``""`` (the column is still written), :data:`UNSET`;
                       left out where the column has a lexical/decimal index
``bytes``              written unchanged (round-trips columns that are not
                       valid UTF-8)
=====================  ========================================================

Reading is lenient where the old library was: floats of any precision,
Decimals in any form ``Decimal()`` reads (the Python 2 library wrote
``str(d)``, e.g. ``1E+2``), booleans ``"0"`` → False and anything else →
True, lists split on ``", "``.
The doqu core maps a missing column to ``None`` and ``""`` to ``None`` (text
stays ``""``, lists become ``[]``) before these readers run. A reader raises
``ValueError`` for text it cannot read (the document then keeps the raw value
with a warning), including a column that is not valid UTF-8 (``bytes``).
"""

from __future__ import annotations

import datetime
import math
from decimal import Decimal
from typing import Any

from doqu.backend_base import ConverterManager

__all__ = [
    "IDENTITY_TO_DB",
    "LIST_SEPARATOR",
    "TEXT_TO_DB",
    "UNSET",
    "converter_manager",
    "date_to_text",
    "datetime_to_text",
    "decimal_to_text",
    "float_to_text",
    "list_to_text",
    "number_to_text",
]

#: How list items are joined in one column (and split when read).
LIST_SEPARATOR = ", "
#: How far from the decimal point a Decimal's first digit may be
#: (``Decimal("1E+999999")`` would be written as a million digits).
MAX_DECIMAL_TEXT = 4096

converter_manager = ConverterManager()


# -- writing -----------------------------------------------------------------------------


def float_to_text(value: float) -> str:
    """Shortest text that reads back as exactly ``value``, without an exponent."""
    text = repr(value)
    if "e" not in text and "n" not in text:  # the common case: not nan, inf or 1e+20
        return text
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text


def decimal_to_text(value: Decimal) -> str:
    """A finite Decimal as positional digits, keeping every decimal place it has.

    Tokyo Cabinet reads numbers without an exponent (``1E+2`` is 1 to the
    server), so ``Decimal("1E-7")`` is written ``0.0000001`` and reads back
    identical (same digits and exponent). A positive exponent has no
    positional form: ``Decimal("1E+2")`` is written ``100`` and reads back as
    ``Decimal("100")`` -- equal, with the same value, sign and hash, but
    exponent 0. NaN and infinities are refused: the server can neither
    compare nor order them as numbers; so is a Decimal whose first digit is
    more than :data:`MAX_DECIMAL_TEXT` places from the decimal point.
    """
    if value.__class__ is Decimal and value.is_finite():
        # str() is positional exactly when format(value, "f") has the same text (an
        # exponent <= 0 and adjusted() >= -6), and is twice as fast.
        text = str(value)
        if "E" not in text and len(text) < MAX_DECIMAL_TEXT:
            return text
    if value.is_finite() and -MAX_DECIMAL_TEXT < value.adjusted() < MAX_DECIMAL_TEXT:
        return format(value, "f")
    if not value.is_finite():
        raise ValueError(
            f"cannot store Decimal({str(value)!r}): only finite Decimals are stored (the "
            "server's numeric conditions and order cannot read NaN or infinity); store None "
            "for a missing value"
        )
    raise ValueError(
        f"cannot store the Decimal {str(value)[:40]!r}: written without an exponent it would "
        f"need {abs(value.adjusted())} digits of zeros (at most {MAX_DECIMAL_TEXT})"
    )


def number_to_text(value: Any) -> str:
    """A number as the server's numeric conditions read it (no exponent)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return float_to_text(value)
    if isinstance(value, Decimal):
        if value.is_nan():
            return "nan"
        if value.is_infinite():
            return "inf" if value > 0 else "-inf"
        return decimal_to_text(value)
    raise TypeError(f"not a number: {value!r}")


def date_to_text(value: datetime.date) -> str:
    """``YYYYMMDD``; also the date part of a datetime."""
    # (``%`` formatting of one number: faster than isoformat() or an f-string)
    return "%08d" % (value.year * 10000 + value.month * 100 + value.day)  # noqa: UP031


def datetime_to_text(value: datetime.datetime, storage: Any = None) -> str:
    """``YYYYMMDDHHMMSS``; refuses what the format cannot hold unless ``storage`` opts in.

    ``storage.truncate_microseconds`` drops sub-second precision;
    ``storage.utc_datetimes`` stores aware datetimes converted to UTC (they
    read back naive, in UTC).
    """
    if value.tzinfo is not None and value.utcoffset() is not None:
        if not getattr(storage, "utc_datetimes", False):
            raise ValueError(
                f"cannot store the time-zone aware datetime {value!r}: the format has no "
                "zone; convert it to a naive datetime, or set utc_datetimes=True in the "
                "storage settings to store it as UTC"
            )
        value = value.astimezone(datetime.timezone.utc)
    if value.microsecond and not getattr(storage, "truncate_microseconds", False):
        raise ValueError(
            f"cannot store {value!r} faithfully: the format holds whole seconds only; "
            "drop the microseconds (value.replace(microsecond=0)) or set "
            "truncate_microseconds=True in the storage settings"
        )
    return (
        f"{value.year:04d}{value.month:02d}{value.day:02d}"
        f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
    )


def list_to_text(value: list[Any] | tuple[Any, ...]) -> str:
    """Items joined by ``", "``; refuses items that would not split back the same."""
    if value.__class__ is list or value.__class__ is tuple:
        if not value:
            return ""
        # The common case, checked in bulk: text items, none holding the separator
        # (no separator can straddle two items), not a lone "".
        try:
            text = LIST_SEPARATOR.join(value)
        except TypeError:
            pass
        else:
            if text.count(LIST_SEPARATOR) == len(value) - 1 and text:
                return text
    items = list(value)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(
                f"list item {index} is {type(item).__name__} {item!r}: lists are stored as "
                "text items joined by ', ', so every item must be a str"
            )
        if LIST_SEPARATOR in item:
            raise ValueError(
                f"list item {index} {item!r} contains ', ', the item separator: it would "
                "read back as several items"
            )
    if items == [""]:
        raise ValueError("a list holding one empty string cannot be stored: it reads back as []")
    return LIST_SEPARATOR.join(items)


class _Unset(str):
    """The text of an unset field: ``""``, as the Python 2 library wrote it, but
    told apart from an empty text by identity (see :data:`UNSET`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "''"


#: What ``None`` converts to: equal to ``""``, so it is written as an empty column,
#: but recognisable (``value is UNSET``) so that the backend can leave the column
#: out where the server cannot index an empty value (a lexical or decimal index).
UNSET: str = _Unset()


@converter_manager.to_db(type(None))
def _none_to_db(value: None, storage: Any) -> str:
    return UNSET


@converter_manager.to_db(str)
def _str_to_db(value: str, storage: Any) -> str:
    return value if type(value) is str else str.__str__(value)


@converter_manager.to_db(bytes)
def _bytes_to_db(value: bytes, storage: Any) -> bytes:
    return value


@converter_manager.to_db(bool)
def _bool_to_db(value: bool, storage: Any) -> str:
    return "1" if value else "0"


@converter_manager.to_db(int)
def _int_to_db(value: int, storage: Any) -> str:
    return str(value) if value.__class__ is int else str(int(value))


@converter_manager.to_db(float)
def _float_to_db(value: float, storage: Any) -> str:
    if value.__class__ is float:
        text = repr(value)
        if "e" not in text and "n" not in text:  # what float_to_text does first, inline
            return text
    return float_to_text(float(value))


@converter_manager.to_db(Decimal)
def _decimal_to_db(value: Decimal, storage: Any) -> str:
    return decimal_to_text(value)


@converter_manager.to_db(datetime.date)
def _date_to_db(value: datetime.date, storage: Any) -> str:
    return date_to_text(value)


@converter_manager.to_db(datetime.datetime)
def _datetime_to_db(value: datetime.datetime, storage: Any) -> str:
    return datetime_to_text(value, storage)


@converter_manager.register_to_db(list, tuple)
def _list_to_db(value: list[Any], storage: Any) -> str:
    return list_to_text(value)


#: Stock converters that hand a value of exactly their class back unchanged (its
#: text is itself), and the other stock converters, which always return ``str``
#: (see :mod:`doqu_tyrant.encoder`).
IDENTITY_TO_DB = frozenset({_str_to_db})
TEXT_TO_DB = frozenset({_none_to_db, _bool_to_db, _int_to_db, _float_to_db, _decimal_to_db,
                        _date_to_db, _datetime_to_db, _list_to_db})

#: Stock converters as Python statements, for a value of exactly the class given
#: (the generated encoder writes them out instead of calling the converter):
#: ``{v}`` is the value, ``{t}`` the text to set, ``{c}`` the converter itself,
#: called for the uncommon values (an exponent, a NaN, an item holding the
#: separator), so that every statement gives what the converter returns.
INLINE_TO_DB: dict[Any, tuple[type, tuple[str, ...]]] = {
    _bool_to_db: (bool, ("{t} = '1' if {v} else '0'",)),
    _int_to_db: (int, ("{t} = str({v})",)),
    _float_to_db: (float, ("{t} = repr({v})",
                           "if 'e' in {t} or 'n' in {t}: {t} = {c}({v}, storage)")),
    # a finite Decimal's str() holds only digits, '.', '-' and an exponent's 'E+'
    _decimal_to_db: (Decimal, ("{t} = str({v})",
                               "if 'E' in {t} or 'N' in {t} or 'I' in {t} or "
                               f"len({{t}}) >= {MAX_DECIMAL_TEXT}: {{t}} = {{c}}({{v}}, storage)")),
    _date_to_db: (datetime.date,
                  ("{t} = '%08d' % ({v}.year * 10000 + {v}.month * 100 + {v}.day)",)),
    _list_to_db: (list, (f"{{t}} = {LIST_SEPARATOR!r}.join({{v}}) if {{v}} else ''",
                         f"if {{v}} and ({{t}}.count({LIST_SEPARATOR!r}) != len({{v}}) - 1 "
                         "or not {t}): {t} = {c}({v}, storage)")),
}


# -- reading -----------------------------------------------------------------------------


def _text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, (bytes, bytearray)):
        raise ValueError("the column is not valid UTF-8")
    raise TypeError(f"expected stored text, got {type(raw).__name__}")


@converter_manager.from_db(str)
def _str_from_db(raw: Any, storage: Any) -> str:
    return raw if raw.__class__ is str else _text(raw)


@converter_manager.from_db(int)
def _int_from_db(raw: Any, storage: Any) -> int:
    return int(raw if raw.__class__ is str else _text(raw))


@converter_manager.from_db(float)
def _float_from_db(raw: Any, storage: Any) -> float:
    return float(raw if raw.__class__ is str else _text(raw))


@converter_manager.from_db(bool)
def _bool_from_db(raw: Any, storage: Any) -> bool:
    return (raw if raw.__class__ is str else _text(raw)) != "0"


@converter_manager.from_db(Decimal)
def _decimal_from_db(raw: Any, storage: Any) -> Decimal:
    return Decimal(raw if raw.__class__ is str else _text(raw))


_date_from_digits = datetime.date.fromisoformat  # reads YYYYMMDD from Python 3.11 on


def _digits(raw: Any, sizes: tuple[int, ...], what: str) -> str:
    text = raw if raw.__class__ is str else _text(raw)
    if len(text) not in sizes or not text.isascii() or not text.isdigit():
        raise ValueError(f"not a {what}")
    return text


@converter_manager.from_db(datetime.date)
def _date_from_db(raw: Any, storage: Any) -> datetime.date:
    if raw.__class__ is str and len(raw) == 8 and raw.isascii() and raw.isdigit():
        text = raw  # what _digits checks, inline
    else:
        text = _digits(raw, (8,), "YYYYMMDD date")
    try:
        return _date_from_digits(text)  # the ISO basic format, parsed in C
    except ValueError:  # refused: let the constructor say why
        return datetime.date(int(text[:4]), int(text[4:6]), int(text[6:8]))


@converter_manager.from_db(datetime.datetime)
def _datetime_from_db(raw: Any, storage: Any) -> datetime.datetime:
    text = _digits(raw, (14, 8), "YYYYMMDDHHMMSS datetime")
    if len(text) == 8:  # a date written into a datetime column: midnight
        return datetime.datetime(int(text[:4]), int(text[4:6]), int(text[6:8]))
    return datetime.datetime(
        int(text[:4]), int(text[4:6]), int(text[6:8]),
        int(text[8:10]), int(text[10:12]), int(text[12:14]),
    )


@converter_manager.from_db(list)
def _list_from_db(raw: Any, storage: Any) -> list[str]:
    return (raw if raw.__class__ is str else _text(raw)).split(LIST_SEPARATOR)


@converter_manager.from_db(tuple)
def _tuple_from_db(raw: Any, storage: Any) -> tuple[str, ...]:
    return tuple(_text(raw).split(LIST_SEPARATOR))
