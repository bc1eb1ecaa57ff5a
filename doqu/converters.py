"""Per-backend registry of value converters between Python types and stored values."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, overload

if TYPE_CHECKING:
    from doqu.backend_base import BaseStorageAdapter

__all__ = ["ConverterManager", "ConverterNotFound", "FromDb", "ToDb"]

#: ``to_db`` converter: ``(python_value, storage) -> stored_value``.
ToDb = Callable[[Any, "BaseStorageAdapter | None"], Any]
#: ``from_db`` converter: ``(stored_value, storage) -> python_value``.
FromDb = Callable[[Any, "BaseStorageAdapter | None"], Any]

T = TypeVar("T", bound=Callable[..., Any])


class ConverterNotFound(TypeError):
    """No converter is registered for a type (nor for any class in its MRO).

    A ``TypeError``: the value's type cannot be stored by this backend. Raised
    before anything is sent, so nothing is half-written.
    """


class ConverterManager:
    """Converters for one backend, keyed by Python type, in both directions.

    Lookup walks the type's MRO, so a converter registered for ``int`` also
    serves ``IntEnum`` values, and one registered for ``object`` is a catch-all.
    A type's own converter always wins over its bases' -- register ``bool``
    explicitly if it must not be written the way ``int`` is.

    Registration (a backend does this once, at import time)::

        converters = ConverterManager()

        @converters.to_db(datetime.date)          # or .register_to_db(date, ...)
        def date_to_db(value, storage):
            return value.strftime("%Y%m%d")

        @converters.from_db(datetime.date)        # or .register_from_db(...)
        def date_from_db(raw, storage):
            return datetime.datetime.strptime(raw, "%Y%m%d").date()

    Conversion (the Document and query adapters do this)::

        converters.to_db(value, storage)            # -> stored value
        converters.from_db(datatype, raw, storage)  # -> Python value

    Framework guarantees, the same for every backend: ``from_db`` turns a
    missing value (``None``) into ``None`` for every type and an empty stored
    value (``""`` / ``b""``) into ``None`` for every type except text (stays
    ``""``) and ``list`` (becomes ``[]``); ``from_db`` converters therefore never
    see ``None`` or empty values. ``to_db`` converters do see ``None`` (look-up
    type ``NoneType``): the backend decides how "no value" is stored.

    Converters signal unreadable data by raising ``ValueError``, ``TypeError`` or
    ``ArithmeticError``; the Document turns that into a warning (or an error
    with ``break_on_invalid_incoming_data``).
    """

    def __init__(self) -> None:
        self._to_db: dict[type, ToDb] = {}
        self._from_db: dict[type, FromDb] = {}
        # Resolved look-ups (MRO walks), emptied whenever a converter is registered.
        self._to_db_found: dict[type, ToDb] = {}
        self._from_db_found: dict[type, FromDb] = {}
        #: Bumped by every registration: callers caching resolved converters
        #: (``get_to_db`` / ``get_from_db``) compare it to know when to look again.
        self.revision = 0

    def copy(self) -> ConverterManager:
        """A new manager with the same registrations, to extend without touching this one."""
        clone = ConverterManager()
        clone._to_db.update(self._to_db)
        clone._from_db.update(self._from_db)
        return clone

    # -- registration -------------------------------------------------------

    def register_to_db(self, *types: type) -> Callable[[T], T]:
        """Decorator: register ``func(value, storage)`` writing values of ``types``."""
        _check_types(types)

        def register(func: T) -> T:
            for datatype in types:
                self._to_db[datatype] = func
            self._to_db_found.clear()
            self.revision += 1
            return func

        return register

    def register_from_db(self, *types: type) -> Callable[[T], T]:
        """Decorator: register ``func(raw, storage)`` reading values declared as ``types``."""
        _check_types(types)

        def register(func: T) -> T:
            for datatype in types:
                self._from_db[datatype] = func
            self._from_db_found.clear()
            self.revision += 1
            return func

        return register

    # -- lookup ---------------------------------------------------------------

    def get_to_db(self, datatype: type) -> ToDb:
        """The ``to_db`` converter serving ``datatype`` (MRO order), or ConverterNotFound."""
        try:
            return self._to_db_found[datatype]
        except KeyError:
            found = self._to_db_found[datatype] = _find(self._to_db, datatype, "to_db")
            return found  # type: ignore[no-any-return]

    def get_from_db(self, datatype: type) -> FromDb:
        """The ``from_db`` converter serving ``datatype`` (MRO order), or ConverterNotFound."""
        try:
            return self._from_db_found[datatype]
        except KeyError:
            found = self._from_db_found[datatype] = _find(self._from_db, datatype, "from_db")
            return found  # type: ignore[no-any-return]

    # -- conversion (single argument type = registration decorator) -----------

    @overload
    def to_db(self, value: type) -> Callable[[T], T]: ...

    @overload
    def to_db(self, value: Any, storage: BaseStorageAdapter | None) -> Any: ...

    def to_db(self, value: Any, storage: Any = ...) -> Any:
        """Convert ``value`` to its stored form using the converter for ``type(value)``.

        Called with a single type argument instead (``@converters.to_db(date)``),
        this is :meth:`register_to_db`.
        """
        if storage is ... and isinstance(value, type):
            return self.register_to_db(value)
        if storage is ...:
            storage = None
        return self.get_to_db(type(value))(value, storage)

    @overload
    def from_db(self, datatype: type) -> Callable[[T], T]: ...

    @overload
    def from_db(
        self, datatype: type, value: Any, storage: BaseStorageAdapter | None = None
    ) -> Any: ...

    def from_db(self, datatype: type, value: Any = ..., storage: Any = None) -> Any:
        """Convert a stored ``value`` to the declared ``datatype``.

        ``None`` gives ``None``; an empty stored value gives ``""`` for text,
        ``[]`` for lists and ``None`` for any other type (see the class doc).
        Called with only a type (``@converters.from_db(date)``), this is
        :meth:`register_from_db`.
        """
        if value.__class__ is str and value:  # the common case, checked first
            converter = self._from_db_found.get(datatype)
            if converter is not None:
                return converter(value, storage)
        if value is ...:
            return self.register_from_db(datatype)
        if value is None:
            return None
        if isinstance(value, (str, bytes)) and len(value) == 0:
            if issubclass(datatype, str):
                return ""
            if issubclass(datatype, list):
                return []
            return None
        return self.get_from_db(datatype)(value, storage)


def _check_types(types: tuple[type, ...]) -> None:
    if not types:
        raise TypeError("register at least one type")
    for datatype in types:
        if not isinstance(datatype, type):
            raise TypeError(f"converters are registered per type, not for {datatype!r}")


def _find(registry: dict[type, Any], datatype: type, direction: str) -> Any:
    for klass in datatype.__mro__:
        if klass in registry:
            return registry[klass]
    known = ", ".join(sorted(t.__name__ for t in registry)) or "none"
    raise ConverterNotFound(
        f"no {direction} converter for type {datatype.__name__!r} "
        f"(nor any of its bases); registered: {known}"
    )
