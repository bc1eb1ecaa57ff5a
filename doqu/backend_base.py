"""The backend contract: what a storage backend implements to plug into doqu.

A backend is a module (or package) exposing ``StorageAdapter``, a subclass of
:class:`BaseStorageAdapter`, usually with a ``QueryAdapter`` subclass of
:class:`BaseQueryAdapter`, a :class:`ConverterManager` and a
:class:`LookupManager`. ``doqu.get_db({"backend": "pkg.module", **settings})``
builds ``pkg.module.StorageAdapter(**settings)``.

Who converts what:

* ``Document.save(db)`` converts every value with
  ``db.converter_manager.to_db(value, db)`` (after validating, saving
  unsaved referenced documents first and replacing references by their
  primary keys), then calls ``db.save(record, primary_key=pk)`` with the whole
  record. The storage adapter stores ``record`` as given.
* The storage adapter hands raw records back as
  ``doc_class.from_storage(db, key, raw_record)``; the document converts each
  value with ``db.converter_manager.from_db(field_type, raw, db)``.
* Query adapters turn ``where(**conditions)`` keywords into native
  conditions with ``storage.lookup_manager.resolve(key, value,
  doc_class=..., storage=...)``; the lookup processors convert the
  condition values (they know the field's declared type).
"""

from __future__ import annotations

import abc
import copy
import functools
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, overload

from doqu.converters import ConverterManager, ConverterNotFound
from doqu.lookups import DEFAULT_OPERATION, Lookup, LookupManager, UnknownLookup
from doqu.validators import ValidationError

if TYPE_CHECKING:
    from doqu.document import Document

__all__ = [
    "BaseQueryAdapter",
    "BaseStorageAdapter",
    "ConverterManager",
    "ConverterNotFound",
    "Lookup",
    "LookupManager",
    "UnknownLookup",
]

D = TypeVar("D", bound="Document")
Q = TypeVar("Q", bound="BaseQueryAdapter[Any]")
F = TypeVar("F", bound=Callable[..., Any])
_S = TypeVar("_S", bound="BaseStorageAdapter")

#: How many records a query's ``repr`` shows before truncating.
REPR_OUTPUT_SIZE = 10


def _guarded(check: Callable[[Any], None]) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        if getattr(func, "_doqu_guarded", False):
            return func

        if check is _storage_connected:
            # The storage check inlined (data operations are hot): the class
            # attribute ``_connected`` defaults to False.
            @functools.wraps(func)
            def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
                if not self._connected:
                    check(self)
                return func(self, *args, **kwargs)
        else:
            @functools.wraps(func)
            def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
                check(self)
                return func(self, *args, **kwargs)

        guarded._doqu_guarded = True  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def in_batch(exc: Exception, index: int, count: int) -> Exception:
    """``exc`` (raised for one document of a bulk call) again, its message saying
    which document it is (``.document_index``); the same type and fields."""
    message = f"document {index} of the {count} given: {exc}"
    if isinstance(exc, ValidationError):
        error: Exception = ValidationError(message, exc.errors)
    else:
        try:
            error = type(exc)(message)
        except TypeError:  # an exception class with other arguments: keep it as is
            return exc
    error.document_index = index  # type: ignore[attr-defined]
    return error


def _storage_connected(storage: Any) -> None:
    if not getattr(storage, "_connected", False):
        raise RuntimeError(
            f"{type(storage).__name__} is not connected; call connect() or reconnect() first"
        )


def _query_storage_connected(query: Any) -> None:
    _storage_connected(query.storage)


def _guard_overrides(cls: type, names: Iterable[str], check: Callable[[Any], None]) -> None:
    for name in names:
        func = cls.__dict__.get(name)
        if callable(func):
            setattr(cls, name, _guarded(check)(func))


