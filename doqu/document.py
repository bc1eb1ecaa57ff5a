"""``Document``: a dict-like record with a declared structure, validators and references."""

from __future__ import annotations

import copy
import datetime
import reprlib
import sys
import warnings
from abc import ABCMeta
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, MutableMapping
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from doqu.converters import ConverterManager, ConverterNotFound, FromDb, ToDb
from doqu.utils import import_object, normalize_key
from doqu.validators import Optional as OptionalValidator
from doqu.validators import StopValidation, ValidationError

if TYPE_CHECKING:
    from doqu.backend_base import BaseQueryAdapter, BaseStorageAdapter

__all__ = [
    "BrokenReference",
    "Document",
    "DocumentMeta",
    "IncomingDataError",
    "IncomingDataWarning",
]

_D = TypeVar("_D", bound="Document")
_Q = TypeVar("_Q", bound="BaseQueryAdapter[Any]")

FieldType = type | str
ValidatorFunc = Callable[[Any, Any], Any]


class IncomingDataWarning(UserWarning):
    """A stored value could not be read as its declared type; it is kept as stored."""


class IncomingDataError(ValueError):
    """A stored value could not be read as its declared type
    (``break_on_invalid_incoming_data = True``)."""

    def __init__(self, message: str, *, field: str, raw: Any, key: str | None) -> None:
        super().__init__(message)
        self.field = field
        self.raw = raw
        self.key = key


class BrokenReference(LookupError):
    """A reference field names a primary key that its storage does not hold."""


class _Reference:
    """A referenced document's primary key, not fetched yet."""

    __slots__ = ("pk",)

    def __init__(self, pk: str) -> None:
        self.pk = pk

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reference) and other.pk == self.pk

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<reference {self.pk!r}>"


_MERGED_DICTS = ("structure", "defaults", "labels", "incoming_processors", "outgoing_processors")
_DECLARED = (*_MERGED_DICTS, "validators", "skip_type_conversion")
_MISSING: Any = object()
_NO_COLUMNS: frozenset[str] = frozenset()
# The empty ``_raw_invalid`` shared by documents until one needs its own: it is
# replaced, never written to (a plain dict, so documents still pickle).
_NO_RAW: Mapping[str, Any] = {}

# Exact classes whose instances are never documents nor references: the hot paths
# skip the (slow, ABC) ``isinstance(value, Document)`` checks for them.
_PLAIN_TYPES = frozenset({
    str, int, float, bool, type(None), Decimal, datetime.date, datetime.datetime,
    datetime.time, list, tuple, dict, set, bytes,
})

# Reading plan modes (see Document._reading_plan).
_CONVERT, _SKIP, _REFERENCE = 0, 1, 2
#: One structure field in a reading plan: name, mode, type, converter, processor.
_ReadStep = tuple[str, int, "type | None", "FromDb | None", Any]


class DocumentMeta(ABCMeta):
    """Merges the declarative class attributes of a Document class with its bases'.

    ``structure``, ``defaults``, ``labels``, ``incoming_processors`` and
    ``outgoing_processors`` are merged dicts (the subclass wins per key);
    ``validators`` lists are concatenated per field (bases first);
    ``skip_type_conversion`` field collections are united, a bool replaces.
    Other attributes inherit the normal way.
    """

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> DocumentMeta:
        cls = super().__new__(mcls, name, bases, namespace, **kwargs)
        own = {attr: namespace[attr] for attr in _DECLARED if attr in namespace}
        _check_declarations(name, own)
        if "validators" in own:
            own["validators"] = {
                field: list(chain) if isinstance(chain, (list, tuple)) else [chain]
                for field, chain in own["validators"].items()
            }
        cls._declared = own  # type: ignore[attr-defined]

        merged: dict[str, dict[str, Any]] = {attr: {} for attr in _MERGED_DICTS}
        validators: dict[str, list[ValidatorFunc]] = {}
        declared_by: dict[str, type] = {}
        skip: bool | frozenset[str] = False
        for klass in reversed(cls.__mro__):
            declared = klass.__dict__.get("_declared")
            if declared is None:
                continue
            for attr in _MERGED_DICTS:
                merged[attr].update(declared.get(attr, {}))
            for field in declared.get("structure", {}):
                declared_by[field] = klass
            for field, chain in declared.get("validators", {}).items():
                validators.setdefault(field, []).extend(chain)
            if "skip_type_conversion" in declared:
                skip = _merge_skip(skip, declared["skip_type_conversion"])
        for attr, value in merged.items():
            setattr(cls, attr, value)
        cls.validators = validators  # type: ignore[attr-defined]
        cls.skip_type_conversion = skip  # type: ignore[attr-defined]
        cls._declared_by = declared_by  # type: ignore[attr-defined]
        cls._field_types = {}  # type: ignore[attr-defined]
        return cls


