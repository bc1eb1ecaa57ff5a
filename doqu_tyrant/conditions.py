"""Native Tyrant conditions and the boolean algebra the query adapter builds with them.

A :class:`Cond` is one server condition (column, operator code with the
NEGATE flag, expression). A :data:`Filter` is a formula in disjunctive normal
form: a tuple of conjunctions, each a tuple of conditions. ``((),)`` (one
empty conjunction) matches every record, ``()`` matches none.

Tyrant evaluates one conjunction per (sub-)query and combines sub-queries
with a metasearch (union, intersection, difference), so a DNF maps directly
onto one request. Negating a condition is exact: the server's negated
condition holds precisely for the records where the plain one does not,
records lacking the column included.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import product
from typing import NamedTuple

from doqu_tyrant.tyrant.query import NEGATE, Op

__all__ = [
    "FALSE",
    "TRUE",
    "Cond",
    "Conj",
    "Filter",
    "all_of",
    "any_of",
    "cond",
    "negate",
]


class Cond(NamedTuple):
    """One server condition: ``column`` ``op`` (an :class:`Op`, maybe | NEGATE) ``expr``."""

    column: str
    op: int
    expr: str

    @property
    def negated(self) -> Cond:
        return Cond(self.column, self.op ^ NEGATE, self.expr)

    def __repr__(self) -> str:
        name = Op(self.op & ~NEGATE).name
        prefix = "!" if self.op & NEGATE else ""
        return f"<{self.column!r} {prefix}{name} {self.expr!r}>"


Conj = tuple[Cond, ...]
Filter = tuple[Conj, ...]

#: Matches every record.
TRUE: Filter = ((),)
#: Matches no record.
FALSE: Filter = ()

#: A union bigger than this many sub-queries is refused (one request each).
MAX_PARTS = 64


def cond(column: str, op: int, expr: str, negated: bool = False) -> Filter:
    """A filter of one condition."""
    return ((Cond(column, int(op) ^ (NEGATE if negated else 0), expr),),)


def _conj(conds: Iterable[Cond]) -> Conj | None:
    """Deduplicated conjunction, or None when it contains a condition and its negation."""
    seen: dict[Cond, None] = {}
    for item in conds:
        if item.negated in seen:
            return None
        seen[item] = None
    return tuple(seen)


def _simplify(conjs: Iterable[Conj]) -> Filter:
    unique = list(dict.fromkeys(conjs))
    if len(unique) < 2:
        return tuple(unique)
    if () in unique:
        return TRUE
    # Drop a conjunction that is a superset of another (it adds nothing to the union).
    sets = [frozenset(c) for c in unique]
    kept = [
        c for i, c in enumerate(unique)
        if not any(j != i and sets[j] < sets[i] for j in range(len(unique)))
    ]
    return tuple(kept)


def any_of(*filters: Filter) -> Filter:
    """Records matching at least one filter."""
    return _simplify(c for f in filters for c in f)


def all_of(*filters: Filter) -> Filter:
    """Records matching every filter."""
    result: Filter = TRUE
    for f in filters:
        if f == TRUE:
            continue
        if result == TRUE:
            result = f
            continue
        combined = (_conj(a + b) for a, b in product(result, f))
        result = _simplify(c for c in combined if c is not None)
        if len(result) > MAX_PARTS:
            raise ValueError(
                f"the query needs more than {MAX_PARTS} sub-queries; simplify its "
                "combination of unions, exclusions and multi-condition where_not()"
            )
    return result


def negate(f: Filter) -> Filter:
    """Records not matching ``f``."""
    return all_of(*(any_of(*(((c.negated,),) for c in conj)) for conj in f))