class BaseStorageAdapter(abc.ABC):
    """Base class of a backend's ``StorageAdapter``: one connection to one database.

    **Lifecycle.** The constructor takes the backend's settings as keyword
    arguments and ends by calling :meth:`connect`, so an adapter is built
    connected. ``connect()`` on a connected adapter raises ``RuntimeError``;
    :meth:`disconnect` closes (a no-op when already closed); :meth:`reconnect`
    closes if needed and connects again. Every data operation on a
    disconnected adapter raises ``RuntimeError``: the base class wraps the
    methods listed in ``GUARDED`` -- including a subclass's own overrides --
    with that check, so implementations need not repeat it. A backend whose
    connection can drop may reconnect on its own inside an operation.

    **What a subclass provides.**

    * class attributes ``converter_manager`` (:class:`ConverterManager`),
      ``lookup_manager`` (:class:`LookupManager`) and ``query_adapter`` (its
      :class:`BaseQueryAdapter` subclass);
    * ``__init__(self, **its_settings)`` that stores its settings and then
      calls ``super().__init__(**settings)`` (which connects);
    * :meth:`_connect` / :meth:`_disconnect` to open and close the connection;
    * the abstract data methods :meth:`get`, :meth:`save`, :meth:`delete`,
      :meth:`clear`, :meth:`__contains__`, :meth:`__iter__`, :meth:`__len__`.

    :meth:`find`, :meth:`get_many`, :meth:`get_or_create` and :meth:`sync`
    have working defaults; override :meth:`get_many` to fetch in one round
    trip.

    **Keys** are text: methods accept ``str`` (and ``int``, normalised with
    :func:`doqu.utils.normalize_key`) and always return ``str``.

    ``bool(adapter)`` is ``True`` while connected, whatever the number of
    records: an empty database is not "false". Use ``len(adapter)`` to ask
    about records.
    """

    #: The backend's converters between Python values and stored values.
    converter_manager: ClassVar[ConverterManager]
    #: The backend's query operations (``field__op`` conditions).
    lookup_manager: ClassVar[LookupManager]
    #: The backend's query adapter class, built by :meth:`find`.
    query_adapter: ClassVar[type[BaseQueryAdapter[Any]]]

    #: Methods that raise ``RuntimeError`` while disconnected (subclass overrides too).
    GUARDED: ClassVar[tuple[str, ...]] = (
        "get",
        "get_many",
        "get_or_create",
        "find",
        "save",
        "save_many",
        "delete",
        "delete_many",
        "clear",
        "sync",
        "__contains__",
        "__iter__",
        "__len__",
    )

    _connected: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _guard_overrides(cls, cls.GUARDED, _storage_connected)

    def __init__(self, **settings: Any) -> None:
        """Keep ``settings`` (shown by ``repr``) and connect."""
        self.settings: dict[str, Any] = dict(settings)
        self._connected = False
        self.connect()

    # -- lifecycle -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the adapter is connected (data operations allowed)."""
        return self._connected

    def connect(self) -> None:
        """Open the connection. ``RuntimeError`` if already connected."""
        if self._connected:
            raise RuntimeError(
                f"{type(self).__name__} is already connected; use reconnect() to start over"
            )
        self._connect()
        self._connected = True

    def disconnect(self) -> None:
        """Close the connection; does nothing if it is already closed."""
        if not self._connected:
            return
        try:
            self._disconnect()
        finally:
            self._connected = False

    def reconnect(self) -> None:
        """Close the connection if it is open, then open it again."""
        self.disconnect()
        self.connect()

    @abc.abstractmethod
    def _connect(self) -> None:
        """Open the backend's connection (called by :meth:`connect`); raise on failure."""

    @abc.abstractmethod
    def _disconnect(self) -> None:
        """Close the backend's connection (called by :meth:`disconnect`)."""

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.disconnect()

    def __bool__(self) -> bool:
        return self._connected

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v!r}" for k, v in self.settings.items())
        state = "connected" if self._connected else "disconnected"
        return f"<{type(self).__module__}.{type(self).__name__}({settings}) {state}>"

    # -- records ----------------------------------------------------------------

    @abc.abstractmethod
    def get(self, doc_class: type[D], primary_key: str | int) -> D:
        """Fetch one record as ``doc_class.from_storage(self, key, raw_record)``.

        Raises ``KeyError(primary_key)`` if there is no such record. Costs one
        round trip.
        """

    def get_many(self, doc_class: type[D], primary_keys: Iterable[str | int]) -> list[D]:
        """Fetch several records, in the order of ``primary_keys``.

        Raises ``KeyError`` naming every missing key if any is missing. This
        default calls :meth:`get` per key; backends should override it to
        fetch all keys in one round trip.
        """
        keys = list(primary_keys)
        found: list[D] = []
        missing: list[str | int] = []
        for key in keys:
            try:
                found.append(self.get(doc_class, key))
            except KeyError:
                missing.append(key)
        if missing:
            raise KeyError(missing[0] if len(missing) == 1 else missing)
        return found

    def get_or_create(self, doc_class: type[D], **conditions: Any) -> tuple[D, bool]:
        """Return ``(document, False)`` for the first record matching ``conditions``,
        or save a new ``doc_class(**conditions)`` and return ``(it, True)``.

        Conditions must be plain equalities (``name="x"`` or ``name__equals="x"``),
        since they also fill the new document; anything else raises
        ``ValueError``. The new document is validated like any save.
        """
        values: dict[str, Any] = {}
        for key, value in conditions.items():
            field, operation = self.lookup_manager.parse(key)
            if operation != DEFAULT_OPERATION:
                raise ValueError(
                    f"get_or_create() takes equality conditions only, not {key!r}"
                )
            values[field] = value
        found = self.find(doc_class, **conditions)[:1]
        if found:
            return found[0], False
        document = doc_class(**values)
        document.save(self)
        return document, True

    def find(self, doc_class: type[D], **conditions: Any) -> BaseQueryAdapter[D]:
        """A lazy query over ``doc_class``: ``self.query_adapter(self, doc_class)``,
        narrowed by ``doc_class.contribute_to_query`` (its validators) and by
        ``conditions`` (as in :meth:`BaseQueryAdapter.where`). Sends nothing.
        """
        query: BaseQueryAdapter[D] = self.query_adapter(self, doc_class)
        contribute = getattr(doc_class, "contribute_to_query", None)
        if contribute is not None:
            query = contribute(query)
        if conditions:
            query = query.where(**conditions)
        return query

    @abc.abstractmethod
    def save(self, data: dict[str, Any], primary_key: str | int | None = None) -> str:
        """Store ``data`` -- a complete record of already converted values -- and
        return its key as text.

        With ``primary_key``, the record under that key is replaced as a whole
        (created if absent). Without, a new key is generated; a generated key
        never overwrites an existing record. Refuse anything the backend
        cannot store faithfully with an exception before writing anything.
        """

    def save_many(self, documents: Iterable[Document], keep_keys: bool = False) -> list[str]:
        """Save ``documents`` (as ``doc.save(self, keep_keys)`` would each) and
        return their keys in order.

        Every document (and every unsaved document it references) is
        validated first: if one is invalid, nothing is written. This default
        saves them one by one; backends that can write in bulk override it.
        """
        docs = list(documents)
        for index, document in enumerate(docs):
            for doc in [*document._unsaved_references(), document]:
                try:
                    doc.validate()
                except ValidationError as exc:
                    raise in_batch(exc, index, len(docs)) from exc
        return [document.save(self, keep_key=keep_keys) for document in docs]

    def delete_many(self, primary_keys: Iterable[str | int]) -> None:
        """Delete the records under ``primary_keys``; ``KeyError`` naming every key
        that had none (after the others are deleted)."""
        missing = []
        for key in primary_keys:
            try:
                self.delete(key)
            except KeyError:
                missing.append(key)
        if missing:
            raise KeyError(missing[0] if len(missing) == 1 else missing)

    @abc.abstractmethod
    def delete(self, primary_key: str | int) -> None:
        """Delete the record under ``primary_key``; ``KeyError`` if there is none."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Delete every record (and reset generated keys where the backend can)."""

    def sync(self) -> None:
        """Flush buffered writes to durable storage; a no-op unless the backend buffers."""
        return None

    @abc.abstractmethod
    def __contains__(self, primary_key: object) -> bool:
        """Whether a record exists under ``primary_key``."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[str]:
        """Iterate over all primary keys (as text)."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of records."""