def _check_declarations(class_name: str, own: dict[str, Any]) -> None:
    for attr in (*_MERGED_DICTS, "validators"):
        if attr in own and not isinstance(own[attr], Mapping):
            raise TypeError(f"{class_name}.{attr} must be a dict, not {type(own[attr]).__name__}")
    for field, declared in own.get("structure", {}).items():
        if not isinstance(field, str):
            raise TypeError(f"{class_name}.structure: field names must be text, not {field!r}")
        if not isinstance(declared, (type, str)):
            raise TypeError(
                f"{class_name}.structure[{field!r}] must be a type, a Document subclass, "
                f"'self' or a dotted path, not {declared!r}"
            )
    for field, chain in own.get("validators", {}).items():
        items = chain if isinstance(chain, (list, tuple)) else [chain]
        for validator in items:
            if not callable(validator):
                raise TypeError(
                    f"{class_name}.validators[{field!r}]: {validator!r} is not callable"
                )
    for attr in ("incoming_processors", "outgoing_processors"):
        for field, processor in own.get(attr, {}).items():
            if not callable(processor):
                raise TypeError(f"{class_name}.{attr}[{field!r}] is not callable")
    skip = own.get("skip_type_conversion", False)
    if not isinstance(skip, bool) and (
        isinstance(skip, str) or not isinstance(skip, Collection)
    ):
        raise TypeError(f"{class_name}.skip_type_conversion must be a bool or field names")


def _merge_skip(previous: bool | frozenset[str], declared: Any) -> bool | frozenset[str]:
    if isinstance(declared, bool):
        return declared
    if isinstance(previous, bool):
        return True if previous else frozenset(declared)
    return previous | frozenset(declared)


