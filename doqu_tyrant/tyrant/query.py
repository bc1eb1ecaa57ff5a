"""Native table queries: lazy, immutable, one round trip per result.

Build a query from the client and refine it; every method returns a new
query and nothing is sent until a result is asked for::

    q = t.query.filter(city="Tokyo", age__gte=18).exclude(name__startswith="x")
    q = q.order_by("-age", numeric=True)[:10]
    q.keys()      # ['u3', 'u1', ...]        one "search"
    q.items()     # [('u3', {...}), ...]     one "search" with "get"
    q.count()     # 12                       one "search" with "count"
    q.delete()    # 12                       one "search" with "out"
    (q1 | q2).order_by("name").keys()        # one "metasearch"

The lookup names are listed in :class:`BaseQuery`.

Bad input — an unknown lookup, a NUL byte, a value of the wrong type, a
negative or absurd limit — raises ``ValueError``/``TypeError`` before
anything is sent.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import AsyncGenerator, Generator, Iterable, Iterator
from decimal import Decimal
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar

from . import commands as c
from . import protocol as p
from .errors import TyrantCommandError
from .indexes import note_hint
from .kinds import require_table
from .regex import RegexError, check_strrx

if TYPE_CHECKING:
    from .aio import AsyncTyrant
    from .client import Tyrant

__all__ = [
    "PK",
    "Op",
    "Order",
    "SetOp",
    "NEGATE",
    "NOIDX",
    "BaseQuery",
    "Query",
    "AsyncQuery",
    "LOOKUPS",
]

#: The primary key's column name in conditions, orders and column lists.
PK = ""


class Op(IntEnum):
    """Condition operators (spec §6.5.2)."""

    STREQ = 0
    STRINC = 1
    STRBW = 2
    STREW = 3
    STRAND = 4
    STROR = 5
    STROREQ = 6
    STRRX = 7
    NUMEQ = 8
    NUMGT = 9
    NUMGE = 10
    NUMLT = 11
    NUMLE = 12
    NUMBT = 13
    NUMOREQ = 14
    FTSPH = 15
    FTSAND = 16
    FTSOR = 17
    FTSEX = 18


class Order(IntEnum):
    """Order types (spec §6.5.3)."""

    STRASC = 0
    STRDESC = 1
    NUMASC = 2
    NUMDESC = 3


class SetOp(IntEnum):
    """How a metasearch combines its sub-queries (spec §6.5.6)."""

    UNION = 0
    ISECT = 1
    DIFF = 2


NEGATE = 1 << 24
NOIDX = 1 << 25

# Operator names the server accepts in text form (spec §6.5.2).
_OP_NAMES: dict[str, int] = {
    "STREQ": 0, "STR": 0, "EQ": 0, "STRINC": 1, "INC": 1, "STRBW": 2, "BW": 2,
    "STREW": 3, "EW": 3, "STRAND": 4, "AND": 4, "STROR": 5, "OR": 5, "STROREQ": 6,
    "OREQ": 6, "STRRX": 7, "RX": 7, "NUMEQ": 8, "NUM": 8, "=": 8, "==": 8, "NUMGT": 9,
    ">": 9, "NUMGE": 10, ">=": 10, "NUMLT": 11, "<": 11, "NUMLE": 12, "<=": 12,
    "NUMBT": 13, "NUMOREQ": 14, "FTSPH": 15, "FTS": 15, "FTSAND": 16, "FTSOR": 17,
    "FTSEX": 18,
}

# lookup name -> (value kind, operator); operator -1 = chosen by value type.
LOOKUPS: dict[str, tuple[str, int]] = {
    "eq": ("eq", -1), "exact": ("eq", -1),
    "contains": ("text", Op.STRINC), "startswith": ("text", Op.STRBW),
    "endswith": ("text", Op.STREW),
    "all": ("tokens", Op.STRAND), "any": ("tokens", Op.STROR), "in": ("in", -1),
    "regex": ("text", Op.STRRX), "iregex": ("iregex", Op.STRRX),
    "gt": ("num", Op.NUMGT), "gte": ("num", Op.NUMGE), "ge": ("num", Op.NUMGE),
    "lt": ("num", Op.NUMLT), "lte": ("num", Op.NUMLE), "le": ("num", Op.NUMLE),
    "between": ("between", Op.NUMBT),
    "search": ("text", Op.FTSPH), "phrase": ("text", Op.FTSPH), "fts": ("text", Op.FTSPH),
    "search_all": ("words", Op.FTSAND), "fts_all": ("words", Op.FTSAND),
    "search_any": ("words", Op.FTSOR), "fts_any": ("words", Op.FTSOR),
    "search_expr": ("text", Op.FTSEX), "fts_expr": ("text", Op.FTSEX),
    "fts_ex": ("text", Op.FTSEX),
    "exists": ("exists", Op.STRRX),
}
LOOKUPS.update({op.name.lower(): ("raw", int(op)) for op in Op})

_INT32_MAX = (1 << 31) - 1
_OUTLIST_CHUNK = 100_000

Condition = tuple[bytes, int, bytes]  # column, operator with flags, expression
Q = TypeVar("Q", bound="BaseQuery")


# ---------------------------------------------------------------------------
# Values


def _text(value: object, what: str) -> bytes:
    data = c.to_bytes(value, what)
    if b"\0" in data:
        raise ValueError(f"{what} contains a NUL byte")
    return data


def _number(value: object, what: str) -> bytes:
    if isinstance(value, bool):
        raise TypeError(f"{what}: a bool is not a number here; use 0/1 or '0'/'1'")
    if isinstance(value, int):
        return b"%d" % value  # not str(): an IntEnum's str() is its name on 3.10
    if isinstance(value, float):
        if math.isnan(value):
            return b"nan"
        if math.isinf(value):
            return b"inf" if value > 0 else b"-inf"
        text = repr(value)
        if "e" in text or "E" in text:  # the server does not read exponents
            text = format(Decimal(text), "f")
        return text.encode()
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value).lower().encode()
        return format(value, "f").encode()
    raise TypeError(f"{what} must be a number, str or bytes, not {type(value).__name__}")


def _scalar(value: object, what: str) -> bytes:
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return _text(value, what)
    return _number(value, what)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _token(value: object, what: str) -> bytes:
    data = _scalar(value, what)
    if not data:
        raise ValueError(f"{what}: an empty token cannot be matched")
    if any(b <= 0x20 or b == 0x2C for b in data):
        raise ValueError(
            f"{what}: token {data!r} contains a comma or whitespace, which the server "
            "treats as a token separator"
        )
    return data


def _token_list(value: object, what: str, sep: bytes = b",") -> bytes:
    if isinstance(value, (str, bytes, bytearray, memoryview)):
        return _text(value, what)  # one text of separated tokens, sent as given
    if not isinstance(value, Iterable):
        raise TypeError(f"{what} must be a list of tokens or a text, not {type(value).__name__}")
    return sep.join(_token(v, f"{what}[{i}]") for i, v in enumerate(value))


def parse_op(op: int | str) -> int:
    """An operator as its wire code: an :class:`Op`, an int with flags, or a
    server operator name with optional ``!``/``~`` (negate) and ``+`` (no
    index) prefixes."""
    if isinstance(op, str):
        text = op.strip()
        flags = 0
        if text[:1] in ("!", "~"):
            flags |= NEGATE
            text = text[1:]
        if text[:1] == "+":
            flags |= NOIDX
            text = text[1:]
        code = _OP_NAMES.get(text.upper())
        if code is None:
            if text.isdigit():
                return parse_op(int(text)) | flags
            raise ValueError(f"unknown condition operator {op!r}")
        return code | flags
    if isinstance(op, bool) or not isinstance(op, int):
        raise TypeError(f"operator must be an Op, int or name, not {type(op).__name__}")
    base = op & ~(NEGATE | NOIDX)
    if op < 0 or base > Op.FTSEX:
        raise ValueError(f"invalid condition operator {op}: the code must be 0-18, "
                         "optionally with NEGATE/NOIDX")
    return int(op)


def _cond_arg(cond: Condition) -> bytes:
    column, op, expr = cond
    return b"addcond\0" + column + b"\0" + b"%d" % op + b"\0" + expr


def lookup_condition(key: str, value: object, negate: bool = False) -> Condition:
    """The condition of one ``column__lookup=value`` keyword argument."""
    noidx = False
    column, sep, lookup = key.rpartition("__")
    if sep and lookup == "noidx":
        noidx = True
        key = column
        column, sep, lookup = key.rpartition("__")
    if not sep:
        column, lookup = key, "eq"
    spec = LOOKUPS.get(lookup)
    if spec is None:
        raise ValueError(
            f"unknown lookup {lookup!r} in {key!r}; known lookups: {', '.join(sorted(LOOKUPS))} "
            "(use .condition() for a column whose name contains '__')"
        )
    kind, op = spec
    what = f"value of {key!r}"
    if kind == "eq":
        if _is_number(value):
            op, expr = Op.NUMEQ, _number(value, what)
        else:
            op, expr = Op.STREQ, _scalar(value, what)
    elif kind == "text":
        expr = _scalar(value, what)
    elif kind == "num":
        expr = _scalar(value, what)
    elif kind == "raw":
        if isinstance(value, (list, tuple)):
            expr = b",".join(_scalar(v, f"{what}[{i}]") for i, v in enumerate(value))
        else:
            expr = _scalar(value, what)
    elif kind == "tokens":
        expr = _token_list(value, what)
    elif kind == "words":
        expr = _token_list(value, what, b" ")
    elif kind == "in":
        if isinstance(value, (str, bytes, bytearray, memoryview)):
            op, expr = Op.STROREQ, _text(value, what)
        elif not isinstance(value, Iterable):
            raise TypeError(f"{what} must be a list, not {type(value).__name__}")
        else:
            values = list(value)
            numeric = [_is_number(v) for v in values]
            if values and all(numeric):
                op = Op.NUMOREQ
            elif any(numeric):
                raise TypeError(f"{what}: mix of numbers and texts; use one kind")
            else:
                op = Op.STROREQ
            expr = _token_list(values, what)
    elif kind == "iregex":
        expr = b"*" + _scalar(value, what)
    elif kind == "between":
        if isinstance(value, (str, bytes, bytearray, memoryview)):
            expr = _text(value, what)
        else:
            try:
                pair = list(value)  # type: ignore[call-overload]
            except TypeError:
                pair = []
            if len(pair) != 2:
                raise TypeError(f"{what} must be a (low, high) pair")
            expr = _token(pair[0], what + "[0]") + b" " + _token(pair[1], what + "[1]")
    else:  # exists
        if not isinstance(value, bool):
            raise TypeError(f"{what} must be True or False")
        expr = b""
        if not value:
            negate = not negate
    if op == Op.STRRX and expr:
        _check_regex(expr, what)
    col = _text(column, f"column of {key!r}")
    flags = (NEGATE if negate else 0) | (NOIDX if noidx else 0)
    return (col, int(op) | flags, expr)


def _check_regex(expr: bytes, what: str) -> None:
    """Refuse a STRRX expression that Tokyo Cabinet would reject or choke on."""
    try:
        check_strrx(expr)
    except RegexError as exc:
        raise type(exc)(f"{what}: {exc}", exc.pattern, exc.offset) from None


# ---------------------------------------------------------------------------
# Results


def _split_pairs(data: bytes) -> dict[bytes, bytes]:
    parts = data.split(b"\0")
    it = iter(parts)
    return dict(zip(it, it))


def _decode_pairs(pairs: dict[bytes, bytes], key: bytes) -> dict[str, str]:
    return c.decode_record(pairs, key)


def parse_item(element: bytes, raw: bool) -> tuple[Any, dict]:
    """``\\0pk\\0name\\0value…`` (a ``get`` element led by the key) → (pk, record)."""
    if not raw:
        try:
            text = element.decode()
        except UnicodeDecodeError:
            pass
        else:
            parts = text.split("\0")
            it = iter(parts[2:])
            return parts[1] if len(parts) > 1 else "", dict(zip(it, it))
    parts_b = element.split(b"\0")
    pk = parts_b[1] if len(parts_b) > 1 else b""
    itb = iter(parts_b[2:])
    pairs = dict(zip(itb, itb))
    if raw:
        return pk, pairs
    return c.decode_key(pk), _decode_pairs(pairs, pk)


def parse_values(element: bytes, raw: bool) -> dict:
    """A ``get`` element with named columns (no key) → record."""
    pairs = _split_pairs(element) if element else {}
    if raw:
        return pairs
    return _decode_pairs(pairs, b"?")


def _limit_arg(limit: tuple[int | None, int]) -> bytes:
    max_, skip = limit
    return b"setlimit\0%d\0%d" % (-1 if max_ is None else max_, skip)


def _order_arg(order: tuple[bytes, int]) -> bytes:
    return b"setorder\0" + order[0] + b"\0%d" % order[1]


# ---------------------------------------------------------------------------
# The builder


class BaseQuery:
    """What to search for; immutable, holds no connection.

    A *simple* query has conditions; a *compound* one (made with ``|``, ``&``,
    ``-``) combines simple ones through the server's metasearch. Both can be
    ordered, sliced and restricted to some columns.

    Lookups (``column__lookup=value``; a bare ``column=value`` means ``eq``):

    * ``eq``, ``exact`` — STREQ for a text, NUMEQ for an int, float or Decimal;
    * ``contains``, ``startswith``, ``endswith`` — STRINC, STRBW, STREW;
    * ``all``, ``any`` — STRAND, STROR: a list of tokens, or one text of comma or
      space separated tokens;
    * ``in`` — STROREQ for a list of texts, NUMOREQ for a list of numbers
      (``[]`` matches nothing);
    * ``regex``, ``iregex`` — STRRX, POSIX extended (``iregex``: ASCII
      case-insensitive); an expression the server's C library rejects, or
      one it would run at a ruinous cost, raises a
      :class:`~.regex.RegexError` (a ``ValueError``; see :mod:`.regex`);
    * ``gt``, ``gte``/``ge``, ``lt``, ``lte``/``le`` — NUMGT, NUMGE, NUMLT, NUMLE;
    * ``between`` — NUMBT with a ``(low, high)`` pair, both inclusive;
    * ``search`` (``phrase``, ``fts``) — FTSPH, a full-text phrase;
    * ``search_all`` (``fts_all``), ``search_any`` (``fts_any``) — FTSAND, FTSOR:
      all / any of the words (a list or a text);
    * ``search_expr`` (``fts_expr``) — FTSEX: ``a && b``, ``a || b``,
      ``a !! b``, ``"a b"``;
    * ``exists`` — True: the record has the column; False: it lacks it;
    * ``streq`` … ``ftsex`` — the server's operator names; the value is sent as
      given.

    Append ``__noidx`` to a lookup to keep the server from using an index
    (``name__startswith__noidx="a"``). ``exclude(...)`` negates each of its
    conditions: ``exclude(a=1, b=2)`` keeps records where neither holds (the
    server's negated conditions also match records that lack the column). The
    primary key is the column ``""`` (:data:`PK`): ``filter(**{PK + "__startswith":
    "user:"})`` or ``condition(PK, Op.STRBW, "user:")``.
    """

    __slots__ = ("_client", "_conds", "_order", "_limit", "_columns", "_parts", "_mstype")

    _client: Any
    _conds: tuple[Condition, ...]
    _order: tuple[bytes, int] | None
    _limit: tuple[int | None, int] | None
    _columns: tuple[bytes, ...] | None
    _parts: tuple[BaseQuery, ...]
    _mstype: int

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conds = ()
        self._order = None
        self._limit = None
        self._columns = None
        self._parts = ()
        self._mstype = SetOp.UNION

    def _clone(self: Q, **changes: Any) -> Q:
        new = object.__new__(type(self))
        for name in BaseQuery.__slots__:
            object.__setattr__(new, name, changes.get(name[1:], getattr(self, name)))
        return new

    # -- conditions ----------------------------------------------------------

    @property
    def compound(self) -> bool:
        """True for a combination of queries (executed as a metasearch)."""
        return bool(self._parts)

    def _add(self: Q, conds: list[Condition]) -> Q:
        if self._parts:
            raise TypeError("cannot add conditions to a combined query; filter the parts "
                            "before combining them")
        return self._clone(conds=self._conds + tuple(conds))

    def filter(self: Q, **lookups: Any) -> Q:
        """Records matching every lookup (see the module docs for the names)."""
        return self._add([lookup_condition(k, v) for k, v in lookups.items()])

    def exclude(self: Q, **lookups: Any) -> Q:
        """Records for which each lookup fails (each condition negated)."""
        return self._add([lookup_condition(k, v, negate=True) for k, v in lookups.items()])

    def condition(self: Q, column: str | bytes, op: int | str, expr: object, *,
                  negate: bool = False, noidx: bool = False) -> Q:
        """One raw condition: ``op`` is an :class:`Op` (flags allowed) or a server
        operator name; ``expr`` is sent as given (numbers as decimal text)."""
        code = parse_op(op)
        if negate:
            code |= NEGATE
        if noidx:
            code |= NOIDX
        cond = (_text(column, "column"), code, _scalar(expr, "expr"))
        if code & ~(NEGATE | NOIDX) == Op.STRRX and cond[2]:
            _check_regex(cond[2], "expr")
        return self._add([cond])

    def none(self: Q) -> Q:
        """A query matching nothing (``primary key STROREQ ""``); still one round trip."""
        if self._parts:
            return self._clone(parts=(), mstype=SetOp.UNION, conds=((b"", Op.STROREQ, b""),),
                               columns=self._columns)
        return self._add([(b"", Op.STROREQ, b"")])

    # -- order, limit, columns ----------------------------------------------

    def order_by(self: Q, column: str | bytes | None = None, *more: object,
                 numeric: bool = False) -> Q:
        """Sort by one column (``"-col"`` descending; ``""``/``"-"`` the primary key),
        as text or, with ``numeric=True``, as numbers. ``None`` removes the order.
        Records lacking the column come last either way. Tokyo Cabinet sorts by
        one column only, so a second one raises ``TypeError``."""
        if more:
            raise TypeError(f"order_by() takes one column (Tokyo Cabinet sorts by one); got "
                            f"{column!r} and also {', '.join(map(repr, more))}")
        if not isinstance(numeric, bool):
            raise TypeError(f"order_by(numeric=...) must be True or False, not "
                            f"{type(numeric).__name__} {numeric!r}")
        if column is None:
            return self._clone(order=None)
        if not isinstance(column, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"order_by() column must be a str or bytes (a column name), not "
                            f"{type(column).__name__} {column!r}")
        name = _text(column, "order column")
        desc = name.startswith(b"-")
        if desc:
            name = name[1:]
        kind = (Order.NUMDESC if desc else Order.NUMASC) if numeric else (
            Order.STRDESC if desc else Order.STRASC)
        return self._clone(order=(name, int(kind)))

    def limit(self: Q, max: int | None = None, skip: int = 0) -> Q:
        """At most ``max`` results (None: all) after skipping ``skip``; replaces any
        earlier limit or slice."""
        if max is not None:
            max = _count_arg(max, "max")
        skip = _count_arg(skip, "skip")
        if max is None and skip == 0:
            return self._clone(limit=None)
        return self._clone(limit=(max, skip))

    def _slice(self: Q, key: slice) -> Q:
        if key.step not in (None, 1):
            raise ValueError("query slices cannot have a step")
        start = 0 if key.start is None else _count_arg(key.start, "slice start")
        stop = None if key.stop is None else _count_arg(key.stop, "slice stop")
        cur_max, cur_skip = self._limit or (None, 0)
        count = None if stop is None else max(0, stop - start)
        if cur_max is not None:
            left = max(0, cur_max - start)
            count = left if count is None else min(count, left)
        skip = cur_skip + start
        if skip > _INT32_MAX:
            raise ValueError(f"skip {skip} is larger than the server accepts ({_INT32_MAX})")
        if count is None and skip == 0:
            return self._clone(limit=None)
        return self._clone(limit=(count, skip))

    def columns(self: Q, *names: str | bytes) -> Q:
        """Fetch only these columns (``""`` is the primary key); none: all columns."""
        return self._clone(columns=tuple(_text(n, "column") for n in names) or None)

    # -- set operations -------------------------------------------------------

    def _operands(self, setop: int, first: bool) -> list[BaseQuery]:
        if not self._parts:
            if self._columns is not None:
                raise ValueError("choose columns on the combined query, not on its parts")
            if first and self._limit is not None:
                raise ValueError("the first part of a combination cannot be sliced (the server "
                                 "would apply its limit to the combined result); slice the "
                                 "combined query instead")
            return [self]
        if self._order is not None or self._limit is not None or self._columns is not None:
            raise ValueError("an ordered, sliced or column-restricted combination cannot be "
                             "combined again")
        if self._mstype == setop and (first or setop != SetOp.DIFF):
            return list(self._parts)
        if setop == SetOp.DIFF and not first and self._mstype == SetOp.UNION:
            return list(self._parts)  # a - (b | c) == a - b - c
        raise ValueError("mixing union, intersection and difference needs one metasearch per "
                         "operation; run the inner one and combine the keys yourself")

    def _combine(self: Q, others: tuple[BaseQuery, ...], setop: int) -> Q:
        if not others:
            return self
        parts = self._operands(setop, True)
        for other in others:
            if not isinstance(other, BaseQuery) or other._client is not self._client:
                raise TypeError("only queries of the same client can be combined")
            parts.extend(other._operands(setop, False))
        new = self._clone(parts=tuple(parts), mstype=setop, conds=(), order=None, limit=None,
                          columns=None)
        return new

    def union(self: Q, *others: BaseQuery) -> Q:
        """Records matched by any of the queries (metasearch UNION)."""
        return self._combine(others, SetOp.UNION)

    def intersect(self: Q, *others: BaseQuery) -> Q:
        """Records matched by all of the queries (metasearch ISECT)."""
        return self._combine(others, SetOp.ISECT)

    def minus(self: Q, *others: BaseQuery) -> Q:
        """Records of this query matched by none of the others (metasearch DIFF)."""
        return self._combine(others, SetOp.DIFF)

    def __or__(self: Q, other: BaseQuery) -> Q:
        return self.union(other)

    def __and__(self: Q, other: BaseQuery) -> Q:
        return self.intersect(other)

    def __sub__(self: Q, other: BaseQuery) -> Q:
        return self.minus(other)

    # -- arguments -----------------------------------------------------------

    def _section(self) -> list[bytes]:
        args = [b"hint"]
        args.extend(_cond_arg(cond) for cond in self._conds)
        if self._order is not None:
            args.append(_order_arg(self._order))
        if self._limit is not None:
            args.append(_limit_arg(self._limit))
        return args

    def build(self, action: str = "keys") -> tuple[bytes, int, list[bytes]]:
        """The MISC call for this query: ``(name, opts, args)``, exactly as the C
        client sends it. ``action``: ``keys``, ``values`` (named columns as
        given), ``items`` (records led by their key), ``count`` or ``out``."""
        if self._parts:
            args: list[bytes] = []
            for i, part in enumerate(self._parts):
                if i:
                    args.append(b"next")
                args.extend(part._section())
                if i == 0:
                    if self._order is not None:
                        args.append(_order_arg(self._order))
                    if self._limit is not None:
                        args.append(_limit_arg(self._limit))
            args.append(b"mstype\0%d" % self._mstype)
            name = b"metasearch"
        else:
            args = self._section()
            name = b"search"
        opts = p.MISC_NOULOG
        if action == "keys":
            pass
        elif action == "values":
            args.append(b"\0".join((b"get", *self._columns)) if self._columns else b"get")
        elif action == "items":
            if self._columns:
                args.append(b"\0".join((b"get", b"", *(n for n in self._columns if n))))
            else:
                args.append(b"get")
        elif action == "count":
            args.append(b"count")
        elif action == "out":
            args.append(b"out")
            opts = 0
        elif action == "outcount":
            args.append(b"out")
            args.append(b"count")
            opts = 0
        elif action == "outitems":
            args.append(b"out")
            args.extend(self.build("items")[2][-1:])
            opts = 0
        else:
            raise ValueError(f"unknown action {action!r}")
        return name, opts, args

    def _check_kind(self) -> None:
        """Refuse at once when the client knows it serves a key-value database (a
        client that has not asked finds out from the server's refusal)."""
        kind = getattr(self._client, "_kind", None)
        if kind is not None:
            require_table(kind, "a query")

    def __repr__(self) -> str:
        name, _, args = self.build()
        shown = ", ".join(repr(a.decode("utf-8", "replace")) for a in args[1:] if a != b"hint")
        return f"<{type(self).__name__} {name.decode()} [{shown}]>"


def _count_arg(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{what} must not be negative (got {value}): a slice of a query is "
                         "a server-side limit and cannot count from the end; slice the "
                         "fetched results instead (q.items()[-3:])")
    if value > _INT32_MAX:
        raise ValueError(f"{what} {value} is larger than the server accepts ({_INT32_MAX})")
    return value


def _index_arg(key: object) -> int:
    if isinstance(key, bool) or not isinstance(key, int):
        raise TypeError(f"query indices must be integers or slices, not {type(key).__name__}")
    if key > _INT32_MAX:
        raise ValueError(f"index {key} is larger than the server accepts ({_INT32_MAX})")
    return key


class Evaluation:
    """One iteration of a query that has not started yet.

    ``list(q)`` calls ``iter(q)`` and then ``len(q)`` for a size hint. That
    ``len`` fetches the results *for this iteration* (which then yields them)
    instead of asking the server to count, so materialising a query is one
    request. The results belong to this one iteration only: nothing is cached
    on the query, and every later evaluation asks the server again.
    """

    __slots__ = ("results", "started", "__weakref__")

    def __init__(self) -> None:
        self.results: list[Any] | None = None
        self.started = False

    @staticmethod
    def pending(owner: Any) -> Evaluation | None:
        """The unstarted, unfilled iteration last begun on ``owner``, taken off it."""
        ref = getattr(owner, "_pending", None)
        if ref is None:
            return None
        owner._pending = None
        evaluation: Evaluation | None = ref()
        if evaluation is None or evaluation.started or evaluation.results is not None:
            return None
        return evaluation

    def begin(self, owner: Any) -> Evaluation:
        owner._pending = weakref.ref(self)
        return self


def _elements_without_hint(chunks: Iterable[list[bytes]], client: object = None) -> Iterator[bytes]:
    """Elements of a streamed search reply, minus the trailing hint element
    (which ``client`` learns from)."""
    held: bytes | None = None
    for chunk in chunks:
        for element in chunk:
            if held is not None:
                yield held
            held = element
    if held is not None and not held.startswith(c.HINT_PREFIX):
        yield held
    elif held is not None:
        note_hint(client, held[len(c.HINT_PREFIX):])


_Item = tuple[Any, dict]


class Query(BaseQuery):
    """A query of the blocking client (``Tyrant.query``).

    Results: :meth:`keys`, :meth:`values`, :meth:`items`, :meth:`count`,
    :meth:`delete`, :meth:`first`, :meth:`exists`, :meth:`hint`; iterating
    yields ``(pk, record)`` pairs, decoded while they arrive (one round trip,
    memory bounded by a chunk); ``list(q)`` is one round trip too. ``len(q)``
    is :meth:`count`. ``q[i]`` is one item (``q[-1]``: the last, fetching every
    match); ``q[a:b]`` a query with a server-side limit (non-negative bounds).
    Keys that are not UTF-8 are decoded with ``surrogateescape`` (they can be
    given back as they are); pass ``raw=True`` to get bytes instead of text.
    """

    __slots__ = ("_pending",)

    _client: Tyrant

    def __init__(self, client: Tyrant) -> None:
        super().__init__(client)

    def _list(self, action: str) -> tuple[list[bytes], str | None]:
        name, opts, args = self.build(action)
        self._check_kind()
        try:
            items = self._client.misc(name, args, opts)
        except TyrantCommandError:
            self._client._require_table("a query")  # the clearer error on a key-value database
            raise
        hint = c.strip_hint(items)
        note_hint(self._client, hint)
        return items, hint

    def _stream(self, action: str) -> Iterator[bytes]:
        name, opts, args = self.build(action)
        self._check_kind()
        try:
            yield from _elements_without_hint(self._client._stream_misc(name, args, opts),
                                              self._client)
        except TyrantCommandError:
            self._client._require_table("a query")
            raise

    def iter_keys(self, *, raw: bool = False) -> Generator[Any, None, None]:
        """Primary keys, decoded while they arrive."""
        decode = c.decode_key
        for element in self._stream("keys"):
            yield element if raw else decode(element)

    def keys(self, *, raw: bool = False) -> list[Any]:
        """The primary keys of the matching records (one round trip)."""
        return list(self.iter_keys(raw=raw))

    def iter_items(self, *, raw: bool = False) -> Generator[_Item, None, None]:
        """``(pk, record)`` pairs, decoded while they arrive."""
        for element in self._stream("items"):
            yield parse_item(element, raw)

    def items(self, *, raw: bool = False) -> list[_Item]:
        """``(pk, record)`` for every match (one round trip)."""
        return list(self.iter_items(raw=raw))

    def values(self, *, raw: bool = False) -> list[dict]:
        """The matching records. With :meth:`columns`, only those columns (a
        record lacking all of them is ``{}``); ``""`` among them is the key."""
        if self._columns:
            return [parse_values(e, raw) for e in self._stream("values")]
        return [rec for _, rec in self.iter_items(raw=raw)]

    def __iter__(self) -> Generator[_Item, None, None]:
        return self._iterate(Evaluation().begin(self))

    def _iterate(self, evaluation: Evaluation) -> Generator[_Item, None, None]:
        evaluation.started = True
        results, evaluation.results = evaluation.results, None
        if results is None:
            yield from self.iter_items()
        else:
            yield from results

    def __len__(self) -> int:
        evaluation = Evaluation.pending(self)
        if evaluation is None:
            return self.count()
        evaluation.results = self.items()  # list(q): fetched once, for that iteration
        return len(evaluation.results)

    def __bool__(self) -> bool:
        return True  # not len(): truth must not cost a round trip

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            return self._slice(key)
        index = _index_arg(key)
        if index < 0:
            found = self.items()
            if index < -len(found):
                raise IndexError(f"query index {index} out of range ({len(found)} matches)")
            return found[index]
        found = self._slice(slice(index, index + 1)).items()
        if not found:
            raise IndexError(f"query index {index} out of range")
        return found[0]

    def first(self, *, raw: bool = False) -> _Item | None:
        """The first ``(pk, record)`` or None."""
        found = self._slice(slice(0, 1)).items(raw=raw)
        return found[0] if found else None

    def count(self) -> int:
        """How many records match (server-side; for a combination, the length of
        its key list, since the server answers 0 there)."""
        if self._parts:
            return len(self._list("keys")[0])
        items, _ = self._list("count")
        return int(items[0]) if items else 0

    def exists(self) -> bool:
        """Whether anything matches (fetches at most one key)."""
        return bool(self._slice(slice(0, 1))._list("keys")[0])

    def delete(self, *, count: bool = True, returning: bool = False) -> Any:
        """Remove the matching records on the server; return how many.

        A simple query is one ``search`` with ``out`` (and ``count``; with
        ``count=False`` exactly the C client's ``tcrdbqrysearchout`` request,
        returning None). ``returning=True`` returns the removed ``(pk, record)``
        pairs instead (``out`` with ``get``, still one round trip). For a
        combination the server would delete only what its *last* part
        matches, so its keys (or items) are fetched first and removed with one
        ``outlist`` (two round trips).
        """
        if self._parts:
            if returning:
                found = self.items()
                keys = [pk for pk, _ in found]
            else:
                keys = self._list("keys")[0]
            for start in range(0, len(keys), _OUTLIST_CHUNK):
                self._client.outlist(keys[start:start + _OUTLIST_CHUNK])
            return found if returning else len(keys)
        if returning:
            return [parse_item(e, False) for e in self._list("outitems")[0]]
        items, _ = self._list("outcount" if count else "out")
        if not count:
            return None
        return int(items[0]) if items else 0

    def hint(self) -> str:
        """The server's explanation of how it ran the query."""
        return self._list("keys")[1] or ""


class AsyncQuery(BaseQuery):
    """A query of :class:`~.aio.AsyncTyrant`: the same builder, awaitable results.

    ``async for pk, record in q`` streams the records.
    """

    __slots__ = ()

    _client: AsyncTyrant

    def __init__(self, client: AsyncTyrant) -> None:
        super().__init__(client)

    async def _list(self, action: str) -> tuple[list[bytes], str | None]:
        name, opts, args = self.build(action)
        self._check_kind()
        try:
            items = await self._client.misc(name, args, opts)
        except TyrantCommandError:
            await self._client._require_table("a query")
            raise
        hint = c.strip_hint(items)
        note_hint(self._client, hint)
        return items, hint

    async def _stream(self, action: str) -> AsyncGenerator[bytes, None]:
        name, opts, args = self.build(action)
        self._check_kind()
        held: bytes | None = None
        try:
            async for chunk in self._client._stream_misc(name, args, opts):
                for element in chunk:
                    if held is not None:
                        yield held
                    held = element
        except TyrantCommandError:
            await self._client._require_table("a query")
            raise
        if held is not None and not held.startswith(c.HINT_PREFIX):
            yield held
        elif held is not None:
            note_hint(self._client, held[len(c.HINT_PREFIX):])

    async def iter_keys(self, *, raw: bool = False) -> AsyncGenerator[Any, None]:
        decode = c.decode_key
        async for element in self._stream("keys"):
            yield element if raw else decode(element)

    async def keys(self, *, raw: bool = False) -> list[Any]:
        return [k async for k in self.iter_keys(raw=raw)]

    async def iter_items(self, *, raw: bool = False) -> AsyncGenerator[_Item, None]:
        async for element in self._stream("items"):
            yield parse_item(element, raw)

    async def items(self, *, raw: bool = False) -> list[_Item]:
        return [item async for item in self.iter_items(raw=raw)]

    async def values(self, *, raw: bool = False) -> list[dict]:
        if self._columns:
            return [parse_values(e, raw) async for e in self._stream("values")]
        return [rec async for _, rec in self.iter_items(raw=raw)]

    def __aiter__(self) -> AsyncGenerator[_Item, None]:
        return self.iter_items()

    def __getitem__(self, key: int | slice) -> Any:
        if isinstance(key, slice):
            return self._slice(key)
        return self._at(_index_arg(key))

    async def _at(self, index: int) -> _Item:
        if index < 0:
            everything = await self.items()
            if index < -len(everything):
                raise IndexError(f"query index {index} out of range ({len(everything)} matches)")
            return everything[index]
        found = await self._slice(slice(index, index + 1)).items()
        if not found:
            raise IndexError(f"query index {index} out of range")
        return found[0]

    async def first(self, *, raw: bool = False) -> _Item | None:
        found = await self._slice(slice(0, 1)).items(raw=raw)
        return found[0] if found else None

    async def count(self) -> int:
        if self._parts:
            return len((await self._list("keys"))[0])
        items, _ = await self._list("count")
        return int(items[0]) if items else 0

    async def exists(self) -> bool:
        return bool((await self._slice(slice(0, 1))._list("keys"))[0])

    async def delete(self, *, count: bool = True, returning: bool = False) -> Any:
        if self._parts:
            if returning:
                found = await self.items()
                keys = [pk for pk, _ in found]
            else:
                keys = (await self._list("keys"))[0]
            for start in range(0, len(keys), _OUTLIST_CHUNK):
                await self._client.outlist(keys[start:start + _OUTLIST_CHUNK])
            return found if returning else len(keys)
        if returning:
            return [parse_item(e, False) for e in (await self._list("outitems"))[0]]
        items, _ = await self._list("outcount" if count else "out")
        if not count:
            return None
        return int(items[0]) if items else 0

    async def hint(self) -> str:
        return (await self._list("keys"))[1] or ""

