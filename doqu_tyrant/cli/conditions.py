"""``--where COLUMN__LOOKUP=VALUE`` arguments as native query conditions.

Values arrive as text. Lookups that compare numbers get numbers (a value
that is not one is refused, instead of the server reading it as 0), and
``between`` gets exactly two; everything else is checked by the client's
query builder, whose ``ValueError``/``TypeError`` becomes a usage error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from doqu_tyrant.tyrant.query import LOOKUPS, Op

from .status import EXIT_USAGE, CliError

__all__ = ["conditions", "parse_bool"]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
_SEPARATORS = re.compile(r"[,\s]+")
# Raw operator lookups (numgt=...) that take numbers: how many (None: one or more).
_RAW_NUMERIC = {int(Op.NUMEQ): 1, int(Op.NUMGT): 1, int(Op.NUMGE): 1, int(Op.NUMLT): 1,
                int(Op.NUMLE): 1, int(Op.NUMBT): 2, int(Op.NUMOREQ): None}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on", "y"):
        return True
    if lowered in ("0", "false", "no", "off", "n", ""):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _lookup(name: str) -> str:
    """The lookup part of ``column__lookup[__noidx]`` (``eq`` when there is none)."""
    column, sep, lookup = name.rpartition("__")
    if sep and lookup == "noidx":
        column, sep, lookup = column.rpartition("__")
    return lookup if sep else "eq"


def _number(text: str, item: str, option: str) -> Decimal:
    if not _NUMBER.match(text.strip()):
        raise CliError(f"{option} {item!r}: {text!r} is not a number", EXIT_USAGE)
    return Decimal(text.strip())


def _numbers(text: str, item: str, option: str, count: int | None) -> list[Decimal]:
    parts = [p for p in _SEPARATORS.split(text.strip()) if p] if text.strip() else []
    if count is not None and len(parts) != count:
        need = "one number" if count == 1 else f"{count} numbers, LOW,HIGH"
        raise CliError(f"{option} {item!r}: expected {need}, got {len(parts)}", EXIT_USAGE)
    if not parts:
        raise CliError(f"{option} {item!r}: expected numbers separated by commas", EXIT_USAGE)
    return [_number(p, item, option) for p in parts]


def _value(name: str, value: str, item: str, option: str) -> Any:
    lookup = _lookup(name)
    kind, op = LOOKUPS.get(lookup, ("", -1))
    if kind == "exists":
        try:
            return parse_bool(value)
        except ValueError as exc:
            raise CliError(f"{option} {item!r}: {exc}", EXIT_USAGE) from None
    if kind == "num":
        return _number(value, item, option)
    if kind == "between":
        return tuple(_numbers(value, item, option, 2))
    if kind == "raw" and op in _RAW_NUMERIC:
        numbers = _numbers(value, item, option, _RAW_NUMERIC[op])
        # the server's own notation: numbers separated by spaces or commas
        return ",".join(format(n, "f") for n in numbers) if op != Op.NUMBT else \
            " ".join(format(n, "f") for n in numbers)
    return value


def conditions(items: Sequence[str] | None, option: str) -> list[dict[str, Any]]:
    """One lookup keyword dict per ``COLUMN__LOOKUP=VALUE`` argument."""
    out: list[dict[str, Any]] = []
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep:
            raise CliError(
                f"{option} {item!r}: expected COLUMN[__LOOKUP]=VALUE, e.g. age__gt=30",
                EXIT_USAGE,
            )
        out.append({name: _value(name, value, item, option)})
    return out