class Document(MutableMapping[str, Any], metaclass=DocumentMeta):
    """A dict-like document, optionally with a declared structure.

    Subclasses declare, all optional and merged with their bases' (see
    :class:`DocumentMeta`):

    ``structure``
        field → type: ``str, int, float, bool, Decimal, date, datetime,
        list``, any other type the backend has converters for, or a
        reference: a Document subclass, ``"self"``, a class name in the same
        module or a dotted path ``"pkg.module.Class"`` (resolved on first use).
        Without a structure a document takes any fields and reads them back
        as stored.
    ``validators``
        field → list of ``validator(document, value)`` (see
        :mod:`doqu.validators`).
    ``defaults``
        field → value, or a callable giving it; applied by the constructor
        to fields it was not given.
    ``labels``
        field → human-readable name.
    ``incoming_processors`` / ``outgoing_processors``
        field → ``callable(value)`` applied to non-``None`` values after
        loading / before saving (after / before type conversion).
    ``skip_type_conversion``
        ``True`` or a collection of field names whose values go to and from
        storage without conversion.
    ``use_dot_notation``
        ``doc.name`` reads and writes field ``name``.
    ``break_on_invalid_incoming_data``
        raise :class:`IncomingDataError` on a stored value that cannot be read
        as its type, instead of warning and keeping the raw value.

    Values are kept as given; type checks and validators run in
    :meth:`validate`, which :meth:`save` calls. Structure fields always read
    (``None`` when unset). Columns a stored record has outside the structure
    are kept in the document and written back.
    """

    structure: ClassVar[dict[str, FieldType]] = {}
    validators: ClassVar[dict[str, list[ValidatorFunc]]] = {}
    defaults: ClassVar[dict[str, Any]] = {}
    labels: ClassVar[dict[str, str]] = {}
    incoming_processors: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    outgoing_processors: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    skip_type_conversion: ClassVar[bool | Collection[str]] = False
    use_dot_notation: ClassVar[bool] = False
    break_on_invalid_incoming_data: ClassVar[bool] = False

    _declared_by: ClassVar[dict[str, type]]
    _field_types: ClassVar[dict[str, type]]
    _last_reading_plan: ClassVar[tuple[Any, ...] | None] = None
    _last_writing_plan: ClassVar[tuple[Any, ...] | None] = None

    _data: dict[str, Any]
    _pk: str | None
    _storage: BaseStorageAdapter | None
    _stored_columns: frozenset[str]
    _raw_invalid: Mapping[str, Any]  # replaced, never mutated (shared while empty)

    def __init__(self, data: Mapping[str, Any] | None = None, /, **fields: Any) -> None:
        """Build an unsaved document from a mapping and/or keywords (keywords win)."""
        self._init_state()
        given = dict(data or {})
        given.update(fields)
        cls = type(self)
        for name in cls.structure:
            self._data[name] = None
        for name, default in cls.defaults.items():
            if name not in given:
                self._data[name] = _default_value(default)
        for name, value in given.items():
            self[name] = value

    def _init_state(self) -> None:
        # Plain attribute writes without __setattr__'s dot-notation checks (loading is hot).
        self.__dict__.update(
            _data={}, _pk=None, _storage=None, _stored_columns=_NO_COLUMNS, _raw_invalid=_NO_RAW
        )

    def __copy__(self: _D) -> _D:
        """A copy with its own field dict (same key and storage: saving it updates that record)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._data = dict(self._data)
        clone._raw_invalid = self._raw_invalid  # never mutated: safe to share
        return clone

    def __deepcopy__(self: _D, memo: dict[int, Any]) -> _D:
        """Like :meth:`__copy__` with values deep-copied; the storage is shared, not copied."""
        clone = self.__copy__()
        memo[id(self)] = clone
        clone._data = copy.deepcopy(self._data, memo)
        return clone

    # -- identity -------------------------------------------------------------------

    @property
    def pk(self) -> str | None:
        """The primary key (text) once saved or loaded, else ``None``."""
        return self._pk

    @property
    def storage(self) -> BaseStorageAdapter | None:
        """The storage the document was loaded from or last saved to."""
        return self._storage

    def __eq__(self, other: object) -> bool:
        """Equal: same class, same primary key, same data (references by key)."""
        if not isinstance(other, Document):
            return NotImplemented
        return (
            type(self) is type(other)
            and self._pk == other._pk
            and self._comparable() == other._comparable()
        )

    __hash__ = None  # type: ignore[assignment]

    def _comparable(self) -> dict[str, Any]:
        data = dict.fromkeys(type(self).structure)
        data.update(self._data)
        return {name: _reference_key(value) for name, value in data.items()}

    @reprlib.recursive_repr()
    def __repr__(self) -> str:
        state = repr(self._pk) if self._pk is not None else "unsaved"
        fields = ", ".join(f"{k!r}: {_short_repr(v)}" for k, v in self._data.items())
        return f"<{type(self).__name__} {state} {{{fields}}}>"

    # -- mapping --------------------------------------------------------------------

    def __getitem__(self, name: str) -> Any:
        try:
            value = self._data[name]
        except KeyError:
            if name in type(self).structure:
                return None
            raise
        if isinstance(value, _Reference):
            value = self._fetch_reference(name, value)
        return value

    def __setitem__(self, name: str, value: Any) -> None:
        if not isinstance(name, str):
            raise TypeError(f"field names are text, not {type(name).__name__}")
        self._data[name] = value

    def __delitem__(self, name: str) -> None:
        del self._data[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, name: object) -> bool:
        return name in self._data

    def clear(self) -> None:
        """Remove every field (structure fields then read as ``None``)."""
        self._data.clear()

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and type(self).use_dot_notation:
            if name in self._data or name in type(self).structure:
                return self[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        cls = type(self)
        if not name.startswith("_") and cls.use_dot_notation and (
            name in cls.structure or name in self._data or not hasattr(cls, name)
        ):
            self[name] = value
        else:
            object.__setattr__(self, name, value)

    # -- structure ------------------------------------------------------------------

    @classmethod
    def field_type(cls, name: str) -> type | None:
        """The declared type of ``name`` with references resolved, or ``None`` if undeclared."""
        declared = cls.structure.get(name)
        if declared is None or isinstance(declared, type):
            return declared
        cache = cls._field_types
        if name not in cache:
            cache[name] = _resolve_reference(cls, name, declared)
        return cache[name]

    @classmethod
    def _skips_conversion(cls, name: str) -> bool:
        skip = cls.skip_type_conversion
        return skip if isinstance(skip, bool) else name in skip

    # -- validation -----------------------------------------------------------------

    def validate(self) -> None:
        """Check types and run validators; raise :class:`ValidationError` naming every
        failing field (``.errors`` maps field → messages)."""
        errors = self._collect_errors()
        if errors:
            details = "; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in errors.items())
            raise ValidationError(f"invalid {type(self).__name__}: {details}", errors)

    def is_valid(self) -> bool:
        """Whether :meth:`validate` would pass."""
        return not self._collect_errors()

    def _collect_errors(self) -> dict[str, list[str]]:
        cls = type(self)
        data = self._data
        structure = cls.structure
        raw_invalid = self._raw_invalid
        errors: dict[str, list[str]] = {}
        if structure and not data.keys() <= structure.keys():
            for name in data:
                if name not in structure and name not in self._stored_columns:
                    errors.setdefault(name, []).append(
                        f"Unknown field: not in the structure of {cls.__name__}."
                    )
        passing = _PASSING
        for name, declared in structure.items():
            value = data.get(name)
            # Fast path: a value whose exact class always passes (or is skipped).
            classes = passing.get(declared)
            if classes is None:
                classes = _passing_classes(declared)
            if type(value) in classes:
                continue
            if value is None or isinstance(value, _Reference) or (
                raw_invalid and self._kept_raw(name)
            ):
                continue
            field_type = cls.field_type(name)
            if not _type_matches(value, field_type):
                errors.setdefault(name, []).append(
                    f"Expected {_type_name(field_type)}, got {type(value).__name__} {value!r}."
                )
        for name, chain in cls.validators.items():
            if name in errors or (raw_invalid and self._kept_raw(name)):
                continue
            try:
                value = self[name] if name in self._data else None
            except BrokenReference as exc:
                errors.setdefault(name, []).append(str(exc))
                continue
            for validator in chain:
                try:
                    validator(self, value)
                except StopValidation as exc:
                    if exc.message:
                        errors.setdefault(name, []).append(exc.message)
                    break
                except ValidationError as exc:
                    errors.setdefault(name, []).append(exc.message or "Invalid value.")
        return errors

    def _kept_raw(self, name: str) -> bool:
        """Whether ``name`` still holds a stored value that could not be converted."""
        if name not in self._raw_invalid:
            return False
        raw, value = self._raw_invalid[name], self._data.get(name, _MISSING)
        return type(value) is type(raw) and value == raw

    # -- storage --------------------------------------------------------------------

    def save(self, db: BaseStorageAdapter | None = None, keep_key: bool = False) -> str:
        """Validate, save unsaved referenced documents, write the whole record; return its key.

        ``db`` defaults to the storage the document came from. Saving to a
        different storage creates a new record there unless ``keep_key``.
        Raises :class:`ValidationError` (for this or a referenced unsaved
        document) before anything is written.
        """
        storage = db if db is not None else self._storage
        if storage is None:
            raise RuntimeError(
                f"{type(self).__name__} has no storage yet: pass one, e.g. doc.save(db)"
            )
        same = self._storage is None or storage is self._storage
        pk = self._pk if same or keep_key else None
        pending = self._unsaved_references()
        self.validate()
        for document in pending:
            document.validate()
        for document in pending:
            document._write(storage, None)
        return self._write(storage, pk)

    def _write(self, storage: BaseStorageAdapter, pk: str | None) -> str:
        record = self._to_storage(storage)
        return self._saved(storage, storage.save(record, primary_key=pk), record)

    def _saved(self, storage: BaseStorageAdapter, key: str | int, record: Mapping[str, Any]) -> str:
        """Note that ``record`` (from :meth:`_to_storage`) is stored under ``key``
        (backends that write documents in bulk call this); return the key as text."""
        if type(key) is not str:
            key = normalize_key(key)
        # Plain attribute writes without __setattr__'s dot-notation checks.
        state = self.__dict__
        state["_pk"] = key
        state["_storage"] = storage
        structure = type(self).structure
        state["_stored_columns"] = (
            _NO_COLUMNS if record is structure or record.keys() <= structure.keys()
            else frozenset(name for name in record if name not in structure)
        )
        return key

    def _unsaved_references(self) -> list[Document]:
        """Unsaved documents referenced (transitively) by this one, dependencies first."""
        if _PLAIN_TYPES.issuperset(map(type, self._data.values())):
            return []  # the common case, checked in C: no document among the values
        order: list[Document] = []
        visiting, done = {id(self)}, set()

        def visit(document: Document) -> None:
            for value in document._data.values():
                if not isinstance(value, Document) or value._pk is not None:
                    continue
                if id(value) in visiting:
                    raise ValueError(
                        f"circular reference between unsaved documents "
                        f"({type(document).__name__} → {type(value).__name__}): "
                        "save one of them without the reference first"
                    )
                if id(value) in done:
                    continue
                visiting.add(id(value))
                visit(value)
                visiting.discard(id(value))
                done.add(id(value))
                order.append(value)

        visit(self)
        return order

    def _to_storage(self, storage: BaseStorageAdapter) -> dict[str, Any]:
        cls = type(self)
        manager = storage.converter_manager
        raw_invalid = self._raw_invalid
        processors = cls.outgoing_processors
        skip = cls.skip_type_conversion
        data = self._data
        structure = cls.structure
        # Structure fields first (``None`` when unset), then the other columns.
        names: Iterable[str] = structure
        if not data.keys() <= structure.keys():
            names = [*structure, *(name for name in data if name not in structure)]
        get = data.get
        record: dict[str, Any] = {}
        if type(manager) is not ConverterManager or raw_invalid or skip is not False:
            to_db = manager.to_db
            for name in names:
                value = get(name)
                if raw_invalid and self._kept_raw(name):
                    record[name] = raw_invalid[name]
                    continue
                if isinstance(value, (_Reference, Document)):
                    value = value.pk
                elif value is not None and processors and name in processors:
                    value = processors[name](value)
                if not (skip if isinstance(skip, bool) else name in skip):
                    value = to_db(value, storage)
                record[name] = value
            return record
        # The common case: every value converted by the stock manager, whose
        # ``to_db(value, storage)`` is ``get_to_db(type(value))(value, storage)``;
        # converters it has looked up already are read from its cache directly.
        found = manager._to_db_found.get
        converter_for = manager.get_to_db
        plain = _PLAIN_TYPES
        if not processors:
            # Faster still: a structure field holding a value of exactly its declared
            # class (or None) takes the converter the plan resolved for that class.
            for name, expected, convert, convert_none in cls._writing_plan(manager):
                value = get(name)
                if value.__class__ is expected:
                    record[name] = convert(value, storage)
                elif value is None:
                    record[name] = convert_none(None, storage)
                else:
                    kind = type(value)
                    if kind not in plain and isinstance(value, (_Reference, Document)):
                        value = value.pk
                        kind = type(value)
                    record[name] = (found(kind) or converter_for(kind))(value, storage)
            if names is structure:
                return record
            names = [name for name in names if name not in structure]
        for name in names:
            value = get(name)
            kind = type(value)
            if kind not in plain and isinstance(value, (_Reference, Document)):
                value = value.pk
                kind = type(value)
            elif processors and value is not None and name in processors:
                value = processors[name](value)
                kind = type(value)
            record[name] = (found(kind) or converter_for(kind))(value, storage)
        return record

    @classmethod
    def _writing_plan(cls, manager: ConverterManager) -> list[tuple[str, Any, ToDb, ToDb]]:
        """Per structure field: name, the class whose values its converter is resolved
        for (the declared type; ``_MISSING`` for a reference or a type without a
        converter), that converter and the one of ``None``.

        Cached per class and converter manager, like :meth:`_reading_plan`; only
        used with the stock manager, without processors or skipped conversions.
        """
        structure, revision = cls.structure, manager.revision
        last = cls._last_writing_plan
        if last is not None and last[0] is cls and last[1] is manager and last[2] == revision \
                and last[3] is structure:
            return last[4]  # type: ignore[no-any-return]
        convert_none = manager.get_to_db(type(None))
        plan: list[tuple[str, Any, ToDb, ToDb]] = []
        for name, declared in structure.items():
            expected: Any = _MISSING
            convert: ToDb = convert_none  # (not called: no value's class is _MISSING)
            if isinstance(declared, type) and not _is_reference(declared):
                try:
                    convert = manager.get_to_db(declared)
                    expected = declared
                except ConverterNotFound:
                    pass
            plan.append((name, expected, convert, convert_none))
        cls._last_writing_plan = (cls, manager, revision, structure, plan)
        return plan

    @classmethod
    def from_storage(
        cls: type[_D], storage: BaseStorageAdapter, key: str | int, data: Mapping[str, Any]
    ) -> _D:
        """Build a document from a raw stored record (backends call this).

        Structure fields are converted with the storage's converters (a
        missing column gives ``None``); other columns are kept as stored.
        A value that cannot be converted is kept raw with an
        :class:`IncomingDataWarning` (or :class:`IncomingDataError` with
        ``break_on_invalid_incoming_data``).
        """
        document = cls.__new__(cls)
        values: dict[str, Any] = {}
        # Plain attribute writes without __setattr__'s dot-notation checks (loading is hot).
        state = document.__dict__
        state.update(
            _data=values, _pk=key if type(key) is str else normalize_key(key),
            _storage=storage, _stored_columns=_NO_COLUMNS, _raw_invalid=_NO_RAW,
        )
        manager = storage.converter_manager
        get = data.get
        plan, simple = cls._reading_plan(manager)
        if simple is not None:
            # Every field converted, by a converter known in advance, unprocessed.
            for name, convert, field_type in simple:
                raw = get(name)
                if raw.__class__ is str and raw:
                    # What manager.from_db does for non-empty text, one call level less.
                    try:
                        values[name] = convert(raw, storage)
                    except ConverterNotFound:
                        raise
                    except (ValueError, TypeError, ArithmeticError) as exc:
                        values[name] = document._unreadable(name, field_type, raw, exc, 3)
                else:
                    values[name] = document._incoming(name, field_type, raw, storage)
        else:
            document._read_fields(plan, data, storage)
        structure = cls.structure
        if not data.keys() <= structure.keys():
            extra = [name for name in data if name not in structure]
            for name in extra:
                value = data[name]
                if value is not None and name in cls.incoming_processors:
                    value = cls.incoming_processors[name](value)
                values[name] = value
            state["_stored_columns"] = frozenset(extra)
        return document

    def _read_fields(
        self, plan: list[_ReadStep], data: Mapping[str, Any], storage: BaseStorageAdapter
    ) -> None:
        """Structure fields of ``data`` converted into ``self._data`` (see :meth:`from_storage`)."""
        values = self._data
        manager = storage.converter_manager
        get = data.get
        for name, mode, field_type, convert, processor in plan:
            raw = get(name)
            if mode == _CONVERT:
                if convert is not None and raw.__class__ is str and raw:
                    try:
                        value = convert(raw, storage)
                    except ConverterNotFound:
                        raise
                    except (ValueError, TypeError, ArithmeticError) as exc:
                        # stacklevel 4: the caller of from_storage
                        values[name] = self._unreadable(name, field_type, raw, exc, 4)
                        continue
                else:
                    value = self._incoming(name, field_type, raw, storage, 5)
                    if name in self._raw_invalid:
                        values[name] = value
                        continue
            elif mode == _SKIP:
                value = raw
            else:
                ref = manager.from_db(str, raw, storage)
                values[name] = None if ref is None or ref == "" else _Reference(normalize_key(ref))
                continue
            if value is not None and processor is not None:
                value = processor(value)
            values[name] = value

    @classmethod
    def _reading_plan(
        cls, manager: ConverterManager
    ) -> tuple[list[_ReadStep], list[tuple[str, FromDb, type]] | None]:
        """Per structure field: name, mode (convert, skip conversion or reference),
        declared type, its ``from_db`` converter in ``manager`` (None: not resolved,
        go through ``manager.from_db``), incoming processor. Second, when every
        field is converted by a known converter and none has a processor, the
        same as ``(name, converter, type)`` (the fast path), else ``None``.

        Cached per class and converter manager; rebuilt when those declarations are
        replaced or a converter is registered.
        """
        structure, processors = cls.structure, cls.incoming_processors
        skip_declared = cls.skip_type_conversion
        revision = getattr(manager, "revision", None)
        # The last plan used (checked first: one class attribute, no dict lookups).
        last = cls._last_reading_plan
        if (last is not None and last[0] is cls and last[1] is manager and last[2] == revision
                and last[3] is structure and last[4] is processors
                and last[5] == skip_declared):
            return last[6]  # type: ignore[no-any-return]
        plans = cls.__dict__.get("_reading_plans")
        if plans is None:
            plans = {}
            cls._reading_plans = plans  # type: ignore[attr-defined]
        cached = plans.get(id(manager))
        if (cached is not None and cached[1] is manager and cached[2] == revision
                and cached[3] is structure and cached[4] is processors
                and cached[5] == skip_declared):
            cls._last_reading_plan = cached
            return cached[6]  # type: ignore[no-any-return]
        # A manager whose from_db is customised is always asked through from_db.
        direct = getattr(type(manager), "from_db", None) is ConverterManager.from_db
        plan: list[_ReadStep] = []
        for name in structure:
            convert: FromDb | None = None
            if cls._skips_conversion(name):
                mode, field_type = _SKIP, None
            else:
                field_type = cls.field_type(name)
                if _is_reference(field_type):
                    mode = _REFERENCE
                else:
                    mode = _CONVERT
                    if direct and field_type is not None:
                        try:
                            convert = manager.get_from_db(field_type)
                        except ConverterNotFound:
                            convert = None  # raised by from_db when a value needs it
            plan.append((name, mode, field_type, convert, processors.get(name)))
        simple: list[tuple[str, FromDb, type]] | None = []
        for name, mode, field_type, convert, processor in plan:
            if mode != _CONVERT or convert is None or processor is not None:
                simple = None
                break
            assert simple is not None and field_type is not None
            simple.append((name, convert, field_type))
        entry = (cls, manager, revision, structure, processors, skip_declared, (plan, simple))
        plans[id(manager)] = cls._last_reading_plan = entry
        return plan, simple

    def _incoming(
        self, name: str, field_type: Any, raw: Any, storage: BaseStorageAdapter,
        stacklevel: int = 4,
    ) -> Any:
        """``raw`` converted to ``field_type``, or kept raw (warning/error) if it cannot be."""
        try:
            return storage.converter_manager.from_db(field_type, raw, storage)
        except ConverterNotFound:
            raise
        except (ValueError, TypeError, ArithmeticError) as exc:
            return self._unreadable(name, field_type, raw, exc, stacklevel)

    def _unreadable(
        self, name: str, field_type: Any, raw: Any, exc: Exception, stacklevel: int
    ) -> Any:
        """``raw`` kept (warning) or refused (``break_on_invalid_incoming_data``) after
        ``exc``; ``stacklevel`` makes the warning point at ``from_storage``'s caller."""
        cls = type(self)
        message = (
            f"{cls.__name__} {self._pk!r}: field {name!r} holds {raw!r}, "
            f"which cannot be read as {_type_name(field_type)} ({_reason(exc)})"
        )
        if cls.break_on_invalid_incoming_data:
            raise IncomingDataError(message, field=name, raw=raw, key=self._pk) from exc
        warnings.warn(
            message + "; kept as stored and written back unchanged",
            IncomingDataWarning,
            stacklevel=stacklevel,
        )
        self.__dict__["_raw_invalid"] = {**self._raw_invalid, name: raw}
        return raw

    def _fetch_reference(self, name: str, reference: _Reference) -> Document:
        target = cast("type[Document]", type(self).field_type(name))
        storage = self._storage
        assert _is_reference(target) and storage is not None
        try:
            document = storage.get(target, reference.pk)
        except KeyError:
            raise BrokenReference(
                f"{type(self).__name__}.{name} refers to {target.__name__} "
                f"{reference.pk!r}, which is not in the database"
            ) from None
        self._data[name] = document
        return document

    def delete(self) -> None:
        """Delete the record from its storage; the document becomes unsaved (``pk`` None)."""
        if self._pk is None or self._storage is None:
            raise RuntimeError(f"cannot delete an unsaved {type(self).__name__}")
        self._storage.delete(self._pk)
        self._pk = None

    # -- queries --------------------------------------------------------------------

    @classmethod
    def objects(cls: type[_D], db: BaseStorageAdapter) -> BaseQueryAdapter[_D]:
        """All documents of this class in ``db``: the same as ``db.find(cls)``."""
        return db.find(cls)

    @classmethod
    def contribute_to_query(cls, query: _Q) -> _Q:
        """Narrow ``query`` by the validators that can say so as conditions.

        Each field's chain contributes up to its first :class:`Optional`
        (later validators do not hold for empty values).
        """
        for name, chain in cls.validators.items():
            for validator in chain:
                if isinstance(validator, OptionalValidator):
                    break
                filter_query = getattr(validator, "filter_query", None)
                if filter_query is not None:
                    query = filter_query(query, name)
        return query


