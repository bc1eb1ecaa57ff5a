"""The arguments of a MISC ``search``/``metasearch`` read as the server reads them (no I/O).

A sharded client has to know what a raw argument list asks for — its
order, its limit, which columns, whether it deletes or counts — to split it
over servers and merge the answers. :func:`parse` follows the rules of
Tokyo Tyrant's table search exactly, odd input included:

* each argument is split at NUL bytes; the first part names a directive,
  unknown directives are ignored;
* ``addcond``/``cond`` (with column, operator and expression), ``setorder``/
  ``order`` (column and type) and ``setlimit``/``limit``/``setmax``/``max``
  belong to the current sub-query; ``next`` starts a new one;
* ``get``/``columns`` (their names accumulate), ``out``/``remove``,
  ``count``, ``hint`` and ``mstype`` apply to the whole call wherever they
  stand;
* an order type is ``STRASC``/``STR``/``ASC``, ``STRDESC``/``DESC``,
  ``NUMASC``/``NUM``, ``NUMDESC`` (any case) or a number; anything else
  leaves the earlier order in place, a number outside 0-3 means no order;
* a limit's numbers are read like C's ``atoi`` into a 32-bit int; a
  negative maximum means none, a negative skip means 0;
* a set type is ``UNION``/``OR``, ``ISECT``/``INTERSECTION``/``AND``,
  ``DIFF``/``DIFFERENCE``/``ANDNOT``/``NOT`` or a number; anything else is
  a union.

Conditions are kept verbatim: every server reads them itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .query import _limit_arg, _order_arg

__all__ = ["INT_MAX", "UNION", "ISECT", "DIFF", "Sub", "Plan", "parse", "atoi"]

INT_MAX = (1 << 31) - 1
UNION, ISECT, DIFF = 0, 1, 2

_ORDER_NAMES = {b"strasc": 0, b"str": 0, b"asc": 0, b"strdesc": 1, b"desc": 1,
                b"numasc": 2, b"num": 2, b"numdesc": 3}
_SET_NAMES = {b"union": UNION, b"or": UNION, b"isect": ISECT, b"intersection": ISECT,
              b"and": ISECT, b"diff": DIFF, b"difference": DIFF, b"andnot": DIFF, b"not": DIFF}


def atoi(text: bytes) -> int:
    """``text`` as the server's ``atoi`` reads it, truncated to a C int."""
    n = len(text)
    i = 0
    while i < n and 0 < text[i] <= 32:
        i += 1
    negative = False
    if i < n and text[i] in (43, 45):
        negative = text[i] == 45
        i += 1
    j = i
    while j < n and 48 <= text[j] <= 57:
        j += 1
    value = int(text[i:j]) if j > i else 0
    if negative:
        value = -value
    return ((value + (1 << 31)) % (1 << 32)) - (1 << 31)


def _is_number(text: bytes) -> bool:
    n = len(text)
    i = 0
    while i < n and 0 < text[i] <= 32:
        i += 1
    if i < n and text[i] == 45:
        i += 1
    digits = False
    while i < n and 48 <= text[i] <= 57:
        digits = True
        i += 1
    if i < n and text[i] == 46:
        i += 1
    while i < n and 48 <= text[i] <= 57:
        digits = True
        i += 1
    while i < n and 0 < text[i] <= 32:
        i += 1
    return digits and i == n


def _order_type(text: bytes) -> int:
    kind = _ORDER_NAMES.get(text.lower())
    if kind is not None:
        return kind
    return atoi(text) if _is_number(text) else -1


def _set_type(text: bytes) -> int:
    kind = _SET_NAMES.get(text.lower())
    if kind is None:
        kind = atoi(text) if _is_number(text) else -1
    return UNION if kind < 0 else kind


@dataclass
class Sub:
    """One (sub-)query: its conditions as sent, its order and its limit."""

    conds: list[bytes] = field(default_factory=list)
    #: (column, type 0-3), or None: the server's natural order.
    order: tuple[bytes, int] | None = None
    max: int = INT_MAX
    skip: int = 0

    @property
    def limited(self) -> bool:
        return self.max != INT_MAX or self.skip > 0

    @property
    def fetch(self) -> int:
        """How many records the server collects before it skips (max + skip)."""
        return self.max + self.skip if self.max < INT_MAX - self.skip else self.max

    def cut(self, items: list) -> list:  # type: ignore[type-arg]
        """``items`` after this query's skip and max."""
        return items[self.skip:self.fetch]

    def args(self, *, limit: int | None = -1, order: bool = True) -> list[bytes]:
        """The sub-query's arguments: conditions, order and a limit (-1: its own,
        None: none, n: at most n records, no skip)."""
        out = list(self.conds)
        if order and self.order is not None:
            out.append(_order_arg(self.order))
        if limit == -1:
            if self.limited:
                out.append(_limit_arg((None if self.max == INT_MAX else self.max, self.skip)))
        elif limit is not None:
            out.append(_limit_arg((limit, 0)))
        return out


@dataclass
class Plan:
    """A whole search call."""

    subs: list[Sub]
    #: Names after ``get``/``columns`` (``[]``: whole records); None: keys only.
    columns: list[bytes] | None = None
    out: bool = False
    count: bool = False
    hint: bool = False
    mstype: int = UNION

    @property
    def compound(self) -> bool:
        return len(self.subs) > 1


def parse(args: list[bytes]) -> Plan:
    """The plan of a ``search``/``metasearch`` argument list (see the module docs)."""
    subs = [Sub()]
    plan = Plan(subs)
    for arg in args:
        tokens = arg.split(b"\0")
        cmd = tokens[0]
        n = len(tokens)
        sub = subs[-1]
        if cmd in (b"addcond", b"cond"):
            if n > 3:
                sub.conds.append(arg)
        elif cmd in (b"setorder", b"order"):
            if n > 2:
                kind = _order_type(tokens[2])
                if kind >= 0:
                    sub.order = (tokens[1], kind) if kind <= 3 else None
        elif cmd in (b"setlimit", b"limit", b"setmax", b"max"):
            if n > 1:
                most = atoi(tokens[1])
                skip = atoi(tokens[2]) if n > 2 else 0
                sub.max = most if most >= 0 else INT_MAX
                sub.skip = skip if skip > 0 else 0
        elif cmd in (b"get", b"columns"):
            plan.columns = (plan.columns or []) + tokens[1:]
        elif cmd == b"next":
            subs.append(Sub())
        elif cmd == b"mstype":
            if n > 1:
                plan.mstype = _set_type(tokens[1])
        elif cmd in (b"out", b"remove"):
            plan.out = True
        elif cmd == b"count":
            plan.count = True
        elif cmd == b"hint":
            plan.hint = True
    return plan
