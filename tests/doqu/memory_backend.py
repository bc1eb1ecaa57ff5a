"""A small in-memory doqu backend used to test the core on its own.

It implements the backend contract for real: records are dicts of text
columns kept in a process-wide registry of named databases, queries filter,
order, slice and combine them, and the backend owns its encodings (ISO
dates, JSON lists, ``true``/``false`` booleans -- deliberately not the Tyrant
ones, so tests show that conversion is the backend's business).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

from doqu.backend_base import (
    BaseQueryAdapter,
    BaseStorageAdapter,
    ConverterManager,
    Lookup,
    LookupManager,
)
from doqu.document import Document
from doqu.utils import normalize_key

Record = dict[str, str]
Predicate = Callable[[Record], bool]

converter_manager = ConverterManager()
lookup_manager = LookupManager()


class _Database:
    def __init__(self) -> None:
        self.records: dict[str, Record] = {}
        self.counter = 0


_DATABASES: dict[str, _Database] = {}


def drop_database(name: str) -> None:
    """Forget the named database entirely."""
    _DATABASES.pop(name, None)


# -- converters ------------------------------------------------------------------


@converter_manager.to_db(type(None))
def _none_to_db(value: None, storage: Any) -> str:
    return ""


@converter_manager.to_db(str)
def _str_to_db(value: str, storage: Any) -> str:
    return value


@converter_manager.to_db(bool)
def _bool_to_db(value: bool, storage: Any) -> str:
    return "true" if value else "false"


@converter_manager.register_to_db(int, Decimal)
def _number_to_db(value: Any, storage: Any) -> str:
    return str(value)


@converter_manager.to_db(float)
def _float_to_db(value: float, storage: Any) -> str:
    return repr(value)


@converter_manager.register_to_db(datetime.date, datetime.datetime)
def _date_to_db(value: datetime.date, storage: Any) -> str:
    return value.isoformat()


@converter_manager.register_to_db(list, tuple)
def _list_to_db(value: list[Any], storage: Any) -> str:
    return json.dumps(list(value))


@converter_manager.from_db(str)
def _str_from_db(raw: str, storage: Any) -> str:
    return raw


@converter_manager.from_db(bool)
def _bool_from_db(raw: str, storage: Any) -> bool:
    if raw not in ("true", "false"):
        raise ValueError(f"not a boolean: {raw!r}")
    return raw == "true"


@converter_manager.from_db(int)
def _int_from_db(raw: str, storage: Any) -> int:
    return int(raw)


@converter_manager.from_db(float)
def _float_from_db(raw: str, storage: Any) -> float:
    return float(raw)


@converter_manager.from_db(Decimal)
def _decimal_from_db(raw: str, storage: Any) -> Decimal:
    return Decimal(raw)


@converter_manager.from_db(datetime.date)
def _date_from_db(raw: str, storage: Any) -> datetime.date:
    return datetime.date.fromisoformat(raw)


@converter_manager.from_db(datetime.datetime)
def _datetime_from_db(raw: str, storage: Any) -> datetime.datetime:
    return datetime.datetime.fromisoformat(raw)


@converter_manager.from_db(list)
def _list_from_db(raw: str, storage: Any) -> list[Any]:
    value = json.loads(raw)
    if not isinstance(value, list):
        raise ValueError(f"not a list: {raw!r}")
    return value


# -- lookups ---------------------------------------------------------------------

_UNREADABLE = object()


def _reader(lookup: Lookup, sample: Any) -> Callable[[Record], Any]:
    """Read the lookup's column as the declared type (or the value's type if undeclared)."""
    name, storage = lookup.field, lookup.storage
    kind = lookup.field_type
    if kind is not None and issubclass(kind, Document):
        kind = str
    if kind is None:
        kind = type(sample) if sample is not None else str
        if isinstance(sample, Document):
            kind = str

    def read(record: Record) -> Any:
        if name not in record:
            return _UNREADABLE
        try:
            return converter_manager.from_db(kind, record[name], storage)
        except (ValueError, TypeError, ArithmeticError):
            return _UNREADABLE

    return read


def _plain(value: Any) -> Any:
    return value.pk if isinstance(value, Document) else value


def _comparison(test: Callable[[Any, Any], bool]) -> Callable[[Lookup], Predicate]:
    def processor(lookup: Lookup) -> Predicate:
        expected = _plain(lookup.value)
        read = _reader(lookup, expected)

        def predicate(record: Record) -> bool:
            value = read(record)
            if value is _UNREADABLE or value is None:
                return False
            try:
                return test(value, expected)
            except TypeError:
                return False

        return predicate

    return processor


lookup_manager.register("equals")(_comparison(lambda a, b: a == b))
lookup_manager.register("gt")(_comparison(lambda a, b: a > b))
lookup_manager.register("gte")(_comparison(lambda a, b: a >= b))
lookup_manager.register("lt")(_comparison(lambda a, b: a < b))
lookup_manager.register("lte")(_comparison(lambda a, b: a <= b))
lookup_manager.register("startswith")(_comparison(lambda a, b: str(a).startswith(b)))
lookup_manager.register("endswith")(_comparison(lambda a, b: str(a).endswith(b)))
lookup_manager.register("contains")(_comparison(lambda a, b: b in a))


@lookup_manager.register("in")
def _in(lookup: Lookup) -> Predicate:
    choices = [_plain(choice) for choice in lookup.value]
    read = _reader(lookup, choices[0] if choices else None)
    return lambda record: read(record) in choices


@lookup_manager.register("between")
def _between(lookup: Lookup) -> Predicate:
    low, high = lookup.value
    read = _reader(lookup, low)

    def predicate(record: Record) -> bool:
        value = read(record)
        if value is _UNREADABLE or value is None:
            return False
        try:
            return bool(low <= value <= high)
        except TypeError:
            return False

    return predicate


@lookup_manager.register("exists")
def _exists(lookup: Lookup) -> Predicate:
    name, wanted = lookup.field, bool(lookup.value)
    return lambda record: (name in record) is wanted


@lookup_manager.register("matches")
def _matches(lookup: Lookup) -> Predicate:
    name, pattern = lookup.field, re.compile(lookup.value)
    return lambda record: name in record and pattern.search(record[name]) is not None


# -- adapters --------------------------------------------------------------------


def _everything(record: Record) -> bool:
    return True


class QueryAdapter(BaseQueryAdapter[Any]):
    """Filters, orders and combines the records of one in-memory database."""

    def __init__(self, storage: StorageAdapter, doc_class: type[Any]) -> None:
        super().__init__(storage, doc_class)
        self._match: Predicate = _everything
        self._order: tuple[str, bool] | None = None

    def where(self, **conditions: Any) -> QueryAdapter:
        tests, previous = self._resolve(conditions), self._match
        return self._clone(_match=lambda r: previous(r) and all(t(r) for t in tests))

    def where_not(self, **conditions: Any) -> QueryAdapter:
        tests, previous = self._resolve(conditions), self._match
        return self._clone(_match=lambda r: previous(r) and not all(t(r) for t in tests))

    def order_by(self, name: str, reverse: bool = False) -> QueryAdapter:
        return self._clone(_order=self._parse_order(name, reverse))

    def _union(self, other: QueryAdapter) -> QueryAdapter:
        a, b = self._match, other._match
        return self._clone(_match=lambda r: a(r) or b(r))

    def _intersection(self, other: QueryAdapter) -> QueryAdapter:
        a, b = self._match, other._match
        return self._clone(_match=lambda r: a(r) and b(r))

    def _difference(self, other: QueryAdapter) -> QueryAdapter:
        a, b = self._match, other._match
        return self._clone(_match=lambda r: a(r) and not b(r))

    def _records(self) -> list[tuple[str, Record]]:
        records = self.storage._db.records  # type: ignore[attr-defined]
        matched = [(key, record) for key, record in records.items() if self._match(record)]
        if self._order is None:
            return matched
        name, descending = self._order
        read = _reader(Lookup(name, "order", None, self._field_type(name), None, self.storage), "")
        present = [(read(r), k, r) for k, r in matched if read(r) not in (_UNREADABLE, None)]
        missing = [(k, r) for k, r in matched if read(r) in (_UNREADABLE, None)]
        present.sort(key=lambda item: item[0], reverse=descending)
        return [(k, r) for _, k, r in present] + missing

    def _field_type(self, name: str) -> type | None:
        type_of = getattr(self.doc_class, "field_type", None)
        return type_of(name) if type_of else None

    def _document(self, key: str, record: Record) -> Any:
        return self.doc_class.from_storage(self.storage, key, dict(record))

    def count(self) -> int:
        return len(self._records())

    def values(self, name: str) -> list[Any]:
        field_type = self._field_type(name)
        seen: list[Any] = []
        for _, record in self._records():
            if name not in record:
                continue
            raw = value = record[name]
            if field_type is not None and not issubclass(field_type, Document):
                try:
                    value = converter_manager.from_db(field_type, raw, self.storage)
                except (ValueError, TypeError, ArithmeticError):
                    value = raw
            if value not in seen:
                seen.append(value)
        return seen

    def delete(self) -> int:
        records = self.storage._db.records  # type: ignore[attr-defined]
        found = self._records()
        for key, _ in found:
            del records[key]
        return len(found)

    def __iter__(self) -> Iterator[Any]:
        for key, record in self._records():
            yield self._document(key, record)

    def __getitem__(self, index: Any) -> Any:
        selected = self._records()[index]
        if isinstance(index, slice):
            return [self._document(key, record) for key, record in selected]
        return self._document(*selected)


class StorageAdapter(BaseStorageAdapter):
    """One connection to the in-memory database called ``name``."""

    converter_manager = converter_manager
    lookup_manager = lookup_manager
    query_adapter = QueryAdapter

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._db: _Database | None = None
        super().__init__(name=name)

    def _connect(self) -> None:
        self._db = _DATABASES.setdefault(self.name, _Database())

    def _disconnect(self) -> None:
        self._db = None

    @property
    def records(self) -> dict[str, Record]:
        """The raw stored records (tests look at what was really written)."""
        assert self._db is not None
        return self._db.records

    def get(self, doc_class: type[Any], primary_key: str | int) -> Any:
        key = normalize_key(primary_key)
        try:
            record = self.records[key]
        except KeyError:
            raise KeyError(primary_key) from None
        return doc_class.from_storage(self, key, dict(record))

    def save(self, data: dict[str, Any], primary_key: str | int | None = None) -> str:
        for name, value in data.items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise TypeError(f"only text columns can be stored: {name!r}={value!r}")
        assert self._db is not None
        if primary_key is None:
            while True:
                self._db.counter += 1
                key = str(self._db.counter)
                if key not in self._db.records:
                    break
        else:
            key = normalize_key(primary_key)
        self._db.records[key] = dict(data)
        return key

    def delete(self, primary_key: str | int) -> None:
        key = normalize_key(primary_key)
        if key not in self.records:
            raise KeyError(primary_key)
        del self.records[key]

    def clear(self) -> None:
        assert self._db is not None
        self._db.records.clear()
        self._db.counter = 0

    def __contains__(self, primary_key: object) -> bool:
        try:
            return normalize_key(primary_key) in self.records
        except (TypeError, ValueError):
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.records))

    def __len__(self) -> int:
        return len(self.records)