def _default_value(default: Any) -> Any:
    if callable(default):
        return default()
    if isinstance(default, (list, dict, set)):
        return copy.deepcopy(default)
    return default


def _is_reference(field_type: type | None) -> bool:
    return isinstance(field_type, type) and issubclass(field_type, Document)


def _resolve_reference(cls: type[Document], name: str, declared: str) -> type:
    owner = cls._declared_by.get(name, cls)
    if declared == "self":
        target: Any = owner
    elif "." in declared or ":" in declared:
        target = import_object(declared)
    else:
        module = sys.modules.get(owner.__module__)
        target = getattr(module, declared, None)
        if target is None:
            raise ImportError(
                f"{owner.__name__}.structure[{name!r}]: no {declared!r} in module "
                f"{owner.__module__!r}; use a dotted path"
            )
    if not _is_reference(target):
        raise TypeError(
            f"{owner.__name__}.structure[{name!r}] = {declared!r} is not a Document subclass"
        )
    assert isinstance(target, type)
    return target


#: declared field type → exact value classes that always pass its type check
#: (``None`` and unresolved references are skipped by the check, so they pass too).
_PASSING: dict[FieldType, frozenset[type]] = {}


def _passing_classes(declared: FieldType) -> frozenset[type]:
    classes: set[type] = {type(None), _Reference}
    if declared is float:
        classes.update((int, float))
    elif declared is Decimal:
        classes.update((int, Decimal))
    elif declared is list:
        classes.update((list, tuple))
    elif isinstance(declared, type):
        # isinstance() is true for an instance of exactly that class; a bool is
        # refused by int/float/Decimal fields, but bool is not exactly those.
        classes.add(declared)
    found = _PASSING[declared] = frozenset(classes)
    return found


