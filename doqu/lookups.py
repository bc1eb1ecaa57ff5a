"""Per-backend registry of query operations: parses ``field__op`` names into conditions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from doqu.backend_base import BaseStorageAdapter

__all__ = ["DEFAULT_OPERATION", "Lookup", "LookupManager", "UnknownLookup"]

#: The operation of a bare field name: ``where(name="x")`` is ``name__equals="x"``.
DEFAULT_OPERATION = "equals"

#: A lookup processor: turns one parsed :class:`Lookup` into a backend condition.
Processor = Callable[["Lookup"], Any]
P = TypeVar("P", bound=Processor)


class UnknownLookup(ValueError):
    """A condition names an operation the backend does not know.

    ``operation`` is the unknown name, ``known`` the registered ones.
    """

    def __init__(self, operation: str, known: list[str], key: str | None = None) -> None:
        self.operation = operation
        self.known = known
        self.key = key
        where = f" in {key!r}" if key is not None else ""
        super().__init__(
            f"unknown lookup operation {operation!r}{where}; "
            f"known operations: {', '.join(known) or 'none'}"
        )


@dataclass(frozen=True)
class Lookup:
    """One parsed condition, as a lookup processor receives it.

    ``field_type`` is the type the document class declares for ``field``
    (a Document subclass for references), or ``None`` when the class has no
    structure or does not declare the field -- backends then decide from the
    value's own type.
    """

    field: str
    operation: str
    value: Any
    field_type: type | None = None
    doc_class: type | None = None
    storage: BaseStorageAdapter | None = None


class LookupManager:
    """The query operations one backend supports, each with its processor.

    A backend registers a processor per operation name; the processor takes a
    :class:`Lookup` and returns whatever native condition the backend's query
    adapter understands::

        lookups = LookupManager()

        @lookups.register("gt")
        def gt(lookup):
            return NativeCondition(lookup.field, ">", lookup.value)

    Names are parsed Django-style: only the part after the **last** ``__`` can
    be an operation, so field names may contain underscores
    (``first_name__startswith`` is field ``first_name``, operation
    ``startswith``) and a bare name means :data:`DEFAULT_OPERATION`.
    """

    def __init__(self) -> None:
        self._processors: dict[str, Processor] = {}

    def register(self, *operations: str) -> Callable[[P], P]:
        """Decorator: register ``processor(lookup)`` for one or more operation names."""
        if not operations:
            raise TypeError("register at least one operation name")
        for name in operations:
            if not name or "__" in name:
                raise ValueError(f"invalid operation name {name!r}")

        def register(processor: P) -> P:
            for name in operations:
                self._processors[name] = processor
            return processor

        return register

    def copy(self) -> LookupManager:
        """A new manager with the same operations, to extend without touching this one."""
        clone = LookupManager()
        clone._processors.update(self._processors)
        return clone

    @property
    def operations(self) -> list[str]:
        """The registered operation names, sorted."""
        return sorted(self._processors)

    def __contains__(self, operation: object) -> bool:
        return operation in self._processors

    def parse(self, key: str) -> tuple[str, str]:
        """Split ``"field__op"`` into ``(field, op)``; a bare name gives ``(name, "equals")``.

        Raises :class:`UnknownLookup` when the part after the last ``__`` is not
        a registered operation, and ``ValueError`` for an empty field name.
        """
        field, sep, operation = key.rpartition("__")
        if not sep:
            field, operation = key, DEFAULT_OPERATION
        elif operation not in self._processors:
            raise UnknownLookup(operation, self.operations, key)
        if not field:
            raise ValueError(f"condition {key!r} names no field")
        return field, operation

    def resolve(
        self,
        key: str,
        value: Any,
        *,
        doc_class: type | None = None,
        storage: BaseStorageAdapter | None = None,
    ) -> Any:
        """Parse ``key`` and hand the :class:`Lookup` to its processor; return its condition.

        ``doc_class`` supplies the field's declared type (via its
        ``field_type(name)`` classmethod, which :class:`doqu.Document` has).
        Raises :class:`UnknownLookup` if the operation (including the default
        one for a bare name) is not registered.
        """
        field, operation = self.parse(key)
        processor = self._processors.get(operation)
        if processor is None:
            raise UnknownLookup(operation, self.operations, key)
        field_type = None
        type_of = getattr(doc_class, "field_type", None)
        if type_of is not None:
            field_type = type_of(field)
        lookup = Lookup(field, operation, value, field_type, doc_class, storage)
        return processor(lookup)