# The base's own concrete operations get the same guard as subclass overrides.
_guard_overrides(
    BaseStorageAdapter, ("get_many", "get_or_create", "find", "sync", "save_many", "delete_many"),
    _storage_connected,
)


class BaseQueryAdapter(abc.ABC, Generic[D]):
    """Base class of a backend's ``QueryAdapter``: a lazy, immutable query.

    Built as ``QueryAdapter(storage, doc_class)``; selects every record of the
    storage until narrowed. Building (``where``, ``where_not``, ``order_by``,
    ``| & -``) sends nothing and returns a **new** query -- the receiver never
    changes. Evaluating (``count``, ``values``, ``delete``, iteration,
    indexing, slicing, ``len``, ``bool``, ``repr``) asks the storage every
    time (no result cache) and raises ``RuntimeError`` if the storage is
    disconnected (the base class adds that check to subclass overrides of
    the methods in ``GUARDED``).

    Records come back as ``doc_class.from_storage(storage, key, raw_record)``.

    A subclass implements :meth:`where`, :meth:`where_not`, :meth:`order_by`,
    :meth:`count`, :meth:`values`, :meth:`delete`, :meth:`__iter__`,
    :meth:`__getitem__` and the set hooks :meth:`_union`,
    :meth:`_intersection`, :meth:`_difference`. Helpers: :meth:`_clone`,
    :meth:`_resolve`, :meth:`_parse_order`.
    """

    GUARDED: ClassVar[tuple[str, ...]] = (
        "count",
        "values",
        "delete",
        "__iter__",
        "__getitem__",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _guard_overrides(cls, cls.GUARDED, _query_storage_connected)

    def __init__(self, storage: BaseStorageAdapter, doc_class: type[D]) -> None:
        self.storage = storage
        self.doc_class = doc_class

    # -- building -------------------------------------------------------------------

    @abc.abstractmethod
    def where(self: Q, **conditions: Any) -> Q:
        """A new query keeping records that match **all** ``conditions``.

        Keys are ``field`` or ``field__operation`` (see
        :meth:`LookupManager.parse`); an unknown operation raises
        :class:`UnknownLookup`. Repeated calls combine with AND.
        """

    @abc.abstractmethod
    def where_not(self: Q, **conditions: Any) -> Q:
        """A new query dropping records that match **all** ``conditions``.

        Records lacking a condition's field are kept (the condition does not
        hold for them).
        """

    @abc.abstractmethod
    def order_by(self: Q, name: str, reverse: bool = False) -> Q:
        """A new query sorted by field ``name``; ``"-name"`` or ``reverse=True`` sorts
        descending (both together: ascending). Ordering follows the field's
        declared type (numbers numerically); records missing the field come
        last. Replaces any previous ordering.
        """

    def __or__(self: Q, other: object) -> Q:
        """Records in either query (``self``'s ordering)."""
        return self._union(self._check_operand(other, "|"))

    def __and__(self: Q, other: object) -> Q:
        """Records in both queries."""
        return self._intersection(self._check_operand(other, "&"))

    def __sub__(self: Q, other: object) -> Q:
        """Records in ``self`` but not in ``other``."""
        return self._difference(self._check_operand(other, "-"))

    @abc.abstractmethod
    def _union(self: Q, other: Q) -> Q:
        """``self | other`` for a query of the same storage and document class."""

    @abc.abstractmethod
    def _intersection(self: Q, other: Q) -> Q:
        """``self & other`` for a query of the same storage and document class."""

    @abc.abstractmethod
    def _difference(self: Q, other: Q) -> Q:
        """``self - other`` for a query of the same storage and document class."""

    # -- evaluating -----------------------------------------------------------------

    @abc.abstractmethod
    def count(self) -> int:
        """The number of matching records (one round trip)."""

    @abc.abstractmethod
    def values(self, name: str) -> list[Any]:
        """Distinct values of field ``name`` among matching records, in query order,
        converted like document values (``from_db`` with the declared type).
        A reference field gives the referenced documents' primary keys (text),
        not the documents: ``storage.get_many(Model, keys)`` fetches them.
        Records lacking the field contribute nothing.
        """

    @abc.abstractmethod
    def delete(self) -> int:
        """Delete every matching record (one round trip); return how many were deleted."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[D]:
        """The matching documents, in order (one round trip)."""

    @overload
    def __getitem__(self, index: int) -> D: ...

    @overload
    def __getitem__(self, index: slice) -> list[D]: ...

    @abc.abstractmethod
    def __getitem__(self, index: int | slice) -> D | list[D]:
        """``q[i]`` is one document (``IndexError`` when out of range, negative
        indexes count from the end); ``q[a:b:c]`` is a list with Python slice
        semantics (``q[0:0] == []``). One round trip either way.
        """

    def __len__(self) -> int:
        return self.count()

    def __bool__(self) -> bool:
        return self.count() > 0

    def __repr__(self) -> str:
        name = f"{type(self).__name__} of {self.doc_class.__name__}"
        if not self.storage.connected:
            return f"<{name} (storage disconnected)>"
        items = self[: REPR_OUTPUT_SIZE + 1]
        shown = [repr(item) for item in items[:REPR_OUTPUT_SIZE]]
        if len(items) > REPR_OUTPUT_SIZE:
            shown.append("...(remaining elements truncated)...")
        return f"<{name} [{', '.join(shown)}]>"

    # -- helpers for subclasses ---------------------------------------------------

    def _clone(self: Q, **changes: Any) -> Q:
        """A shallow copy with attributes replaced by ``changes`` (keep state immutable)."""
        clone = copy.copy(self)
        clone.__dict__.update(changes)
        return clone

    def _resolve(self, conditions: dict[str, Any]) -> list[Any]:
        """Each condition turned into a native one by the storage's lookup processors."""
        manager = self.storage.lookup_manager
        return [
            manager.resolve(key, value, doc_class=self.doc_class, storage=self.storage)
            for key, value in conditions.items()
        ]

    @staticmethod
    def _parse_order(name: str, reverse: bool = False) -> tuple[str, bool]:
        """``("-age", False)`` → ``("age", True)``: the field and whether to sort descending.

        ``TypeError`` for a name that is not text and for a ``reverse`` that is
        not a bool (``order_by("name", "age")`` is a second field, which the
        query cannot sort by), ``ValueError`` for an empty name.
        """
        if not isinstance(name, str):
            raise TypeError(f"order_by() needs a field name (str), not {type(name).__name__} "
                            f"{name!r}")
        if not isinstance(reverse, bool):
            if isinstance(reverse, str):
                raise TypeError(f"order_by() sorts by one field; got {name!r} and also "
                                f"{reverse!r} (the second argument is reverse=True/False)")
            raise TypeError(f"order_by(reverse=...) must be True or False, not "
                            f"{type(reverse).__name__} {reverse!r}")
        if name.startswith("-"):
            name, reverse = name[1:], not reverse
        if not name:
            raise ValueError("order_by() needs a field name")
        return name, reverse

    def _check_operand(self: Q, other: object, operator: str) -> Q:
        if not isinstance(other, type(self)):
            raise TypeError(
                f"unsupported operand for {operator}: {type(self).__name__} "
                f"and {type(other).__name__}"
            )
        if other.storage is not self.storage or other.doc_class is not self.doc_class:
            raise ValueError(
                f"{operator} combines queries of the same storage and document class only"
            )
        return other
