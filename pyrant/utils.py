"""pyrant's helpers for turning values into stored text and records back into
Python values."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from ._values import is_iterable
from .protocol import DB_TABLE, TABLE_COLUMN_SEP

__all__ = ["pairwise", "from_python", "to_python", "csv_to_dict"]


def pairwise(elems: Iterable[Any]) -> Iterator[tuple[Any, Any]]:
    """``[a, b, c, d]`` → ``(a, b), (c, d)`` (a generator); an odd last element
    is paired with None."""
    if not is_iterable(elems):
        raise AssertionError(f"expected an iterable, got {elems!r}")
    items = list(elems)
    if len(items) % 2:
        items.append(None)
    for i in range(0, len(items), 2):
        yield items[i], items[i + 1]


def from_python(value: Any) -> Any:
    """``value`` ready for storage: None → ``""``, True → 1, False → ``""``
    (so that ``bool()`` of the stored text gives the same truth value);
    anything else unchanged."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return 1 if value else ""
    return value


def _element(elem: Any, sep: Any) -> Any:
    if not elem:
        return elem
    if sep and sep in elem:
        return elem.split(sep)
    return elem


def to_python(value: Any, db_type: str, sep: Any = None) -> Any:
    """A stored value as Python data.

    For a table database (``db_type == "table"``) the serialised record
    ``name\\0value\\0...`` becomes a dict; anything else is returned as it is.
    With ``sep``, every (column) value containing it is split into a list.
    Works on text, and on bytes (``literal=True``) alike.
    """
    binary = isinstance(value, (bytes, bytearray))
    if binary and isinstance(sep, str):
        sep = sep.encode("utf-8")
    if db_type == DB_TABLE:
        elems = value.split(TABLE_COLUMN_SEP.encode() if binary else TABLE_COLUMN_SEP)
        if not elems or not elems[0]:
            return {}
        return {name: _element(v, sep) for name, v in pairwise(elems)}
    return _element(value, sep)


def csv_to_dict(lines: str) -> dict[str, str]:
    """STAT's ``name<TAB>value`` lines as a dict."""
    return dict(line.split("\t", 1) for line in lines.splitlines() if line)  # type: ignore[misc]