def _type_matches(value: Any, field_type: type | None) -> bool:
    if field_type is None:
        return True
    if isinstance(value, bool) and field_type in (int, float, Decimal):
        return False
    if field_type is float:
        return isinstance(value, (int, float))
    if field_type is Decimal:
        return isinstance(value, (int, Decimal))
    if field_type is datetime.date:
        return isinstance(value, datetime.date) and not isinstance(value, datetime.datetime)
    if field_type is list:
        return isinstance(value, (list, tuple))
    return isinstance(value, field_type)


def _reason(exc: Exception) -> str:
    """Why a conversion failed, in words (Decimal's own message is a list of
    signal classes, such as ``[<class 'decimal.ConversionSyntax'>]``)."""
    if isinstance(exc, InvalidOperation):
        return "not a decimal number"
    return str(exc) or type(exc).__name__


def _type_name(field_type: type | None) -> str:
    if field_type is None:
        return "any"
    if field_type.__module__ == "builtins":
        return field_type.__qualname__
    return f"{field_type.__module__}.{field_type.__qualname__}"


def _reference_key(value: Any) -> Any:
    if isinstance(value, _Reference):
        return ("reference", value.pk)
    if isinstance(value, Document) and value.pk is not None:
        return ("reference", value.pk)
    return value


def _short_repr(value: Any) -> str:
    if isinstance(value, Document):
        state = repr(value.pk) if value.pk is not None else "unsaved"
        return f"<{type(value).__name__} {state}>"
    return repr(value)
