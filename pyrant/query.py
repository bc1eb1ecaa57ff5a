"""pyrant's query API: ``t.query.filter(...).exclude(...).order_by(...)``.

A :class:`Query` is lazy and chainable, and caches what it fetched: the
first result asked for fetches the list of matching keys (one search), and
records come in chunks of :data:`CACHE_CHUNK_SIZE` (one MGET each). Asking
the same query object again answers from that cache, as pyrant did; build a
new query (``t.query...``) to see later changes.

Conditions are checked when the query runs, not when it is built: an unknown
lookup raises ``NameError``, a value no definition of its lookup accepts
raises ``ValueError``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

from . import utils
from ._values import is_int_like, is_iterable, query_text, text
from .protocol import TyrantProtocol

__all__ = ["Query", "Condition", "Lookup", "ExistanceLookup", "Ordering", "ResultCache",
           "CACHE_CHUNK_SIZE"]

#: Records fetched per MGET when a query's results are read.
CACHE_CHUNK_SIZE = 1000
_OUTLIST_CHUNK = 100_000  # keys per outlist when deleting a metasearch


class Query:
    """A lazy search of a table database; get one from :attr:`pyrant.Tyrant.query`.

    Results are ``(primary key, record)`` pairs: ``q[i]`` is one, ``q[a:b]``
    and ``q[:]`` a list, iteration goes through them all; ``len(q)`` reads
    them all. Negative indexes raise ``ValueError``.
    """

    def __init__(self, proto: TyrantProtocol, db_type: str, literal: bool = False,
                 conditions: list[Condition] | None = None, columns: Any = None,
                 ms_type: int | None = None,
                 ms_conditions: list[list[Condition]] | None = None) -> None:
        if conditions and not (isinstance(conditions, list)
                               and all(isinstance(c, Condition) for c in conditions)):
            raise AssertionError(f"Expected a list of Condition instances, got {conditions!r}")
        self.literal = literal
        self._conditions: list[Condition] = conditions or []
        self._ordering = Ordering()
        self._proto = proto
        self._db_type = db_type
        self._columns = columns
        self._ms_type = ms_type
        self._ms_conditions = ms_conditions
        self._cache = ResultCache(self)

    # -- Python protocols ---------------------------------------------------------------

    def __and__(self, other: Query) -> Query:
        return self.intersect(other)

    def __or__(self, other: Query) -> Query:
        return self.union(other)

    def __sub__(self, other: Query) -> Query:
        return self.minus(other)

    def __contains__(self, key: object) -> bool:
        return key in self._cache.get_keys(self._do_search)

    def __getitem__(self, k: int | slice) -> Any:
        if isinstance(k, slice):
            return self._get_slice(k)
        if isinstance(k, int):
            return self._get_item(k)
        raise TypeError("Query indices must be integers")

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        index = 0
        while True:
            try:
                item = self[index]
            except IndexError:
                return
            yield item
            index += 1

    def __len__(self) -> int:
        return len(self[:])

    def __repr__(self) -> str:
        return str(self[:])

    def _get_slice(self, s: slice) -> list[tuple[Any, Any]]:
        for bound in (s.start, s.stop):
            if bound is not None and bound < 0:
                raise ValueError("Negative indexing is not supported")
        if s.start and s.start == s.stop:
            raise ValueError("Zero-length slices are not supported")
        self._cache.get_keys(self._do_search)
        return list(self._cache.get_items(s.start or 0, s.stop))

    def _get_item(self, index: int) -> tuple[Any, Any]:
        if index < 0:
            raise ValueError("Negative indexing is not supported")
        self._cache.get_keys(self._do_search)
        return self._cache.get_item(index)

    # -- building -----------------------------------------------------------------------

    def _add_to_metasearch(self, other: Query, operator: int) -> Query:
        query = self._clone()
        if not isinstance(other, Query):
            raise AssertionError("This function needs other Query object type")
        if query._ms_type not in (None, operator):
            raise AssertionError("You can not mix union with intersect or minus")
        if query._ms_conditions is None:
            query._ms_conditions = []
        query._ms_conditions.append(other._clone()._conditions)
        query._ms_type = operator
        return query

    def _clone(self) -> Query:
        # The order is not carried over (pyrant's behaviour): order last.
        options: dict[str, Any] = {
            "literal": self.literal,
            "conditions": [c._clone() for c in self._conditions],
            "ms_type": self._ms_type,
        }
        if self._ms_conditions:
            options["ms_conditions"] = [[c._clone() for c in conds]
                                        for conds in self._ms_conditions]
        if self._columns:
            options["columns"] = self._columns[:]
        return Query(self._proto, self._db_type, **options)

    def _do_search(self, conditions: list[Any] | None = None, limit: int | None = None,
                   offset: int | None = None, out: bool = False, count: bool = False,
                   hint: bool = False, columns: Any = None) -> list[str]:
        options: dict[str, Any] = {
            "out": out,
            "count": count,
            "hint": hint,
            "conditions": conditions or [c.prepare() for c in self._conditions],
            "limit": limit,
            "offset": offset,
        }
        if columns:
            options["columns"] = columns[:]
        if self._ordering:
            options["order_column"] = self._ordering.name
            options["order_type"] = self._ordering.type
        if self._ms_conditions:
            options["ms_type"] = self._ms_type
            options["ms_conditions"] = [[c.prepare() for c in conds]
                                        for conds in self._ms_conditions]
        return self._proto.search(**options)

    def _filter(self, negate: bool, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Query:
        query = self._clone()
        for cond in args:
            if not isinstance(cond, Condition):
                raise AssertionError("Arguments must be instances of Q")
            c = cond._clone()
            c.negate = c.negate ^ negate
            query._conditions.append(c)
        for name, expr in kwargs.items():
            query._conditions.append(Condition(name, expr, negate))
        return query

    def _to_python(self, elem: Any) -> Any:
        return utils.to_python(elem, self._db_type)

    # -- public API ---------------------------------------------------------------------

    def columns(self, *names: str) -> list[Any]:
        """Run the query and return, for each match, a dict of only the named
        columns (those the record has). ``"*"`` among the names: the full
        ``(key, record)`` pairs, as ``q[:]``. No names: a ``{key: None}`` dict
        per match (pyrant's result)."""
        if "*" in names:
            return self[:]
        return [self._to_python(value) for value in self._do_search(columns=names)]

    def count(self) -> int:
        """The number of matches, counted by the server (0 for a union,
        intersection or difference: the server does not count those)."""
        return int(self._do_search(count=True)[0])

    def delete(self, quick: bool = False) -> bool | None:
        """Delete every match on the server. Returns None; with ``quick=True``
        another search follows and False is returned (pyrant's results).

        A union, intersection or difference fetches its keys and removes them
        with ``outlist`` (the server's own delete would remove what the *last*
        part matches: for ``a - b``, the records of ``b``)."""
        if self._ms_conditions and self._ms_type is not None:
            found = self._do_search()
            for start in range(0, len(found), _OUTLIST_CHUNK):
                self._proto.misc("outlist", found[start:start + _OUTLIST_CHUNK])
        else:
            self._do_search(out=True)
        if quick:
            return not bool(self._do_search(count=True))
        return None

    def exclude(self, *args: Condition, **kwargs: Any) -> Query:
        """A copy that keeps the records for which each condition fails."""
        return self._filter(True, args, kwargs)

    def filter(self, *args: Condition, **kwargs: Any) -> Query:
        """A copy with conditions added, as ``column__lookup=value``.

        Lookups: ``between`` (two numbers), ``contains`` (a text, or a list:
        every token), ``contains_any`` (a list), ``endswith``, ``exists``
        (True/False), ``gt``, ``gte``, ``lt``, ``lte`` (numbers), ``in`` (a list
        of texts or of numbers), ``is`` (the default), ``like`` (full-text
        phrase, or a list: all words), ``like_any``, ``matches`` (a regular
        expression), ``search`` (a full-text expression), ``startswith``.
        A number, or a text that ``int()`` reads, selects the numeric
        operator where a lookup has one (``price="5"`` compares numbers).
        """
        return self._filter(False, args, kwargs)

    def hint(self) -> str:
        """Run the query and return the server's explanation of it, as the
        server sends it (it starts with ``"\\x00\\x00[[HINT]]\\n"``)."""
        return self._do_search(hint=True)[-1]

    def intersect(self, other: Query) -> Query:
        """Records matched by this query and by ``other``."""
        return self._add_to_metasearch(other, TyrantProtocol.TDBMSISECT)

    def minus(self, other: Query) -> Query:
        """Records matched by this query but not by ``other``."""
        return self._add_to_metasearch(other, TyrantProtocol.TDBMSDIFF)

    def order_by(self, name: str, numeric: bool = False) -> Query:
        """A copy sorted by column ``name`` (``"-name"``: descending), as text or,
        with ``numeric=True``, as numbers."""
        query = self._clone()
        dash = b"-" if isinstance(name, bytes) else "-"
        if name.startswith(dash):  # type: ignore[arg-type]
            name = name[1:]
            direction = Ordering.DESC
        else:
            direction = Ordering.ASC
        query._ordering = Ordering(name, direction, numeric)
        if self._ordering == query._ordering:
            query._cache = self._cache
        return query

    def set_chunk_size(self, size: int | None = None) -> None:
        """Records per MGET for this query (None: :data:`CACHE_CHUNK_SIZE`);
        drops what it cached."""
        self._cache = ResultCache(self, chunk_size=size)

    def stat(self) -> dict[Any, int]:
        """How many matching records have each column."""
        collected: dict[Any, int] = {}
        for _, data in self[:]:
            for name in data:
                collected[name] = collected.get(name, 0) + 1
        return collected

    def union(self, other: Query) -> Query:
        """Records matched by this query or by ``other``."""
        return self._add_to_metasearch(other, TyrantProtocol.TDBMSUNION)

    def values(self, key: str) -> list[Any]:
        """The distinct values of column ``key`` among the matches (records
        without it are skipped), in the order first seen."""
        return list(dict.fromkeys(d[key] for d in self.columns(key) if key in d))


class Lookup:
    """What kind of value a lookup operator accepts, and how it is sent."""

    has_custom_value = False

    def __init__(self, constant: str, iterable: bool = False, string: bool = False,
                 numeric: bool = False, boolean: bool = False, value: Any = None,
                 min_args: int | None = None, max_args: int | None = None,
                 extra: Callable[[Any], Any] | None = None) -> None:
        self.boolean = boolean
        self.iterable = iterable
        self.numeric = numeric
        self.string = string
        self.operator: int = getattr(TyrantProtocol, constant)
        self.value = value
        if (min_args or max_args) and not iterable:
            raise AssertionError("number of arguments can be specified only for iterables")
        self.min_args = min_args
        self.max_args = max_args
        self.extra = extra

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` (for a list: its first item) has the right type."""
        if self.iterable:
            if not is_iterable(value):
                return False
            if value:
                value = value[0]
        if self.boolean and not isinstance(value, bool):
            return False
        if self.numeric and not isinstance(value, (int, float)) and not is_int_like(value):
            return False
        if self.string and not isinstance(value, (str, bytes)):
            return False
        return True

    def process_value(self, value: Any) -> Any:
        """``value`` through the ``extra`` function (item by item for a list)."""
        if self.extra:
            if is_iterable(value):
                return [self.extra(v) for v in value]
            return self.extra(value)
        return value

    def validate(self, value: Any) -> Any:
        """``value`` if it has an acceptable number of items; else ``ValueError``."""
        if is_iterable(value):
            if self.min_args and len(value) < self.min_args:
                raise ValueError(f"expected at least {self.min_args} arguments")
            if self.max_args and self.max_args < len(value):
                raise ValueError(f"expected at most {self.max_args} arguments")
        return value


class ExistanceLookup(Lookup):
    """A lookup whose value only says yes or no (``exists``)."""

    has_custom_value = True


def _lower(value: Any) -> Any:
    return value.lower()


class Condition:
    """One condition: ``Condition("age__gte", 18)``; ``negate`` inverts it."""

    LOOKUP_DEFINITIONS: dict[str | None, list[Lookup]] = {
        "between": [Lookup("RDBQCNUMBT", iterable=True, numeric=True, min_args=2, max_args=2)],
        "contains": [Lookup("RDBQCSTRINC", string=True),
                     Lookup("RDBQCSTRAND", iterable=True, string=True)],
        "contains_any": [Lookup("RDBQCSTROR", iterable=True, string=True)],
        "endswith": [Lookup("RDBQCSTREW", string=True)],
        "exists": [ExistanceLookup("RDBQCSTRRX", boolean=True, value="")],
        "gt": [Lookup("RDBQCNUMGT", numeric=True)],
        "gte": [Lookup("RDBQCNUMGE", numeric=True)],
        "in": [Lookup("RDBQCSTROREQ", iterable=True, string=True),
               Lookup("RDBQCNUMOREQ", iterable=True, numeric=True)],
        "is": [Lookup("RDBQCNUMEQ", numeric=True), Lookup("RDBQCSTREQ")],
        "like": [Lookup("RDBQCFTSPH", string=True, extra=_lower),
                 Lookup("RDBQCFTSAND", iterable=True, string=True, extra=_lower)],
        "like_any": [Lookup("RDBQCFTSOR", iterable=True, string=True, extra=_lower)],
        "lt": [Lookup("RDBQCNUMLT", numeric=True)],
        "lte": [Lookup("RDBQCNUMLE", numeric=True)],
        "matches": [Lookup("RDBQCSTRRX", string=True)],
        "search": [Lookup("RDBQCFTSEX", string=True)],
        "startswith": [Lookup("RDBQCSTRBW", string=True)],
    }
    LOOKUP_DEFINITIONS[None] = LOOKUP_DEFINITIONS["is"]

    def __init__(self, lookup: str, expr: Any, negate: bool = False) -> None:
        self.name, self.lookup = self._parse_lookup(lookup)
        self.expr = expr
        self.negate = negate

    def __repr__(self) -> str:
        return f"<{self.name} {'not ' if self.negate else ''}{self.lookup} {self.expr!r}>"

    def _clone(self) -> Condition:
        return copy.copy(self)

    def _parse_lookup(self, lookup: str) -> tuple[str, str]:
        if "__" in lookup:
            name, op = lookup.split("__", 1)
            return name, op
        return lookup, "is"

    def prepare(self) -> tuple[str, int, Any]:
        """``(column, operator code, expression)`` as the search sends it."""
        if self.lookup not in self.LOOKUP_DEFINITIONS:
            available = ", ".join(str(x) for x in self.LOOKUP_DEFINITIONS)
            raise NameError(f'Unknown lookup "{self.lookup}". Available are: {available}')
        for definition in self.LOOKUP_DEFINITIONS[self.lookup]:
            if not definition.accepts(self.expr):
                continue
            try:
                value = definition.validate(self.expr)
            except ValueError as exc:
                shown = self.expr if is_iterable(self.expr) else f'"{self.expr}"'
                raise ValueError(f"Bad lookup {self.name}__{self.lookup}={shown}: {exc}") from None
            op = definition.operator
            negate = self.negate
            if definition.has_custom_value:
                if isinstance(value, bool) and not value:
                    negate = not negate  # exists=False: the negated test
                value = definition.value
            else:
                value = definition.process_value(value)
            if negate:
                op |= TyrantProtocol.RDBQCNEGATE
            value = utils.from_python(value)
            if is_iterable(value):  # tokens, as the server splits them
                value = ", ".join(_token_text(x) for x in value)
            return self.name, op, value
        raise ValueError(f'could not find a definition for lookup "{self.lookup}" suitable '
                         f'for value "{self.expr}"')


def _token_text(value: Any) -> str:
    shown = query_text(value) if not isinstance(value, bool) else text(value)
    return shown.decode("utf-8") if isinstance(shown, bytes) else shown


class Ordering:
    """Sort column, direction (``ASC``/``DESC``) and method (text or numeric)."""

    ASC, DESC = 0, 1
    ALPHABETIC, NUMERIC = 0, 1

    PROTOCOL_MAP = {
        DESC: {NUMERIC: TyrantProtocol.RDBQONUMDESC, ALPHABETIC: TyrantProtocol.RDBQOSTRDESC},
        ASC: {NUMERIC: TyrantProtocol.RDBQONUMASC, ALPHABETIC: TyrantProtocol.RDBQOSTRASC},
    }

    def __init__(self, name: Any = None, direction: int | None = None,
                 numeric: bool = False) -> None:
        self.name = name
        self.direction = direction or self.ASC
        self.method = self.NUMERIC if numeric else self.ALPHABETIC

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            raise TypeError(f"Expected {type(self).__name__} instance, got {other!r}")
        return (self.name, self.direction, self.method) == (
            other.name, other.direction, other.method)

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        return bool(self.name)

    def __repr__(self) -> str:
        return (f"<Order by {self.name} ({'desc' if self.direction else 'asc'}, "
                f"{'numeric' if self.method else 'alphabetic'})>")

    @property
    def type(self) -> int:
        """The ``RDBQO*`` code."""
        return self.PROTOCOL_MAP[self.direction][self.method]


class ResultCache:
    """The keys a query matched and its records, fetched chunk by chunk."""

    def __init__(self, query: Query, chunk_size: int | None = None) -> None:
        self.query = query
        self.chunks: dict[int, list[tuple[Any, Any]]] = {}
        self.keys: list[str] | None = None
        self.chunk_size = chunk_size or CACHE_CHUNK_SIZE

    def get_keys(self, getter: Callable[[], Any]) -> list[str]:
        """The cached keys; ``getter()`` provides them the first time."""
        if self.keys is None:
            keys = getter()
            if not hasattr(keys, "__iter__"):
                raise AssertionError(f"getter must return an iterable, got {keys!r}")
            self.keys = list(keys)
        return self.keys

    def get_item(self, index: int) -> tuple[Any, Any]:
        """The item at ``index`` (``IndexError`` past the end)."""
        chunk = self.get_chunk_number(index)
        items = self.get_chunk_data(chunk) or []
        start, _ = self.get_chunk_boundaries(chunk)
        return items[index - start]

    def get_items(self, start: int, stop: int | None = None) -> Iterator[tuple[Any, Any]]:
        """The items from ``start`` up to ``stop`` (a false ``stop``: the end)."""
        if stop and not start < stop:
            raise AssertionError(f"slice start {start} is not below its stop {stop}")
        return self._items(start, stop)

    def _items(self, start: int, stop: int | None) -> Iterator[tuple[Any, Any]]:
        chunk = self.get_chunk_number(start)
        while True:
            chunk_start, _ = self.get_chunk_boundaries(chunk)
            if stop and stop <= chunk_start:
                return
            data = self.get_chunk_data(chunk)
            if data is None:
                return
            for i, item in enumerate(data):
                if stop and stop <= chunk_start + i:
                    return
                if start <= chunk_start + i:
                    yield item
            chunk += 1

    def get_chunk_number(self, index: int) -> int:
        """The chunk holding item ``index``."""
        return index // self.chunk_size

    def get_chunk_boundaries(self, number: int) -> tuple[int, int]:
        """First and last item index of chunk ``number``."""
        start = number * self.chunk_size
        return start, start + self.chunk_size - 1

    def get_chunk_data(self, number: int) -> list[tuple[Any, Any]] | None:
        """The items of chunk ``number`` (one MGET the first time); None past the end."""
        if number not in self.chunks:
            if self.keys is None:
                raise AssertionError("Cache keys must be filled by query")
            start, stop = self.get_chunk_boundaries(number)
            keys = self.keys[start:stop + 1]
            if not keys:
                return None
            query = self.query
            pairs = query._proto.mget(keys, literal=query.literal)
            self.chunks[number] = [(k, query._to_python(v)) for k, v in pairs]
        return self.chunks[number]
