"""The lazy query adapter: doqu queries as native Tyrant table searches.

A query holds a filter in two parts, ``positive ∧ ¬negative``, both in
disjunctive normal form (:mod:`doqu_tyrant.conditions`), plus an optional
order. Building (``where``, ``where_not``, ``order_by``, ``| & -``) sends
nothing and returns a new query. Each evaluation is **one** request:

* a single conjunction is a plain ``search``;
* a union of conjunctions (from ``|``, or a ``where_not`` of several
  conditions) is a ``metasearch`` UNION;
* one conjunction minus a union (``-``, ``where_not`` of several conditions)
  is a ``metasearch`` DIFF;
* anything else is expanded into a UNION.

A ``where`` after ``|``/``&``/``-`` is distributed into every conjunction, so
it filters the combined result; the order and any slice are the first
sub-query's, which the server applies to the combined result.

Ordering is numeric for numeric fields. The server reads an empty value
(an unset field) as 0, so a numerically ordered plain search runs as a
union of "value set, sorted" and "value empty or missing": unset fields come
last, as missing columns do, and limit/skip still apply on the server. A
combination ordered numerically is sorted by the server and its unset
records are moved last locally, slices included (still one request).

Evaluations: iteration and slices fetch records (``get``) with the server's
limit/skip; ``count()`` asks the server to count (a metasearch cannot count,
so there only the keys are fetched); ``values(name)`` fetches one column;
``delete()`` is a ``search`` with ``out`` (a metasearch would delete only
its last part, so a combination fetches its keys and removes them with one
``outlist``: two requests) and returns how many records it removed.
Negative indexes and steps read the whole result in one request and slice it
locally. ``list(query)`` is one request too: the ``len()`` that ``list()``
asks right after ``iter()`` (a size hint) fetches the documents for that
iteration instead of counting (see :class:`~doqu_tyrant.tyrant.query.Evaluation`);
results are never kept beyond the evaluation they belong to.

The field name ``pk`` stands for the primary key (the column ``""``) in
``where``/``where_not`` and ``order_by``, unless the document class declares
a field of that name.
"""

from __future__ import annotations

import operator
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from doqu.backend_base import BaseQueryAdapter
from doqu.document import Document
from doqu_tyrant.conditions import FALSE, TRUE, Conj, Filter, all_of, any_of, negate
from doqu_tyrant.lookups import NUMERIC_KINDS, column_of, kind_of_type
from doqu_tyrant.records import parse_column, parse_columns, parse_item
from doqu_tyrant.tyrant.commands import HINT_PREFIX
from doqu_tyrant.tyrant.query import Evaluation, Op

if TYPE_CHECKING:
    from doqu_tyrant.storage import StorageAdapter
    from doqu_tyrant.tyrant.client import Tyrant
    from doqu_tyrant.tyrant.query import Query

__all__ = ["QueryAdapter"]

_FILLED = "."  # STRRX: the column holds at least one byte

D = TypeVar("D", bound=Document)
_Q = TypeVar("_Q", bound="QueryAdapter[Any]")


def _normalize(pos: Filter, neg: Filter) -> tuple[Filter, Filter]:
    """Fold one-condition exclusions into the positive part (no metasearch needed)."""
    single = tuple(c[0].negated for c in neg if len(c) == 1)
    rest = tuple(c for c in neg if len(c) != 1)
    if () in rest:  # excluding everything
        return FALSE, FALSE
    if single:
        pos = all_of(pos, (single,))
    if not pos:
        return FALSE, FALSE
    return pos, rest


