"""How pyrant turned Python values into request bytes, on Python 3.

pyrant ran on Python 2, where ``str`` was bytes and ``unicode`` text; it sent
text as UTF-8 and anything else through ``str()``. These helpers give the same
bytes from Python 3 values, with two corrections: floats keep every digit
(Python 2's ``str()`` kept 12), and numbers in query expressions never use an
exponent (the server reads ``1e+16`` as 1).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

__all__ = ["is_iterable", "text", "wire", "query_text", "is_int_like"]


def is_iterable(value: object) -> bool:
    """Python 2's ``hasattr(value, '__iter__')``: true for containers and
    iterators, false for text and byte strings."""
    return hasattr(value, "__iter__") and not isinstance(value, (str, bytes, bytearray))


def text(value: Any) -> str:
    """``unicode(value)`` as Python 2 pyrant computed it (floats exact)."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return str(value)


def wire(value: Any) -> bytes:
    """The bytes pyrant sent for ``value`` inside a list of arguments."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8")


def _number_text(value: float | Decimal) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    shown = str(value)
    if "e" in shown or "E" in shown:
        if isinstance(value, Decimal) and not value.is_finite():
            return shown
        return format(Decimal(shown), "f")
    return shown


def query_text(value: Any) -> str | bytes:
    """A condition expression as pyrant formatted it (``'%s' % value``), numbers
    in plain decimal notation."""
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (float, Decimal)):
        return _number_text(value)
    return text(value)


def is_int_like(value: object) -> bool:
    """Python 2's ``int(value)`` succeeds (used to tell numeric expressions)."""
    if isinstance(value, (str, bytes)) and ("_" in value if isinstance(value, str)
                                           else b"_" in value):
        return False  # Python 3 reads "1_000"; Python 2 did not
    try:
        int(value)  # type: ignore[call-overload]
    except (ValueError, TypeError, OverflowError):
        return False
    return True
