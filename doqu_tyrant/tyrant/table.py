"""``Tyrant.table``: the records of a table database as a mutable mapping."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, Mapping, MutableMapping, ValuesView
from typing import TYPE_CHECKING, Any

from . import commands as c

if TYPE_CHECKING:
    from .client import Tyrant

__all__ = ["Table"]


class _TableKeys(KeysView):
    def __iter__(self) -> Iterator[str]:
        return self._mapping._checked().query.iter_keys()  # type: ignore[attr-defined, no-any-return]


class _TableItems(ItemsView):
    def __iter__(self) -> Iterator[tuple[str, dict[str, str]]]:
        return self._mapping._checked().query.iter_items()  # type: ignore[attr-defined, no-any-return]


class _TableValues(ValuesView):
    def __iter__(self) -> Iterator[dict[str, str]]:
        for _, record in self._mapping._checked().query.iter_items():  # type: ignore[attr-defined]
            yield record


class Table(MutableMapping[str, dict[str, str]]):
    """The records of a table database as a mutable mapping.

    Each operation is one round trip: item access is MISC get/put/out,
    ``in`` is VSIZ, ``len`` is RNUM, iteration (also ``keys``/``values``/
    ``items``) is one streamed search, ``update`` is one putlist and
    ``clear`` is VANISH. Keys may be given as str or bytes; keys that are not
    UTF-8 come back as text with surrogates (``surrogateescape``) and can be
    given back as they are. On a key-value database every operation raises
    :class:`~.errors.TyrantKindError`.
    """

    __slots__ = ("_client",)

    def __init__(self, client: Tyrant) -> None:
        self._client = client

    def _checked(self) -> Tyrant:
        client = self._client
        client._require_table("t.table")
        return client

    def __getitem__(self, pk: c.Key) -> dict[str, str]:  # type: ignore[override]
        record = self._checked().table_get(pk)
        if record is None:
            raise KeyError(pk)
        return record

    def __setitem__(self, pk: c.Key, record: c.Record) -> None:  # type: ignore[override]
        if not isinstance(record, Mapping):
            raise TypeError(f"t.table[pk] = ... stores records (dicts), not "
                            f"{type(record).__name__}")
        self._checked().table_put(pk, record)

    def __delitem__(self, pk: c.Key) -> None:  # type: ignore[override]
        if not self._checked().table_out(pk):
            raise KeyError(pk)

    def __contains__(self, pk: object) -> bool:
        return pk in self._checked()

    def __len__(self) -> int:
        return self._checked().rnum()

    def __iter__(self) -> Iterator[str]:
        return self._checked().query.iter_keys()

    def get(self, pk: c.Key, default: Any = None) -> Any:  # type: ignore[override]
        return self._checked().table_get(pk, default)

    def keys(self) -> KeysView[str]:
        return _TableKeys(self)

    def items(self) -> ItemsView[str, dict[str, str]]:
        return _TableItems(self)

    def values(self) -> ValuesView[dict[str, str]]:
        return _TableValues(self)

    def update(self, other: Any = (), /, **kw: c.Record) -> None:  # type: ignore[override]
        records = dict(c.pairs_arg(other, "records"))
        records.update(kw)
        if records:
            self._checked().putlist(records)

    def clear(self) -> None:
        self._checked().vanish()

    def setdefault(self, pk: c.Key, default: Any = None) -> dict[str, str]:  # type: ignore[override]
        client = self._checked()
        record = {} if default is None else default
        if client.table_putkeep(pk, record):
            return dict(record)
        return self[pk]