class QueryAdapter(BaseQueryAdapter[D]):
    """A lazy, immutable query over the documents of ``model`` in ``storage``.

    ``QueryAdapter(storage, model)``; usually built by ``storage.find(model)``
    or ``Model.objects(storage)``. See the module docs for how it maps to
    Tyrant requests.
    """

    storage: StorageAdapter

    def __init__(self, storage: StorageAdapter, model: type[D] | None = None, *,
                 doc_class: type[D] | None = None) -> None:
        cls = model if model is not None else doc_class
        if cls is None:
            raise TypeError("QueryAdapter() needs the document class (model)")
        super().__init__(storage, cls)
        self._pos: Filter = TRUE
        self._neg: Filter = FALSE
        self._order: tuple[str, bool, bool] | None = None  # column, descending, numeric

    @property
    def model(self) -> type[D]:
        """The document class (doqu 0.28's name for it)."""
        return self.doc_class

    # -- building -----------------------------------------------------------------------

    def _clone(self: _Q, **changes: Any) -> _Q:
        clone = object.__new__(type(self))
        state = clone.__dict__
        state.update(self.__dict__)
        state.pop("_pending", None)  # an iteration belongs to the query it began on
        state.update(changes)
        return clone

    def _with(self: _Q, pos: Filter, neg: Filter) -> _Q:
        pos, neg = _normalize(pos, neg)
        return self._clone(_pos=pos, _neg=neg)

    def where(self: _Q, **conditions: Any) -> _Q:
        """Records matching every condition (``field__lookup=value``)."""
        found = all_of(*self._resolve(conditions))
        return self._with(all_of(self._pos, found), self._neg)

    def where_not(self: _Q, **conditions: Any) -> _Q:
        """Records not matching all of the conditions together (lacking a column counts)."""
        if not conditions:
            return self._clone()
        found = all_of(*self._resolve(conditions))
        return self._with(self._pos, any_of(self._neg, found))

    def order_by(self: _Q, name: str, reverse: bool = False, *,
                 numeric: bool | None = None) -> _Q:
        """Sorted by ``name`` (``"-name"`` or ``reverse=True``: descending).

        Numeric for fields declared int, float, Decimal, bool, date or datetime
        (both directions), text otherwise; ``numeric`` overrides (useful for
        structure-less classes). Records lacking the field come last. ``pk`` is
        the primary key. Tokyo Cabinet sorts by one column: a second field
        (``order_by("name", "age")``) raises ``TypeError``, as does a
        ``reverse`` or ``numeric`` that is not a bool.
        """
        field, descending = self._parse_order(name, reverse)
        if "\0" in field:
            raise ValueError(f"field name {field!r} contains a NUL byte")
        if numeric is not None and not isinstance(numeric, bool):
            raise TypeError(f"order_by(numeric=...) must be True, False or None, not "
                            f"{type(numeric).__name__} {numeric!r}")
        field_type = self._field_type(field)
        if numeric is None:
            numeric = field_type is not None and kind_of_type(field_type) in NUMERIC_KINDS
        return self._clone(_order=(column_of(field, field_type), descending, numeric))

    def _expanded(self) -> Filter:
        if not self._neg:
            return self._pos
        return all_of(self._pos, negate(self._neg))

    def _union(self: _Q, other: _Q) -> _Q:
        return self._with(any_of(self._expanded(), other._expanded()), FALSE)

    def _intersection(self: _Q, other: _Q) -> _Q:
        return self._with(all_of(self._pos, other._pos), any_of(self._neg, other._neg))

    def _difference(self: _Q, other: _Q) -> _Q:
        return self._with(self._pos, any_of(self._neg, other._expanded()))

    # -- the native query ---------------------------------------------------------------

    def _field_type(self, name: str) -> type | None:
        type_of = getattr(self.doc_class, "field_type", None)
        return type_of(name) if type_of is not None else None

    @staticmethod
    def _part(client: Tyrant, conj: Conj) -> Query:
        query = client.query
        for item in conj:
            query = query.condition(item.column, item.op, item.expr)
        return query

    def _native(self, ordered: bool = True) -> tuple[Query, str | None]:
        """The client query doing this search, and the column by which its
        results still have to be partitioned (see :meth:`_partitioned`)."""
        client = self.storage.client
        pos, neg = self._pos, self._neg
        order = self._order if ordered else None
        if neg and len(pos) > 1:
            pos, neg = all_of(pos, negate(neg)), FALSE
        if not pos:
            return client.query.none(), None
        if len(pos) == 1 and not neg:
            query = self._part(client, pos[0])
            if order is None:
                return query, None
            column, descending, numeric = order
            name = ("-" if descending else "") + column
            if not numeric:
                return query.order_by(name), None
            # The server reads an empty value as 0. A union whose first part is
            # empty and unordered keeps the order of its parts and applies the
            # first part's limit to the whole: filled values sorted, then the
            # empty or missing ones.
            filled = query.condition(column, Op.STRRX, _FILLED).order_by(name, numeric=True)
            empty = query.condition(column, Op.STRRX, _FILLED, negate=True)
            return client.query.none().union(filled, empty), None
        if not neg:
            parts = [self._part(client, conj) for conj in pos]
            query = parts[0].union(*parts[1:])
        else:
            query = self._part(client, pos[0]).minus(*(self._part(client, c) for c in neg))
        if order is None:
            return query, None
        column, descending, numeric = order
        query = query.order_by(("-" if descending else "") + column, numeric=numeric)
        return query, column if numeric else None

    @staticmethod
    def _partitioned(rows: list[tuple[str, dict[Any, Any]]], column: str
                     ) -> list[tuple[str, dict[Any, Any]]]:
        """Records with an empty or missing ``column`` moved last (order kept)."""
        filled = [row for row in rows if row[1].get(column)]
        if len(filled) == len(rows):
            return rows
        return filled + [row for row in rows if not row[1].get(column)]

    def _elements(self, query: Query, action: str) -> list[bytes]:
        name, opts, args = query.build(action)
        items = self.storage.client.misc(name, args, opts)
        if items and items[-1].startswith(HINT_PREFIX):
            items.pop()
        return items

    def _rows(self, query: Query) -> list[tuple[str, dict[Any, Any]]]:
        return [parse_item(element) for element in self._elements(query, "items")]

    def _build(self, rows: list[tuple[str, dict[Any, Any]]]) -> list[D]:
        storage, build = self.storage, self.doc_class.from_storage
        return [build(storage, key, record) for key, record in rows]

    def _select(self, start: int, stop: int | None) -> list[D]:
        """Documents ``start:stop`` (non-negative bounds) in one request."""
        query, partition = self._native()
        if partition is not None:
            return self._build(self._partitioned(self._rows(query), partition)[start:stop])
        if start or stop is not None:
            query = query.limit(None if stop is None else stop - start, start)
        storage, build = self.storage, self.doc_class.from_storage
        # Each record parsed just before it is built: no list of raw rows is kept
        # alive meanwhile (fewer live containers, less garbage-collector work).
        return [build(storage, key, record)
                for key, record in map(parse_item, self._elements(query, "items"))]

    # -- evaluating ---------------------------------------------------------------------

    def count(self) -> int:
        """How many records match (the server counts; one request)."""
        return self._native(ordered=False)[0].count()

    def delete(self) -> int:
        """Delete every matching record on the server; return how many were deleted."""
        return self._native(ordered=False)[0].delete()  # type: ignore[no-any-return]

    def values(self, name: str) -> list[Any]:
        """Distinct values of field ``name`` among the matches, in query order,
        converted to the field's declared type; fetches only that column.

        A reference field gives the primary keys (text) of the referenced
        documents, not the documents (which would cost a request more, and
        fail for a dangling reference): ``db.get_many(Model, keys)`` fetches
        them. Values that cannot be converted are returned as stored.
        """
        if not name or "\0" in name:
            raise ValueError(f"invalid field name {name!r}")
        field_type = self._field_type(name)
        convert = field_type is not None and not issubclass(field_type, Document)
        converters = self.storage.converter_manager
        column = column_of(name, field_type)
        query, partition = self._native()
        if partition is None:
            raws = [parse_column(e) for e in self._elements(query.columns(column), "values") if e]
        else:
            rows = [("", parse_columns(e)) for e in
                    self._elements(query.columns(column, partition), "values")]
            raws = [r[column] for _, r in self._partitioned(rows, partition) if column in r]
        seen: dict[Any, None] = {}
        unhashable: list[Any] = []
        for value in raws:
            if convert:
                assert field_type is not None
                try:
                    value = converters.from_db(field_type, value, self.storage)
                except (ValueError, TypeError, ArithmeticError):
                    pass
            try:
                seen.setdefault(value, None)
            except TypeError:
                if value not in unhashable:
                    unhashable.append(value)
        return [*seen, *unhashable] if unhashable else list(seen)

    def __iter__(self) -> Iterator[D]:
        return self._iterate(Evaluation().begin(self))

    def _iterate(self, evaluation: Evaluation) -> Generator[D, None, None]:
        evaluation.started = True
        documents, evaluation.results = evaluation.results, None
        yield from self._select(0, None) if documents is None else documents

    def __len__(self) -> int:
        """:meth:`count` -- except right after ``iter()`` (``list(query)``),
        when it fetches the documents for that iteration: one request."""
        evaluation = Evaluation.pending(self)
        if evaluation is None:
            return self.count()
        evaluation.results = self._select(0, None)
        return len(evaluation.results)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return self._slice(index)
        try:
            position = operator.index(index)
        except TypeError:
            raise TypeError(
                f"query indices must be integers or slices, not {type(index).__name__}"
            ) from None
        if position < 0:
            everything = self._select(0, None)
            if position < -len(everything):
                raise IndexError(f"query index {position} out of range")
            return everything[position]
        found = self._select(position, position + 1)
        if not found:
            raise IndexError(f"query index {position} out of range")
        return found[0]

    def _slice(self, index: slice) -> list[D]:
        start, stop, step = (
            None if b is None else operator.index(b) for b in (index.start, index.stop, index.step)
        )
        if step == 0:
            raise ValueError("slice step cannot be zero")
        if (step is not None and step < 0) or (start is not None and start < 0) or (
            stop is not None and stop < 0
        ):
            return self._select(0, None)[index]
        start = start or 0
        if stop is not None and stop <= start:
            return []
        found = self._select(start, stop)
        return found if step in (None, 1) else found[::step]
