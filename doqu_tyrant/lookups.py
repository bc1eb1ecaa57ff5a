"""Query lookups (``field__lookup=value``) compiled to native Tyrant conditions.

The field's **declared type** decides how a condition compares (numbers and
dates numerically, everything else as text) and how its value is encoded --
with the same encoders used for storage (:mod:`doqu_tyrant.converters`).
A structure-less document class (or an undeclared field) falls back to the
type of the value. Every lookup also works under ``where_not``, which keeps
exactly the records the condition does not match (records lacking the column
included). An unknown lookup raises :class:`doqu.lookups.UnknownLookup`
naming it; a value that cannot be encoded raises ``TypeError``/``ValueError``
before anything is sent.

Kinds: *numeric* = ``int``, ``float``, ``Decimal``, ``bool`` (``1``/``0``),
``date`` (``YYYYMMDD``), ``datetime`` (``YYYYMMDDHHMMSS``); *list* = ``list``
(items joined by ``", "``); *text* = ``str``, references (the primary key)
and any other type.

==================  =========================================================
lookup              Tyrant condition
==================  =========================================================
``equals``          numeric: ``NUMEQ v``; text/list: ``STREQ v``;
(default)           ``bool``: True → ``STRRX ^([^0]|0.)`` (set, not "0"),
                    False → ``STREQ 0``; ``None`` → ``!STRRX .`` (column
                    missing or empty)
``exists``          True → ``STRRX ""`` (the record has the column, even
                    empty); False → ``!STRRX ""`` (it lacks the column)
``gt`` ``gte``      ``NUMGT`` ``NUMGE`` ``NUMLT`` ``NUMLE`` ``v`` (text
``lt`` ``lte``      fields: the value must be a number)
``between``         ``NUMBT "low high"`` (both inclusive; low > high matches
                    nothing)
``in``              numeric: ``NUMOREQ "a b …"``; text: ``STROREQ "a,b,…"``
                    when every item is a plain token, otherwise ``STRRX
                    ^(a|b c|…)$`` with the items escaped, so items holding
                    spaces or commas match exactly; ``[]`` matches nothing
``contains``        text: ``STRINC v``; a list of values: every one as a
                    whole token (``STRAND``); list fields: the item is one
                    of the list's items (``STRRX (^|, )v(, |$)``)
``contains_any``    text: ``STROR "a,b"`` (any whole token); list fields:
                    any item (``STRRX (^|, )(a|b)(, |$)``)
``startswith``      ``STRBW v``
``endswith``        ``STREW v``
``like``            ``FTSPH v`` (full-text phrase: case- and accent-
                    insensitive substring); a list: ``FTSEX`` of all phrases
``like_any``        ``FTSEX "a" || "b"`` (any phrase)
``matches``         ``STRRX`` regex: POSIX extended, C locale (``.`` is one
                    byte); common Python syntax is translated (``\\d``,
                    ``(?:…)``, ``(?i)``, lazy quantifiers); a leading ``*``
                    is the server's case-insensitive flag. An expression the
                    C library rejects, or backreferences and expansions it
                    would run at a ruinous cost, raise
                    :class:`~doqu_tyrant.tyrant.regex.RegexError` (a
                    ``ValueError``) when the condition is built
``search``          ``FTSEX v`` (full-text expression: ``a b`` = both,
                    ``a || b``, ``a !! b``, ``"a phrase"``)
``year``            ``STRBW YYYY`` (date/datetime fields)
``month``           ``STRRX ^[0-9]{4}MM``
``day``             ``STRRX ^[0-9]{6}DD``
==================  =========================================================

Numeric conditions read an empty or missing column as 0 on the server; when
0 itself would match (``age__lt=5``, ``born__lt=date(...)``, ``n__in=[0]``)
the condition also requires a non-empty column (``STRRX .``), so unset
fields never match a comparison -- and ``where_not`` keeps them.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from doqu.backend_base import Lookup, LookupManager
from doqu.document import Document
from doqu.utils import normalize_key
from doqu_tyrant.conditions import FALSE, Filter, all_of, any_of, cond
from doqu_tyrant.converters import (
    converter_manager,
    date_to_text,
    datetime_to_text,
    list_to_text,
    number_to_text,
)
from doqu_tyrant.tyrant.query import Op
from doqu_tyrant.tyrant.regex import RegexError, check_strrx

__all__ = ["lookup_manager", "posix_regex", "escape_regex"]

lookup_manager = LookupManager()

NUMERIC_KINDS = frozenset({"number", "bool", "date", "datetime"})
#: The name that stands for the primary key in conditions and orders.
PK_FIELD = "pk"
_NONEMPTY = "."
_BOOL_TRUE = "^([^0]|0.)"
# Bytes the server treats as token separators (ops STRAND/STROR/STROREQ).
_SEPARATOR_CLASS = "[,\x01- ]"
_REGEX_SPECIAL = frozenset("\\^$.|?*+()[]{}")


# -- kinds and values --------------------------------------------------------------------


def kind_of_type(field_type: type) -> str:
    """How a declared type compares: number, bool, date, datetime, list, reference, text."""
    if issubclass(field_type, Document):
        return "reference"
    if issubclass(field_type, bool):
        return "bool"
    if issubclass(field_type, (int, float, Decimal)):
        return "number"
    if issubclass(field_type, datetime.datetime):
        return "datetime"
    if issubclass(field_type, datetime.date):
        return "date"
    if issubclass(field_type, (list, tuple)):
        return "list"
    return "text"


def kind_of_value(value: Any) -> str:
    """The kind a structure-less condition takes from its value."""
    if isinstance(value, Document):
        return "reference"
    if isinstance(value, (bool, int, float, Decimal, datetime.date, list, tuple)):
        return kind_of_type(type(value))
    return "text"


def _kind(lookup: Lookup, sample: Any) -> str:
    if lookup.field_type is not None:
        return kind_of_type(lookup.field_type)
    if lookup.field == PK_FIELD:
        return "key"
    return kind_of_value(sample)


def column_of(field: str, field_type: type | None) -> str:
    """The column a field is stored in: ``pk`` (unless the class declares a field
    of that name) is the primary key, the column ``""``."""
    return "" if field == PK_FIELD and field_type is None else field


def _check_text(text: str, lookup: Lookup) -> str:
    if "\0" in text:
        raise ValueError(f"{_where(lookup)}: the value {text!r} contains a NUL byte")
    return text


def _where(lookup: Lookup) -> str:
    return f"condition {lookup.field}__{lookup.operation}"


def _numeric_text(value: Any, lookup: Lookup) -> str:
    """A number, or text holding one, as decimal text the server reads."""
    if isinstance(value, (int, float, Decimal)):
        text = number_to_text(value)
    elif isinstance(value, str):
        try:
            text = number_to_text(Decimal(value.strip()))
        except InvalidOperation:
            raise TypeError(
                f"{_where(lookup)} compares numerically and needs a number, not {value!r}"
            ) from None
    else:
        raise TypeError(
            f"{_where(lookup)} compares numerically and needs a number, "
            f"not {type(value).__name__} {value!r}"
        )
    if text in ("nan", "-nan"):
        raise ValueError(f"{_where(lookup)}: NaN matches nothing; compare with a number")
    return text


def encode(lookup: Lookup, kind: str, value: Any) -> str:
    """``value`` as the column text a record of this ``kind`` would hold."""
    if kind in ("reference", "key"):
        if isinstance(value, Document):
            if value.pk is None:
                raise ValueError(f"{_where(lookup)}: the referenced document is not saved")
            return value.pk
        return _check_text(normalize_key(value), lookup)
    if kind in ("number", "bool"):
        return _numeric_text(value, lookup)
    if kind == "date":
        if isinstance(value, datetime.datetime):
            raise TypeError(
                f"{_where(lookup)}: the field holds dates, not datetimes; pass value.date()"
            )
        if isinstance(value, datetime.date):
            return date_to_text(value)
        return _digits(value, 8, lookup)
    if kind == "datetime":
        if isinstance(value, datetime.datetime):
            return datetime_to_text(value, lookup.storage)
        if isinstance(value, datetime.date):
            return date_to_text(value) + "000000"
        return _digits(value, 14, lookup)
    if kind == "list" and isinstance(value, (list, tuple)):
        return _check_text(list_to_text(value), lookup)
    if isinstance(value, str):
        return _check_text(value, lookup)
    if isinstance(value, Document):
        return encode(lookup, "reference", value)
    stored = converter_manager.to_db(value, lookup.storage)
    if not isinstance(stored, str):
        raise TypeError(f"{_where(lookup)}: cannot compare with {type(value).__name__}")
    return _check_text(stored, lookup)


def _digits(value: Any, size: int, lookup: Lookup) -> str:
    if isinstance(value, str) and len(value) == size and value.isascii() and value.isdigit():
        return value
    what = "date (YYYYMMDD)" if size == 8 else "datetime (YYYYMMDDHHMMSS)"
    raise TypeError(f"{_where(lookup)} needs a {what}, not {type(value).__name__} {value!r}")


def _items(lookup: Lookup) -> list[Any]:
    value = lookup.value
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(
            f"{_where(lookup)} needs a list of values, not {type(value).__name__} {value!r}"
        )
    return list(value)


def _is_token(text: str) -> bool:
    """Whether the server keeps ``text`` as one token (no comma, no byte <= 0x20)."""
    return bool(text) and not any(ch <= " " or ch == "," for ch in text)


def escape_regex(text: str) -> str:
    """``text`` as a POSIX extended regex matching it literally."""
    return "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in text)


def _alternation(texts: list[str]) -> str:
    return "(" + "|".join(escape_regex(t) for t in texts) + ")"


# -- python regex → POSIX ----------------------------------------------------------------

_CLASS_ESCAPES = {"d": "0-9", "w": "[:alnum:]_", "s": "[:space:]"}
_PLAIN_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}


def posix_regex(pattern: str | re.Pattern[str]) -> str:
    """Translate common Python regex syntax to the server's POSIX extended regex.

    ``\\d``/``\\D`` become bracket expressions (``\\w \\s \\b`` are understood by the
    server as they are), ``\\A``/``\\Z`` anchors, ``(?:`` a plain group, a leading
    ``(?i)`` or ``re.IGNORECASE`` the server's ``*`` flag; lazy quantifiers turn
    greedy (whether a match exists does not change). Lookarounds and other
    ``(?...)`` groups raise ``ValueError``. A pattern already in POSIX syntax
    passes unchanged.
    """
    ignore_case = False
    if isinstance(pattern, re.Pattern):
        ignore_case = bool(pattern.flags & re.IGNORECASE)
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise TypeError(f"a regex must be text, not {type(pattern).__name__}")
    if pattern.startswith("*"):  # already the server's case-insensitive flag
        ignore_case, pattern = True, pattern[1:]
    if pattern.startswith("(?i)"):
        ignore_case, pattern = True, pattern[4:]
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            i += 2
            if nxt in "dD":
                out.append("[^0-9]" if nxt == "D" else "[0-9]")
            elif nxt == "A":
                out.append("^")
            elif nxt in "Zz":
                out.append("$")
            elif nxt in _PLAIN_ESCAPES:
                out.append(_PLAIN_ESCAPES[nxt])
            else:
                out.append("\\" + nxt)
            continue
        if ch == "[":
            i, text = _bracket(pattern, i)
            out.append(text)
            continue
        if ch == "(" and pattern.startswith("(?", i):
            if not pattern.startswith("(?:", i):
                raise ValueError(
                    f"cannot run {pattern!r} on the server: {pattern[i:i + 4]!r}... groups "
                    "have no POSIX equivalent"
                )
            out.append("(")
            i += 3
            continue
        if ch == "?" and out and out[-1] in ("*", "+", "?", "}"):
            i += 1  # lazy quantifier: the same records match when it is greedy
            continue
        out.append(ch)
        i += 1
    result = "".join(out)
    if "\0" in result:
        raise ValueError("a regex must not contain a NUL byte")
    return ("*" if ignore_case else "") + result


def _bracket(pattern: str, start: int) -> tuple[int, str]:
    """Translate the set (``[...]``) at ``start``; return (index after it, POSIX text)."""
    i = start + 1
    negated = pattern.startswith("^", i)
    if negated:
        i += 1
    items: list[str] = []
    close = caret = dash = False
    first = True
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]":
            if not first:
                break
            close, first, i = True, False, i + 1
            continue
        first = False
        if pattern.startswith("[:", i):  # a POSIX class, as is
            end = pattern.find(":]", i + 2)
            if end < 0:
                raise ValueError(f"unterminated character class in {pattern!r}")
            items.append(pattern[i:end + 2])
            i = end + 2
            continue
        if ch == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            i += 2
            if nxt in _CLASS_ESCAPES:
                items.append(_CLASS_ESCAPES[nxt])
                continue
            if nxt in "DWS":
                raise ValueError(f"cannot translate \\{nxt} inside a set in {pattern!r}")
            ch = _PLAIN_ESCAPES.get(nxt, nxt)
            if ch == "-":
                dash = True
                continue
        else:
            i += 1
            if ch == "-" and (not items or pattern.startswith("]", i)):
                dash = True
                continue
        if ch == "]":
            close = True
        elif ch == "^":
            caret = True
        else:
            items.append(ch)
    else:
        raise ValueError(f"unterminated set in {pattern!r}")
    body = ("]" if close else "") + "".join(items) + ("^" if caret else "")
    if body == "^":
        return i + 1, "[^^]" if negated else "\\^"
    if dash:
        body = "-" + body if body.startswith("^") else body + "-"
    return i + 1, "[" + ("^" if negated else "") + body + "]"


# -- processors --------------------------------------------------------------------------


def _register(*names: str) -> Callable[[Callable[[Lookup], Filter]], Callable[[Lookup], Filter]]:
    return lookup_manager.register(*names)


def _column(lookup: Lookup) -> str:
    if "\0" in lookup.field:
        raise ValueError(f"field name {lookup.field!r} contains a NUL byte")
    return column_of(lookup.field, lookup.field_type)


def _nonempty(column: str) -> Filter:
    return cond(column, Op.STRRX, _NONEMPTY)


def _zero_guard(column: str, base: Filter, zero_matches: bool) -> Filter:
    """Numeric conditions read an empty column as 0: exclude empties when 0 would match."""
    return all_of(base, _nonempty(column)) if zero_matches else base


@_register("equals")
def _equals(lookup: Lookup) -> Filter:
    column, value = _column(lookup), lookup.value
    if value is None:
        return cond(column, Op.STRRX, _NONEMPTY, negated=True)
    kind = _kind(lookup, value)
    if kind == "bool" and isinstance(value, (bool, int)) and not isinstance(value, str):
        if value not in (0, 1):
            return FALSE
        return cond(column, Op.STRRX, _BOOL_TRUE) if value else cond(column, Op.STREQ, "0")
    if kind in NUMERIC_KINDS:
        text = encode(lookup, kind, value)
        return _zero_guard(column, cond(column, Op.NUMEQ, text), Decimal(text) == 0)
    return cond(column, Op.STREQ, encode(lookup, kind, value))


def _comparison(op: Op, zero_matches: Callable[[Decimal], bool]) -> Callable[[Lookup], Filter]:
    def processor(lookup: Lookup) -> Filter:
        column, value = _column(lookup), lookup.value
        if value is None:
            raise TypeError(f"{_where(lookup)}: cannot compare with None")
        kind = _kind(lookup, value)
        if kind in ("list", "reference"):
            raise TypeError(f"{_where(lookup)}: {kind} fields have no order to compare")
        text = encode(lookup, kind if kind in NUMERIC_KINDS else "number", value)
        return _zero_guard(column, cond(column, op, text), zero_matches(Decimal(text)))

    return processor


_register("gt")(_comparison(Op.NUMGT, lambda v: v < 0))
_register("gte")(_comparison(Op.NUMGE, lambda v: v <= 0))
_register("lt")(_comparison(Op.NUMLT, lambda v: v > 0))
_register("lte")(_comparison(Op.NUMLE, lambda v: v >= 0))


@_register("between")
def _between(lookup: Lookup) -> Filter:
    column = _column(lookup)
    bounds = _items(lookup)
    if len(bounds) != 2 or None in bounds:
        raise TypeError(f"{_where(lookup)} needs a (low, high) pair, not {lookup.value!r}")
    kind = _kind(lookup, bounds[0])
    if kind in ("list", "reference"):
        raise TypeError(f"{_where(lookup)}: {kind} fields have no order to compare")
    kind = kind if kind in NUMERIC_KINDS else "number"
    low, high = (encode(lookup, kind, bound) for bound in bounds)
    if Decimal(low) > Decimal(high):
        return FALSE
    base = cond(column, Op.NUMBT, f"{low} {high}")
    return _zero_guard(column, base, Decimal(low) <= 0 <= Decimal(high))


@_register("in")
def _in(lookup: Lookup) -> Filter:
    column = _column(lookup)
    values = _items(lookup)
    parts: list[Filter] = []
    if any(v is None for v in values):
        parts.append(cond(column, Op.STRRX, _NONEMPTY, negated=True))
        values = [v for v in values if v is not None]
    if values:
        kind = _kind(lookup, values[0])
        if kind == "bool" and all(isinstance(v, (bool, int)) for v in values):
            parts.extend(_equals(_with_value(lookup, v)) for v in dict.fromkeys(values))
        elif kind in NUMERIC_KINDS:
            texts = list(dict.fromkeys(encode(lookup, kind, v) for v in values))
            base = cond(column, Op.NUMOREQ, " ".join(texts))
            parts.append(_zero_guard(column, base, any(Decimal(t) == 0 for t in texts)))
        else:
            texts = list(dict.fromkeys(encode(lookup, kind, v) for v in values))
            if all(_is_token(t) for t in texts):
                parts.append(cond(column, Op.STROREQ, ",".join(texts)))
            elif texts == [""]:
                parts.append(cond(column, Op.STREQ, ""))
            else:
                filled = [t for t in texts if t]
                optional = "?" if len(filled) < len(texts) else ""
                parts.append(_regex(lookup, column, "^" + _alternation(filled) + optional + "$"))
    return any_of(*parts)


def _with_value(lookup: Lookup, value: Any) -> Lookup:
    return Lookup(lookup.field, lookup.operation, value, lookup.field_type, lookup.doc_class,
                  lookup.storage)


def _texts(lookup: Lookup, kind: str) -> list[str]:
    value = lookup.value
    values = [value] if isinstance(value, str) or not isinstance(value, Iterable) else \
        _items(lookup)
    item_kind = "text" if kind == "list" else kind
    return [
        _check_text(v, lookup) if isinstance(v, str) else encode(lookup, item_kind, v)
        for v in values
    ]


def _item_regex(texts: list[str]) -> str:
    body = escape_regex(texts[0]) if len(texts) == 1 else _alternation(texts)
    return "(^|, )" + body + "(, |$)"


def _token_regex(texts: list[str]) -> str:
    body = escape_regex(texts[0]) if len(texts) == 1 else _alternation(texts)
    return f"(^|{_SEPARATOR_CLASS}){body}({_SEPARATOR_CLASS}|$)"


@_register("contains")
def _contains(lookup: Lookup) -> Filter:
    column, value = _column(lookup), lookup.value
    kind = _kind(lookup, value) if lookup.field_type is not None else (
        "text" if isinstance(value, (list, tuple)) else kind_of_value(value))
    texts = _texts(lookup, kind)
    if kind == "list":
        return all_of(*(_regex(lookup, column, _item_regex([t])) for t in texts))
    if isinstance(value, str) or not isinstance(value, Iterable):
        return cond(column, Op.STRINC, texts[0])
    if not texts:
        return _nonempty(column)
    simple = [t for t in texts if _is_token(t)]
    parts = [cond(column, Op.STRAND, ",".join(simple))] if simple else []
    parts += [_regex(lookup, column, _token_regex([t])) for t in texts if not _is_token(t)]
    return all_of(*parts)


@_register("contains_any")
def _contains_any(lookup: Lookup) -> Filter:
    column = _column(lookup)
    kind = _kind(lookup, "") if lookup.field_type is not None else "text"
    texts = list(dict.fromkeys(_texts(lookup, kind)))
    if not texts:
        return FALSE
    if kind == "list":
        return _regex(lookup, column, _item_regex(texts))
    if all(_is_token(t) for t in texts):
        return cond(column, Op.STROR, ",".join(texts))
    return _regex(lookup, column, _token_regex(texts))


def _text_op(op: Op) -> Callable[[Lookup], Filter]:
    def processor(lookup: Lookup) -> Filter:
        column, value = _column(lookup), lookup.value
        if value is None:
            raise TypeError(f"{_where(lookup)}: needs a value, not None")
        if isinstance(value, str):
            return cond(column, op, _check_text(value, lookup))
        kind = _kind(lookup, value)
        return cond(column, op, encode(lookup, "text" if kind == "list" else kind, value))

    return processor


_register("startswith")(_text_op(Op.STRBW))
_register("endswith")(_text_op(Op.STREW))


def _phrase(text: str, lookup: Lookup) -> str:
    if '"' in text:
        raise ValueError(f"{_where(lookup)}: a phrase cannot contain a double quote: {text!r}")
    return f'"{text}"'


@_register("like")
def _like(lookup: Lookup) -> Filter:
    column, value = _column(lookup), lookup.value
    if isinstance(value, str):
        return cond(column, Op.FTSPH, _check_text(value, lookup))
    phrases = [_phrase(t, lookup) for t in _texts(lookup, "text")]
    if not phrases:
        return _nonempty(column)
    return cond(column, Op.FTSEX, " && ".join(phrases))


@_register("like_any")
def _like_any(lookup: Lookup) -> Filter:
    column, value = _column(lookup), lookup.value
    if isinstance(value, str):
        return cond(column, Op.FTSPH, _check_text(value, lookup))
    phrases = [_phrase(t, lookup) for t in _texts(lookup, "text")]
    if not phrases:
        return FALSE
    return cond(column, Op.FTSEX, " || ".join(phrases))


@_register("search")
def _search(lookup: Lookup) -> Filter:
    value = lookup.value
    if not isinstance(value, str):
        raise TypeError(f"{_where(lookup)} needs a full-text expression (text)")
    return cond(_column(lookup), Op.FTSEX, _check_text(value, lookup))


@_register("matches")
def _matches(lookup: Lookup) -> Filter:
    column = _column(lookup)
    expr = posix_regex(lookup.value)
    source = lookup.value.pattern if isinstance(lookup.value, re.Pattern) else lookup.value
    note = "" if expr == source else f" (translated from {source!r})"
    return _regex(lookup, column, expr, note)


def _regex(lookup: Lookup, column: str, expr: str, note: str = "") -> Filter:
    """A STRRX condition, refused here if the server's C library would reject
    the expression or run it at a ruinous cost (see :mod:`doqu_tyrant.tyrant.regex`)."""
    try:
        check_strrx(expr)
    except RegexError as exc:
        raise type(exc)(f"{_where(lookup)}: {exc}{note}", exc.pattern, exc.offset) from None
    return cond(column, Op.STRRX, expr)


@_register("exists")
def _exists(lookup: Lookup) -> Filter:
    return cond(_column(lookup), Op.STRRX, "", negated=not lookup.value)


def _date_part(name: str, low: int, high: int, build: Callable[[int], tuple[Op, str]]
               ) -> Callable[[Lookup], Filter]:
    def processor(lookup: Lookup) -> Filter:
        column, value = _column(lookup), lookup.value
        if lookup.field_type is not None and kind_of_type(lookup.field_type) not in (
            "date", "datetime"
        ):
            raise TypeError(f"{_where(lookup)}: {name} applies to date and datetime fields")
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{_where(lookup)} needs an int {name}, not {value!r}")
        if not low <= value <= high:
            raise ValueError(f"{_where(lookup)}: {name} must be {low}..{high}, not {value}")
        op, expr = build(value)
        return cond(column, op, expr)

    return processor


_register("year")(_date_part("year", 1, 9999, lambda v: (Op.STRBW, f"{v:04d}")))
_register("month")(_date_part("month", 1, 12, lambda v: (Op.STRRX, f"^[0-9]{{4}}{v:02d}")))
_register("day")(_date_part("day", 1, 31, lambda v: (Op.STRRX, f"^[0-9]{{6}}{v:02d}")))
