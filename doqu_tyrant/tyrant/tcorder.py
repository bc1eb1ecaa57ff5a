"""Tokyo Cabinet's sort orders as Python sort keys (no I/O).

Results sorted by several servers merge into the order one server would
give only if the merge compares exactly as Tokyo Cabinet does:

* text order (``STRASC``/``STRDESC``) compares the bytes (``memcmp``, then
  length): Python's ``bytes`` order, not ``str`` order;
* numeric order of a column (``NUMASC``/``NUMDESC``) reads a number the way
  the table sort does: leading bytes 1-32 skipped, an optional ``+`` or
  ``-``, ``inf`` and ``nan`` (any case), decimal digits, an optional ``.``
  and fraction (16 significant digits in all), anything else ends the
  number; no digits reads as 0. So ``"12abc"`` is 12, ``"1e3"`` is 1,
  ``" 7"`` and ``"007"`` are 7. Equal numbers are ties;
* numeric order of the primary key compares like the library's decimal
  comparison: leading bytes 0-32 and 127 skipped, an optional ``-`` (``+``
  is not a sign), the integer part as a wrapping 64-bit integer, then the
  fraction, and keys that are still equal by their bytes — a total order;
* records without the order column come last in both directions.

The keys below are exact (decimal, not binary floating point). Where Tokyo
Cabinet's ``long double`` arithmetic cannot tell two numbers apart (more than
about 19 significant digits) they are ties for the server and ordered here,
which is one of the orders the server could have given. ``nan``, which the
server cannot order, counts as larger than every number.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

__all__ = ["STRASC", "STRDESC", "NUMASC", "NUMDESC", "number_key", "decimal_key",
           "column_key", "pk_key"]

STRASC, STRDESC, NUMASC, NUMDESC = 0, 1, 2, 3

_FRACTION_DIGITS = 16
_ZERO = Decimal(0)
_INF = Decimal("Infinity")
_NEG_INF = Decimal("-Infinity")
_INT64 = 1 << 64
_INT63 = 1 << 63


def number_key(value: bytes) -> tuple[int, Any]:
    """The number the table sort reads from a column value, as a sort key."""
    if value.isdigit():
        return (0, int(value))
    n = len(value)
    i = 0
    while i < n and 0 < value[i] <= 32:
        i += 1
    negative = False
    if i < n and value[i] in (43, 45):  # + -
        negative = value[i] == 45
        i += 1
    head = value[i:i + 3].lower()
    if head == b"inf":
        return (0, _NEG_INF if negative else _INF)
    if head == b"nan":
        return (1, 0)
    j = i
    while j < n and 48 <= value[j] <= 57:
        j += 1
    whole = value[i:j]
    fraction = b""
    if j < n and value[j] == 46:  # .
        room = _FRACTION_DIGITS - len(whole.lstrip(b"0"))
        k = m = j + 1
        while m < n and m - k < room and 48 <= value[m] <= 57:
            m += 1
        fraction = value[k:m]
    if not fraction:
        number: Any = int(whole) if whole else 0
        return (0, -number if negative else number)
    text = (b"-" if negative else b"") + (whole or b"0") + b"." + fraction
    return (0, Decimal(text.decode("ascii")))


def decimal_key(value: bytes) -> tuple[int, Any, bytes]:
    """A primary key as the library's decimal comparison orders it (a total order)."""
    n = len(value)
    i = 0
    while i < n and (value[i] <= 32 or value[i] == 127):
        i += 1
    negative = i < n and value[i] == 45
    if negative:
        i += 1
    j = i
    while j < n and 48 <= value[j] <= 57:
        j += 1
    whole = int(value[i:j]) if j > i else 0
    if negative:
        whole = -whole
    whole = ((whole + _INT63) % _INT64) - _INT63
    fraction: Any = 0
    if j + 1 < n and value[j] == 46:
        k = m = j + 1
        while m < n and m - k < _FRACTION_DIGITS and 48 <= value[m] <= 57:
            m += 1
        if m > k:
            fraction = Decimal("0." + value[k:m].decode("ascii"))
            if negative:
                fraction = -fraction
    return (whole, fraction, value)


def column_key(kind: int) -> tuple[Callable[[bytes | None], Any], bool]:
    """``(key, reverse)`` sorting column values (None: the record lacks the
    column) in order ``kind`` with ``sorted(..., key=key, reverse=reverse)``
    or ``heapq.merge``; ties keep their input order."""
    if kind == STRASC:
        return (lambda v: (1, b"") if v is None else (0, v)), False
    if kind == STRDESC:
        return (lambda v: (0, b"") if v is None else (1, v)), True
    if kind == NUMASC:
        return (lambda v: (2, (0, 0)) if v is None else (0, number_key(v))), False
    if kind == NUMDESC:
        return (lambda v: (0, (0, 0)) if v is None else (1, number_key(v))), True
    raise ValueError(f"unknown order type {kind!r}")


def pk_key(kind: int) -> tuple[Callable[[bytes], Any], bool]:
    """``(key, reverse)`` sorting primary keys in order ``kind``."""
    if kind == STRASC:
        return (lambda v: v), False
    if kind == STRDESC:
        return (lambda v: v), True
    if kind == NUMASC:
        return decimal_key, False
    if kind == NUMDESC:
        return decimal_key, True
    raise ValueError(f"unknown order type {kind!r}")
